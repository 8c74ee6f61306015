"""Lesson 04's claims about aiterator() on PostgreSQL, which the lesson states but does not run.

In autocommit (an async view's default) Django declares aiterator()'s server-side cursor
WITH HOLD (create_cursor in django/db/backends/postgresql/base.py, 5.2 and 6.1), so PostgreSQL
runs the query to the end before the first fetch. The lesson says: the memory saving holds,
and the first row waits for the query's own time on the server: short for a plain scan, all
of it for a slow query. Here:

- a plain scan of 20,000 rows: aiterator(100)'s first row comes at least 3x sooner than
  async for's, and its peak memory is under a quarter of async for's;
- a query that sleeps 1 ms per row on the server (600 rows, so at least 0.6 s): aiterator()'s
  first row in autocommit waits for all of it (a lower bound, which load cannot break), while
  iterator() inside atomic() (no WITH HOLD) gets its first row in under half that time.

Runs when DATABASE_URL points at a PostgreSQL server (`sh .ci/postgres-up` prints one);
skipped otherwise. Runs in a subprocess with the production settings, as test_postgres.py does.
"""

import asyncio
import json
import time
import tracemalloc

from postgres_script import needs_postgres, printed_by

PREFIX = "PG-L04-"
SCAN_ROWS, SLOW_ROWS, NAP = 20_000, 600, 0.001  # NAP: seconds of pg_sleep per slow row


def sleepy(products):
    """The first SLOW_ROWS products, each sleeping NAP on the server as PostgreSQL produces it.

    No ORDER BY and no LIMIT: nothing makes PostgreSQL produce rows before they are fetched,
    unless the cursor is WITH HOLD.
    """
    from django.db.models.expressions import RawSQL

    return products.filter(sku__lt=f"{PREFIX}{SLOW_ROWS:05}").order_by().annotate(
        nap=RawSQL("pg_sleep(%s) IS NULL", (NAP,)))  # per row: volatile


async def first_row_and_peak(make_rows, memory=False):
    """Seconds to the first row, and the peak bytes allocated while looping to the end."""
    if memory:
        tracemalloc.start()
    started, first = time.perf_counter(), None
    try:
        async for _row in make_rows():
            if first is None:
                first = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1] if memory else 0
    finally:
        if memory:
            tracemalloc.stop()
    return first, peak


async def measure():
    from tutorial_project.catalog.models import Product

    scan = Product.objects.filter(sku__startswith=PREFIX)
    slow = sleepy(scan)
    loops = {"async for": lambda: scan.all(),
             "aiterator(100)": lambda: scan.aiterator(chunk_size=100)}
    firsts = {name: min([(await first_row_and_peak(rows))[0] for _ in range(3)])
              for name, rows in loops.items()}
    peaks = {name: (await first_row_and_peak(rows, memory=True))[1]
             for name, rows in loops.items()}
    slow_first, _ = await first_row_and_peak(lambda: slow.aiterator(chunk_size=20))
    return firsts, peaks, slow_first


def first_row_in_a_transaction():
    from django.db import transaction

    from tutorial_project.catalog.models import Product

    slow = sleepy(Product.objects.filter(sku__startswith=PREFIX))
    with transaction.atomic():  # no WITH HOLD: PostgreSQL runs the query as rows are fetched
        started = time.perf_counter()
        rows = slow.iterator(chunk_size=20)
        next(rows)
        first = time.perf_counter() - started
        rows.close()
    return first


def main():
    import django

    django.setup()
    from django.db import connection
    from django.utils import timezone

    from tutorial_project.catalog.models import Category, Product

    Product.objects.filter(sku__startswith=PREFIX).delete()
    category, _ = Category.objects.get_or_create(slug="pg-l04", name="PG lesson 04")
    now = timezone.now()
    Product.objects.bulk_create(
        [Product(sku=f"{PREFIX}{n:05}", name=f"Generated {n}", category=category, price=1,
                 stock=1, created_at=now) for n in range(SCAN_ROWS)], batch_size=2000)
    try:
        assert connection.get_autocommit()
        firsts, peaks, slow_first = asyncio.run(measure())
        in_transaction = first_row_in_a_transaction()
        print(json.dumps({"firsts": firsts, "peaks": peaks, "slow_first": slow_first,
                          "in_transaction": in_transaction}))
    finally:
        Product.objects.filter(sku__startswith=PREFIX).delete()
        category.delete()


@needs_postgres
def test_aiterator_in_autocommit_streams_but_waits_for_the_query_on_the_server():
    found = printed_by(__file__)
    firsts, peaks = found["firsts"], found["peaks"]
    assert firsts["aiterator(100)"] * 3 < firsts["async for"], found  # a plain scan: early
    assert peaks["aiterator(100)"] * 4 < peaks["async for"], found
    assert found["slow_first"] >= SLOW_ROWS * NAP, found  # WITH HOLD: the whole query first
    assert found["in_transaction"] * 2 < SLOW_ROWS * NAP, found  # no hold: one chunk's worth


if __name__ == "__main__":
    main()
