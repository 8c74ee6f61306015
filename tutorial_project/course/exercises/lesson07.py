"""Checks for lesson 07 · Streaming responses, Server-Sent Events, and client disconnects."""

import asyncio
import time

import httpx
from django.http import StreamingHttpResponse

from tutorial_project.course.exercises.core import exercise
from tutorial_project.course.exercises.probes import call_view
from tutorial_project.instruments.servers import serve_in_process
from tutorial_project.instruments.streaming import SlowJob, read_events
from tutorial_project.playground import mount, unmount

COUNTDOWN = b"3\n2\n1\nliftoff\n"


@exercise("07.1", "Stream a countdown with an async iterator")
async def check_countdown(check, countdown):
    response = await call_view(countdown)
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
    body = b"".join([chunk async for chunk in response])
    check.that(
        body == COUNTDOWN,
        "the body is 3, 2, 1, liftoff, one per line",
        f"the body is {body!r}, expected {COUNTDOWN!r}",
    )


@exercise("07.2", "Stop the job when the client leaves")
async def check_progress_events(check, progress_events):
    job = SlowJob(steps=20, delay=0.1)

    async def progress(request):
        return StreamingHttpResponse(progress_events(job), content_type="text/event-stream")

    route = "exercise-07-2/"
    mount(route, progress)
    try:
        async with serve_in_process() as url, httpx.AsyncClient(timeout=10) as client:
            received = []
            async with client.stream("GET", f"{url}/{route}") as response:
                async for _event, data in read_events(response):
                    received.append(data)
                    if len(received) == 2:
                        break
            left = time.perf_counter()
            await asyncio.sleep(0.5)  # time for 5 more steps, if the job were still running
        after = job.produced_after(left)
        check.that(
            [event.get("step") for event in received] == [1, 2],
            "the first two events carry steps 1 and 2",
            f"the first two events were {received!r}",
            hint='yield sse_event({"step": step, "of": job.steps}) for each step',
        )
        check.that(
            after <= 1 and job.outcome == "cancelled",
            "the job was cancelled when the client left",
            f"the job went on: {after} steps produced after the client left ({job.outcome})",
            hint="wrap the loop in try/finally and cancel the worker task in the finally block",
        )
    finally:
        unmount(route)
        await _let_leaked_job_end(job)


async def _let_leaked_job_end(job, timeout=4.0):
    """A wrong answer may leave the job running: wait for it, so nothing leaks into later cells."""
    deadline = time.monotonic() + timeout
    while job.outcome == "running" and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
