"""A small in-kernel load over loopback, built on httpx: ``await run_load(url, concurrency=20)``.

For smoke tests of a server running in this process (lesson 12), not for measuring one: it
shares the notebook's event loop and CPU with what it loads, has no warm-up and no fixed
duration. Lesson 08 measures servers with a real load tool in its own process (``tools``).

``concurrency`` clients each send requests one after another (a "closed loop", like users
who click again when the page arrives), so at most ``concurrency`` requests are in flight.
Each client has its own connection, as a browser or a proxy in front of the server would;
one shared SSL context keeps starting 500 clients cheap.
"""

import asyncio
import math
import ssl
import time
from dataclasses import dataclass, field

import httpx

_ssl_context = ssl.create_default_context()  # unused over http://, but httpx builds one per client


@dataclass
class LoadResult:
    url: str
    concurrency: int
    latencies: list  # seconds, one per successful request
    errors: int
    elapsed: float  # seconds, from the first request sent to the last answer
    peak_threads: int | None = None
    headers: dict = field(default_factory=dict)  # of one 200 answer: what it went through

    @property
    def requests_per_second(self):
        return len(self.latencies) / self.elapsed

    def percentile(self, p):
        return percentile(self.latencies, p)


def percentile(values, p):
    """The nearest-rank percentile: the smallest value with at least p% of values at or below it."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


async def run_load(url, *, concurrency, requests_per_client=3, timeout=60.0):
    """Send ``concurrency * requests_per_client`` GETs to ``url``; returns a LoadResult."""
    latencies, errors, headers = [], 0, {}

    async def client_loop():
        nonlocal errors, headers
        async with httpx.AsyncClient(timeout=timeout, verify=_ssl_context) as client:
            for _ in range(requests_per_client):
                started = time.perf_counter()
                try:
                    response = await client.get(url)
                    ok = response.status_code == 200
                except httpx.HTTPError:
                    ok = False
                if ok:
                    latencies.append(time.perf_counter() - started)
                    headers = dict(response.headers)
                else:
                    errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(client_loop() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return LoadResult(url, concurrency, latencies, errors, elapsed, headers=headers)
