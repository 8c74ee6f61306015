"""Lesson 12's numbers: the capstone dashboard cold and warm, and a short load under uvicorn."""

from tutorial_project.course.benchmarks.fresh_process import measure_in_fresh_process

MEASURE = """
import asyncio, json, time
from tutorial_project import mount, start, use_middleware
start(quiet=True)
from django.core.cache import cache
from django.test import AsyncClient
from tutorial_project.capstone.middleware import cache_control_middleware
from tutorial_project.capstone.views import dashboard
from tutorial_project.instruments.servers import serve_in_process
from tutorial_project.instruments.loadtest.loadgen import run_load

async def main():
    mount("capstone/", dashboard)
    await cache.aclear()
    timings = []
    with use_middleware(cache_control_middleware):
        for _ in range(21):
            started = time.perf_counter()
            await AsyncClient().get("/capstone/")
            timings.append(time.perf_counter() - started)
        async with serve_in_process() as url:
            load = await run_load(f"{url}/capstone/", concurrency=20, requests_per_client=10)
    print(json.dumps({"cold": timings[0], "warm": sorted(timings[1:])[10],
                      "rps": load.requests_per_second, "p50": load.percentile(50),
                      "p99": load.percentile(99), "errors": load.errors}))

asyncio.run(main())
"""


def run(notebooks):
    n = measure_in_fresh_process("-c", MEASURE)
    return [
        ("dashboard, cold request (slowest source 0.3 s)", f"{n['cold'] * 1000:.0f} ms"),
        ("dashboard, warm request (median of 20)", f"{n['warm'] * 1000:.1f} ms"),
        ("in-process uvicorn, 20 clients x 10: requests/s", f"{n['rps']:.0f}"),
        ("  p50 / p99 latency", f"{n['p50'] * 1000:.0f} / {n['p99'] * 1000:.0f} ms"),
        ("  errors", str(n["errors"])),
    ]
