"""Lesson 07's machinery: streaming over a real socket, SSE, and disconnects that stop the work."""

import asyncio
import time

import httpx
from django.http import StreamingHttpResponse

from tutorial_project.instruments.servers import leftovers, serve_in_process
from tutorial_project.instruments.streaming import SlowJob, events_in, read_events, sse_event
from tutorial_project.playground import mount

SSE = "text/event-stream"


def test_sse_event_format():
    assert sse_event({"step": 1}) == 'data: {"step": 1}\n\n'
    assert sse_event({"n": 2}, event="done") == 'event: done\ndata: {"n": 2}\n\n'


def test_a_disconnect_mid_stream_stops_the_producer(project):
    job = SlowJob(steps=30, delay=0.05)
    cleanup = []

    async def events():
        try:
            async for step in job.run():
                yield sse_event({"step": step})
        finally:
            cleanup.append("done")

    mount("t-stream/", lambda request: StreamingHttpResponse(events(), content_type=SSE))

    async def scenario():
        async with serve_in_process() as url, httpx.AsyncClient() as client:
            async with client.stream("GET", f"{url}/t-stream/") as response:
                async for _event, data in read_events(response):
                    if data["step"] == 2:
                        break
            left = time.perf_counter()
            await asyncio.sleep(0.5)
        return left

    left = asyncio.run(scenario())
    assert job.outcome == "cancelled"
    assert job.produced_after(left) <= 1  # at most a step already in flight
    assert len(job.produced) < 10
    assert cleanup == ["done"]


def test_events_stream_one_by_one_over_a_real_socket(project):
    job = SlowJob(steps=4, delay=0.2)

    async def events():
        async for step in job.run():
            yield sse_event({"step": step})

    mount("t-sse/", lambda request: StreamingHttpResponse(events(), content_type=SSE))

    async def scenario():
        arrivals = []
        async with serve_in_process() as url, httpx.AsyncClient() as client:
            started = time.perf_counter()
            async with client.stream("GET", f"{url}/t-sse/") as response:
                async for _event, _data in read_events(response):
                    arrivals.append(time.perf_counter() - started)
        return arrivals

    arrivals = asyncio.run(scenario())
    assert len(arrivals) == 4
    assert arrivals[0] < 0.5 * arrivals[-1]
    assert job.outcome == "finished"


def test_the_in_process_server_binds_loopback_and_leaves_nothing(project):
    async def scenario():
        async with serve_in_process() as url:
            assert url.startswith("http://127.0.0.1:")
            async with httpx.AsyncClient() as client:
                assert (await client.get(f"{url}/api/catalog/products/")).status_code == 200
        return leftovers()

    assert asyncio.run(scenario()) == {}


def test_events_in_reads_a_whole_body_as_read_events_would():
    body = sse_event({"step": 1}) + sse_event({"done": True}, event="done")
    assert events_in(body) == [("message", {"step": 1}), ("done", {"done": True})]
