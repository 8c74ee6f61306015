"""Lesson 02: async fan-out vs ideal; sync views under AsyncClient and ASGIHandler; N=500 threads;
the server CPU of a minimal request behind uvicorn (``instruments/server_cpu.py``).

Each measurement runs in a fresh process (so memory growth is that burst's alone), with no
middleware, against views that wait 100 ms on ``fake_upstream``; the ideal for any burst is
0.1 s. ``python -m tutorial_project.course.benchmarks.bench_02_views`` runs just this module.
"""

import json
import resource
import statistics
import sys

from tutorial_project.course.benchmarks.fresh_process import measure_in_fresh_process

IDEAL = 0.1
# (label, view, client, requests, repeats)
SCENARIOS = [
    ("async view, 50 at once, AsyncClient", "async", "test-client", 50, 5),
    ("async view, 50 at once, ASGIHandler", "async", "asgi", 50, 5),
    ("sync view, 20 at once, AsyncClient", "sync", "test-client", 20, 1),
    ("sync view, 20 at once, ASGIHandler", "sync", "asgi", 20, 3),
    ("sync view, 500 at once, ASGIHandler", "sync", "asgi", 500, 3),
    ("async view, 500 at once, ASGIHandler", "async", "asgi", 500, 3),
    ("async view, 500 at once, AsyncClient", "async", "test-client", 500, 3),
]


def run(notebooks):
    rows = []
    for label, view, client, requests, repeats in SCENARIOS:
        runs = [_in_fresh_process(view, client, requests) for _ in range(repeats)]
        seconds = statistics.median(r["seconds"] for r in runs)
        best = min(r["seconds"] for r in runs)
        threads = max(r["extra_threads"] for r in runs)
        memory = statistics.median(r["peak_rss_growth_mb"] for r in runs)
        value = (
            f"{seconds:.3f} s = {seconds / IDEAL:.1f}x ideal (median of {repeats}; best "
            f"{best / IDEAL:.1f}x), view threads {runs[0]['view_threads']}, "
            f"extra threads {threads}, peak RSS +{memory:.0f} MB"
        )
        if requests == 50 and view == "async":
            value += f"  (target: within 1.5x: {seconds / IDEAL <= 1.5})"
        rows.append((label, value))
    rows += _server_cpu()
    return rows


def _server_cpu():
    """The server-CPU split the lesson quotes, behind a real uvicorn (instruments/server_cpu)."""
    import asyncio

    from tutorial_project.instruments import server_cpu

    rows = []
    for loop, http in [("asyncio", "h11"), ("uvloop", "httptools")]:
        windows, bursts = asyncio.run(server_cpu.measure(loop=loop, http=http, bursts=9))
        shares = server_cpu.summary(windows)
        rows.append((
            f"uvicorn, {loop} and {http}, server CPU",
            ", ".join(f"{setup} {shares[setup]:.2f} ms" for setup in server_cpu.PATHS)
            + f"; thread per request {shares['thread share']:.0%}, "
            f"sync/async {shares['sync / async']:.2f}x",
        ))
        rows.append((
            f"uvicorn, {loop} and {http}, 50 waits at once",
            ", ".join(f"{kind} view {statistics.median(seconds) / IDEAL:.1f}x ideal"
                      for kind, seconds in bursts.items()) + " (median of 9 bursts)",
        ))
    return rows


def _in_fresh_process(view, client, requests):
    module = "tutorial_project.course.benchmarks.bench_02_views"
    return measure_in_fresh_process("-m", module, view, client, str(requests), timeout=120)


def _measure(view, client, requests):
    import asyncio

    from tutorial_project import mount, start, use_middleware

    start(quiet=True)
    from django.http import JsonResponse
    from django.test import AsyncClient

    from tutorial_project.instruments import fake_upstream
    from tutorial_project.instruments.request_burst import asgi_client, send_burst, traced

    @traced
    async def wait_async(request):
        return JsonResponse(await fake_upstream.fetch_price("CF-001"))

    @traced
    def wait_sync(request):
        return JsonResponse(fake_upstream.fetch_price_blocking("CF-001"))

    mount("/wait/", wait_async if view == "async" else wait_sync)

    async def burst():
        with use_middleware():
            if client == "asgi":
                async with asgi_client() as http:
                    await http.get("/wait/")  # warm up: imports, URL resolver
                    rss_before = _peak_rss_mb()
                    return await send_burst(http, "/wait/", requests), rss_before
            await AsyncClient().get("/wait/")
            rss_before = _peak_rss_mb()
            return await send_burst(AsyncClient(), "/wait/", requests), rss_before

    result, rss_before = asyncio.run(burst())
    assert result.statuses == {200: requests}, result.statuses
    return {
        "seconds": result.seconds,
        "view_threads": result.view_threads,
        "extra_threads": result.extra_threads,
        "peak_rss_growth_mb": _peak_rss_mb() - rss_before,
    }


def _peak_rss_mb():
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # ru_maxrss is in bytes on macOS, in KiB on Linux.
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


if __name__ == "__main__":
    if len(sys.argv) == 4:
        print(json.dumps(_measure(sys.argv[1], sys.argv[2], int(sys.argv[3]))))
    else:
        for what, value in run([]):
            print(f"{what:<40} {value}")
