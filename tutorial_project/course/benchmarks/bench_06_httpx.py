"""Fan-out to the fake upstream: concurrent total vs the slowest call (ratio to ideal)."""

import asyncio
import statistics
import time

import httpx


async def _fan_out_ratios(rounds):
    from tutorial_project.dashboard.sources import fetch_all
    from tutorial_project.instruments.timeline import Timeline
    from tutorial_project.instruments.upstream import FakeUpstream

    transport = httpx.ASGITransport(app=FakeUpstream())
    ratios, sequential = [], []
    async with httpx.AsyncClient(transport=transport, base_url="http://upstream") as client:
        for _ in range(rounds):
            timeline = Timeline()
            await fetch_all(client, timeline=timeline)
            ratios.append(timeline.total / max(s.duration for s in timeline.spans))
            started = time.perf_counter()
            await fetch_all(client, strategy="sequential")
            sequential.append(time.perf_counter() - started)
    return ratios, sequential


async def _client_per_request_ms(base_url, requests=30):
    from tutorial_project.dashboard.clients import loopback_client

    started = time.perf_counter()
    for _ in range(requests):
        async with loopback_client(base_url) as client:
            await client.get("/weather", params={"delay": 0})
    new = (time.perf_counter() - started) / requests * 1000
    async with loopback_client(base_url) as client:
        started = time.perf_counter()
        for _ in range(requests):
            await client.get("/weather", params={"delay": 0})
    return new, (time.perf_counter() - started) / requests * 1000


def run(notebooks):
    from tutorial_project.instruments.upstream import FakeUpstream
    from tutorial_project.instruments.upstream.server import serve_in_thread

    ratios, sequential = asyncio.run(_fan_out_ratios(rounds=10))
    with serve_in_thread(FakeUpstream()) as base_url:
        new, shared = asyncio.run(_client_per_request_ms(base_url))
    return [
        (
            "fan-out of 3 (0.1/0.2/0.3 s): concurrent / slowest call",
            f"median {statistics.median(ratios):.3f}, worst {max(ratios):.3f}"
            " (lesson 06 asserts < 1.5)",
        ),
        ("the same, sequential, s", f"median {statistics.median(sequential):.2f} (ideal sum 0.60)"),
        ("loopback: new AsyncClient per request, ms", f"{new:.1f}"),
        ("loopback: one shared AsyncClient, ms per request", f"{shared:.1f}"),
    ]
