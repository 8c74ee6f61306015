"""Lesson 09's numbers: a cached async view, cold versus warm, and the async cache's cost."""

from tutorial_project.course.benchmarks.fresh_process import measure_in_fresh_process

MEASURE = """
import asyncio, json, time
from tutorial_project import start
start(quiet=True)
from django.core.cache import cache
from django.http import JsonResponse
from django.test import AsyncClient
from tutorial_project import mount

async def slow_report(request):
    report = await cache.aget("bench-report")
    if report is None:
        await asyncio.sleep(0.3)
        report = {"ready": True}
        await cache.aset("bench-report", report, timeout=60)
    return JsonResponse(report)

async def main():
    mount("/bench-report/", slow_report)
    await cache.aclear()
    timings = []
    for _ in range(21):
        started = time.perf_counter()
        await AsyncClient().get("/bench-report/")
        timings.append(time.perf_counter() - started)
    started = time.perf_counter()
    for _ in range(200):
        await cache.aget("bench-report")
    aget = (time.perf_counter() - started) / 200
    started = time.perf_counter()
    for _ in range(200):
        cache.get("bench-report")
    get = (time.perf_counter() - started) / 200
    warm = sorted(timings[1:])[10]
    print(json.dumps({"cold": timings[0], "warm": warm, "aget": aget, "get": get}))

asyncio.run(main())
"""


def run(notebooks):
    numbers = measure_in_fresh_process("-c", MEASURE)
    return [
        ("cached view, cold request (0.3 s of work)", f"{numbers['cold'] * 1000:.0f} ms"),
        ("cached view, warm request (median of 20)", f"{numbers['warm'] * 1000:.1f} ms"),
        ("cold / warm", f"{numbers['cold'] / numbers['warm']:.0f}x"),
        ("LocMemCache: await cache.aget() (thread hop)", f"{numbers['aget'] * 1e6:.0f} µs"),
        ("LocMemCache: cache.get() (no hop)", f"{numbers['get'] * 1e6:.1f} µs"),
    ]

