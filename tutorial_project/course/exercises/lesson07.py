"""Checks for lesson 07 · Streaming responses, Server-Sent Events, and client disconnects."""

import asyncio
import contextlib
import time

import httpx
from django.http import StreamingHttpResponse

from tutorial_project.course.exercises.core import exercise
from tutorial_project.course.exercises.probes import call_view
from tutorial_project.course.exercises.quiet import quiet_probe
from tutorial_project.instruments.servers import serve_in_process
from tutorial_project.instruments.streaming import SlowJob, read_events
from tutorial_project.playground import mount, unmount

COUNTDOWN = b"3\n2\n1\nliftoff\n"
PACED = 0.03  # seconds from the first line to the last, at least: there are pauses between


@contextlib.contextmanager
def _blocking_sleeps():
    """Record each ``time.sleep`` made on a thread that runs an event loop (it blocks it)."""
    calls = []
    real_sleep = time.sleep

    def watched_sleep(seconds):
        with contextlib.suppress(RuntimeError):  # RuntimeError: no loop here, a worker thread
            asyncio.get_running_loop()
            calls.append(seconds)
        real_sleep(seconds)

    time.sleep = watched_sleep
    try:
        yield calls
    finally:
        time.sleep = real_sleep


@exercise("07.1", "Stream a countdown with an async iterator")
async def check_countdown(check, countdown):
    with quiet_probe() as probe, _blocking_sleeps() as blocking:
        response = await call_view(countdown)
        arrivals, chunks = [], []
        if getattr(response, "is_async", False):
            async for chunk in response:
                arrivals.append(time.perf_counter())
                chunks.append(chunk)
    check.that(
        response.status_code == 200,
        "the view answers 200",
        f"the view answered {response.status_code}",
    )
    check.that(
        getattr(response, "streaming", False),
        "it returns a StreamingHttpResponse",
        f"it returns a {type(response).__name__}, which is sent all at once",
        hint="return StreamingHttpResponse(your_generator(), content_type='text/plain')",
    )
    check.that(
        response.is_async,
        "its content is an async iterator",
        "its content is a sync iterator: under ASGI Django consumes it whole before sending",
        hint="write the generator with `async def` and `yield`, and `await asyncio.sleep(...)`",
    )
    body = b"".join(chunks)
    check.that(
        body == COUNTDOWN,
        "the body is 3, 2, 1, liftoff, one per line",
        f"the body is {body!r}, expected {COUNTDOWN!r}",
    )
    check.that(
        not blocking,
        "it pauses without blocking the event loop",
        "it calls time.sleep() on the event loop: every other request waits meanwhile",
        hint="pause with `await asyncio.sleep(0.05)`, not time.sleep",
    )
    check.that(
        arrivals[-1] - arrivals[0] >= PACED,
        "the lines come one by one, with pauses between them",
        "the lines all came at once: there is no pause between them",
        hint=probe.hint("pause between lines with `await asyncio.sleep(0.05)`"),
    )


class _FailingJob(SlowJob):
    """A job that raises at step ``fails_at``, as real work sometimes does."""

    def __init__(self, fails_at=3, **kwargs):
        super().__init__(**kwargs)
        self.fails_at = fails_at

    async def run(self):
        async for step in super().run():
            if step == self.fails_at:
                raise RuntimeError("the job failed")
            yield step


async def _read_steps(url, *, stop_after=None, read_timeout):
    """Read the stream's events; stop after ``stop_after`` of them (leaving), or at its end.

    Returns ``(data of each event, how it ended)``: "left", "ended", "broken" (the
    connection was cut mid-response) or "hung" (no byte for ``read_timeout`` seconds).
    """
    received = []
    timeout = httpx.Timeout(10, read=read_timeout)
    async with httpx.AsyncClient(timeout=timeout) as client:
        try:
            async with client.stream("GET", url) as response:
                async for _event, data in read_events(response):
                    received.append(data)
                    if len(received) == stop_after:
                        return received, "left"
        except httpx.ReadTimeout:
            return received, "hung"
        except (httpx.RemoteProtocolError, httpx.ReadError):
            return received, "broken"
    return received, "ended"


def _step(data):
    return data.get("step") if isinstance(data, dict) else None


@exercise("07.2", "Stop the job when the client leaves")
async def check_progress_events(check, progress_events):
    job = SlowJob(steps=20, delay=0.1)
    failing = _FailingJob(fails_at=3, steps=20, delay=0.05)
    jobs = {"exercise-07-2/": job, "exercise-07-2-fails/": failing}

    def progress(job):
        async def view(request):
            return StreamingHttpResponse(progress_events(job), content_type="text/event-stream")

        return view

    for route, each in jobs.items():
        mount(route, progress(each))
    try:
        with quiet_probe() as probe:
            async with serve_in_process() as url:
                received, _ = await _read_steps(f"{url}/exercise-07-2/", stop_after=2,
                                                read_timeout=5)
                left = time.perf_counter()
                await asyncio.sleep(0.5)  # time for 5 more steps, if the job were still running
                after_failure, ending = await _read_steps(f"{url}/exercise-07-2-fails/",
                                                          read_timeout=2)
        after = job.produced_after(left)
        check.that(
            [_step(event) for event in received] == [1, 2],
            "the first two events carry steps 1 and 2",
            f"the first two events were {received!r}",
            hint=probe.hint('yield sse_event({"step": step, "of": job.steps}) for each step'),
        )
        check.that(
            after <= 1 and job.outcome == "cancelled",
            "the job was cancelled when the client left",
            f"the job went on: {after} steps produced after the client left ({job.outcome})",
            hint="wrap the loop in try/finally and cancel the worker task in the finally block",
        )
        check.that(
            ending != "hung",
            "when the job fails, the stream ends instead of hanging",
            "when the job failed at step 3, the stream hung: the generator waited for a step "
            "that never came",
            hint="the worker stopped without putting the end marker in the queue: put it in a "
            "finally block in work(), then `await worker` after the loop to raise its error",
        )
        check.that(
            [_step(event) for event in after_failure if _step(event)] == [1, 2],
            "the steps before the failure reached the client",
            f"before the job failed, the client got {after_failure!r}",
        )
    finally:
        for route in jobs:
            unmount(route)
        for each in jobs.values():
            await _let_leaked_job_end(each)


async def _let_leaked_job_end(job, timeout=4.0):
    """A wrong answer may leave the job running: wait for it, so nothing leaks into later cells."""
    deadline = time.monotonic() + timeout
    while job.outcome == "running" and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
