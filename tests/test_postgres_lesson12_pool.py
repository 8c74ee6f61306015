"""Lesson 12's connection-pool claims (cells 10 and 38), run for real on PostgreSQL.

Cell 10: a request holds its pooled connection through every await until request_finished;
with a pool of 2, six requests of one query then a 0.5 s await run two at a time, in three
rounds, and all at once when each hands its connection back after its query.
Cell 38: requests that queried, then wait in cached() for a computation that needs a
connection of its own, can hold every slot: with a pool of 2 (timeout 3 s), two at once both
fail; with 3 they pass; querying nothing first, or handing the connection back first, lets
three pass with 2.

Each case runs in a process of its own (the pool is made from the settings once), through
ASGIHandler as a server calls it. Runs when DATABASE_URL points at a PostgreSQL server
(`sh .ci/postgres-up` prints one); skipped otherwise, as test_postgres_lesson12.py is.
"""

import asyncio
import json
import os
import subprocess
import sys
import time

from postgres_script import needs_postgres, printed_by

CASES = [  # (pool size, what the view does before it waits, requests at once)
    (2, "query, then wait 0.5 s", 6), (2, "query, hand back, then wait 0.5 s", 6),
    (2, "query, then cached()", 1), (2, "query, then cached()", 2), (3, "query, then cached()", 2),
    (2, "cached() alone", 3), (2, "query, hand back, then cached()", 3),
]


def one_case(size, mode, requests):
    import django
    from django.conf import settings

    django.setup()
    settings.DATABASES["default"]["OPTIONS"]["pool"] = {"min_size": 1, "max_size": size,
                                                        "timeout": 3}
    import httpx
    from asgiref.sync import sync_to_async
    from django.core.cache import cache
    from django.core.handlers.asgi import ASGIHandler
    from django.db import connections
    from django.http import JsonResponse

    from tutorial_project import mount
    from tutorial_project.capstone.service import cached
    from tutorial_project.catalog.models import Category, Product

    async def compute():  # what the shared computation does: a wait, then a query
        await asyncio.sleep(0.3)
        return {"categories": await Category.objects.acount()}

    async def view(request):
        if mode != "cached() alone":
            await Product.objects.acount()
        if "hand back" in mode:
            await sync_to_async(connections.close_all)()
        if "0.5 s" in mode:
            await asyncio.sleep(0.5)  # an upstream call, say
            return JsonResponse({})
        return JsonResponse(await cached("pool-lesson-12", compute))

    mount("pool-lesson-12/", view)

    async def burst():
        await cache.aclear()
        transport = httpx.ASGITransport(app=ASGIHandler())
        async with httpx.AsyncClient(transport=transport, base_url="https://127.0.0.1",
                                     timeout=30) as client:  # https: the production settings
            start = time.perf_counter()
            responses = await asyncio.gather(
                *(client.get("/pool-lesson-12/") for _ in range(requests)))
            return [r.status_code for r in responses], time.perf_counter() - start

    return asyncio.run(burst())


def main():
    if len(sys.argv) == 4:
        print(json.dumps(one_case(int(sys.argv[1]), sys.argv[2], int(sys.argv[3]))))
        return
    results = []
    for size, mode, requests in CASES:
        done = subprocess.run([sys.executable, __file__, str(size), mode, str(requests)],
                              env=os.environ, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        results.append([size, mode, requests, *json.loads(done.stdout.splitlines()[-1])])
    print(json.dumps(results))


@needs_postgres
def test_a_request_holds_its_pooled_connection_until_it_ends():
    results = {(size, mode, n): (statuses, seconds)
               for size, mode, n, statuses, seconds in printed_by(__file__)}
    held, held_for = results[2, "query, then wait 0.5 s", 6]
    back, back_for = results[2, "query, hand back, then wait 0.5 s", 6]
    assert held == back == [200] * 6, results
    assert held_for >= 1.45 and back_for < held_for - 0.5, results  # three rounds, then fewer
    assert results[2, "query, then cached()", 1][0] == [200], results
    assert results[2, "query, then cached()", 2][0] == [500, 500], results  # the pool's timeout
    assert results[2, "query, then cached()", 2][1] >= 3, results
    assert results[3, "query, then cached()", 2][0] == [200, 200], results
    assert results[2, "cached() alone", 3][0] == [200] * 3, results
    assert results[2, "query, hand back, then cached()", 3][0] == [200] * 3, results


if __name__ == "__main__":
    main()
