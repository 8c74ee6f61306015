"""Lesson 07's machinery: streaming over a real socket, SSE parsed as the standard says,
reconnection, heartbeats, threads held by open streams, and disconnects that stop the work."""

import asyncio
import contextvars
import threading
import time

import httpx
import pytest
from asgiref.sync import SyncToAsync, sync_to_async
from django.http import HttpResponse, StreamingHttpResponse

from tutorial_project.instruments.servers import leftovers, serve_in_process, serve_wsgi_in_thread
from tutorial_project.instruments.streaming import (
    SlowJob,
    _EventParser,
    _lines,
    events_in,
    follow_events,
    hold_streams,
    read_events,
    sse_comment,
    sse_event,
    with_heartbeat,
)
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


def test_the_reader_follows_the_sse_parsing_rules():
    body = (
        "\ufeffretry: 250\r\n"
        ": a comment, ignored\r\n"
        "id: 7\r\n"
        'data:  {"two": "spaces"}\r\n'  # only the first space after the colon goes
        "\r\n"
        "event:done\rdata\rdata: 2\r\r"  # CR line ends; "data" alone is an empty value
        "id\n"  # an empty id resets the last event id
        "data: 3\n\n"
        "data: 4\n"  # no blank line: never dispatched
    )
    assert events_in(body) == [("message", {"two": "spaces"}), ("done", 2), ("message", 3)]
    parser = _EventParser()
    lines, rest = _lines(body.removeprefix("\ufeff"))
    seen = [event for line in lines if (event := parser.feed(line))]
    assert [event.id for event in seen] == ["7", "7", ""]
    assert parser.retry == 250


def test_an_id_counts_only_once_its_event_is_dispatched():
    # the HTML standard: `id` sets the last event ID buffer; dispatching (a blank line, even
    # with no data) sets the last event ID string from it; an unfinished event is discarded
    parser = _EventParser()
    lines, _rest = _lines("id: 4\ndata: 4\n\nid: 5\ndata: 5\n")  # the connection drops here
    assert [event.id for line in lines if (event := parser.feed(line))] == ["4"]
    assert parser.last_event_id == "4"  # a reconnection asks for what follows 4, not 5
    parser.end_of_stream()
    assert [parser.feed(line) for line in ["data: 6", ""]][-1].id == "4"
    for line in ["id: 7", ""]:  # an event with an id and no data: nothing is dispatched,
        assert parser.feed(line) is None
    assert parser.last_event_id == "7"  # but its id is the last event id now


def test_the_parser_decodes_data_with_the_function_it_is_given():
    parser = _EventParser(decode=str.upper)  # SSE data is text; JSON is only the default
    lines, _rest = _lines("event: failed\ndata: The job failed.\n\n")
    assert [parser.feed(line) for line in lines][-1] == ("failed", "THE JOB FAILED.", "")


def test_lines_wait_for_the_lf_that_may_follow_a_cr():
    lines, rest = _lines("a\r")
    assert (lines, rest) == ([], "a\r")
    assert _lines("\nb\n", rest) == (["a", "b"], "")


def test_sse_event_writes_id_and_retry():
    assert sse_event({"n": 1}, id=3, retry=100) == 'retry: 100\nid: 3\ndata: {"n": 1}\n\n'
    assert sse_comment() == ": keep-alive\n\n"
    with pytest.raises(ValueError):
        sse_event({}, id="a\nb")
    with pytest.raises(ValueError):  # the line break would inject a data line
        sse_event({}, event='x\ndata: "injected"')


def test_with_heartbeat_fills_silence_and_cancels_the_events_it_wraps():
    job = SlowJob(steps=3, delay=0.3)

    async def events():
        async for step in job.run():
            yield sse_event({"step": step})

    async def scenario():
        received = []
        stream = with_heartbeat(events(), every=0.05)
        async for item in stream:
            received.append(item)
            if item.startswith("data:"):
                break
        await stream.aclose()  # as Django does when the client leaves
        return received

    received = asyncio.run(scenario())
    assert received[0] == sse_comment() and received[-1] == sse_event({"step": 1})
    assert job.outcome in ("cancelled", "closed")


def test_follow_events_resumes_with_last_event_id_and_stops_on_204(project):
    seen_headers = []

    async def resumable(request):
        last = int(request.headers.get("Last-Event-ID", "0"))
        seen_headers.append(last)
        if last == 4:
            return HttpResponse(status=204)

        async def events():
            for step in range(last + 1, 5):
                yield sse_event({"step": step}, id=step, retry=10)

        return StreamingHttpResponse(events(), content_type=SSE)

    mount("t-resume/", resumable)

    async def scenario():
        async with serve_in_process() as url, httpx.AsyncClient() as client:
            follow = follow_events(client, f"{url}/t-resume/", connections=5, drop_after=2)
            return [(number, event.data["step"]) async for number, event in follow]

    assert asyncio.run(scenario()) == [(1, 1), (1, 2), (2, 3), (2, 4)]
    assert seen_headers == [0, 2, 4]


def test_every_open_stream_holds_a_thread_under_asgihandler(project):
    async def ticks():
        for tick in range(100):
            yield sse_event({"tick": tick})
            await asyncio.sleep(0.5)

    mount("t-ticks/", lambda request: StreamingHttpResponse(ticks(), content_type=SSE))

    async def scenario():
        limits = httpx.Limits(max_connections=20)
        async with serve_in_process() as url, httpx.AsyncClient(limits=limits) as client:
            before = threading.active_count()
            async with hold_streams(client, f"{url}/t-ticks/", 10):
                return threading.active_count() - before

    assert asyncio.run(scenario()) >= 10


def test_a_task_that_outlives_its_request_gets_a_thread_of_its_own_unless_its_context_is_fresh(
        project):
    """Lesson 07: a job started in a view inherits the request's ThreadSensitiveContext; once
    the handler has shut that context's thread down, the job's sync_to_async calls get a new
    thread each. With a fresh context they all go to asgiref's one process-wide thread."""
    jobs, threads = set(), []

    def note_thread():
        threads.append(threading.current_thread())  # the object: idents are reused

    async def later():
        await asyncio.sleep(0.5)  # the response is done by then
        await sync_to_async(note_thread)()

    def starts_a_job(context):
        async def view(request):
            job = asyncio.create_task(later(), context=context())
            jobs.add(job)
            job.add_done_callback(jobs.discard)
            return HttpResponse("started")
        return view

    async def threads_of_late_jobs(context):
        threads.clear()
        mount("t-late-job/", starts_a_job(context))
        async with serve_in_process() as url, httpx.AsyncClient() as client:
            for _ in range(3):
                await client.get(f"{url}/t-late-job/")
            while jobs:
                await asyncio.sleep(0.05)
        return list(threads)

    inherited = asyncio.run(threads_of_late_jobs(lambda: None))
    fresh = asyncio.run(threads_of_late_jobs(contextvars.Context))
    process_wide = SyncToAsync.single_thread_executor.submit(threading.current_thread).result()
    assert len(set(inherited)) == 3 and process_wide not in inherited, inherited
    assert fresh == [process_wide] * 3, (fresh, process_wide)


def test_an_async_iterator_under_runserver_wsgi_is_read_whole(project):
    async def slow():
        for n in range(3):
            await asyncio.sleep(0.2)
            yield f"{n}\n"

    mount("t-wsgi/", lambda request: StreamingHttpResponse(slow()))

    async def scenario():
        with serve_wsgi_in_thread() as url:
            async with httpx.AsyncClient() as client:
                started = time.perf_counter()
                async with client.stream("GET", f"{url}/t-wsgi/") as response:
                    first = None
                    async for _chunk in response.aiter_raw():
                        first = first or time.perf_counter() - started
                whole = time.perf_counter() - started
        return first, whole, leftovers()

    with pytest.warns(Warning, match="must consume asynchronous iterators"):
        first, whole, left = asyncio.run(scenario())
    assert first > 0.8 * whole >= 0.4
    assert left == {}
