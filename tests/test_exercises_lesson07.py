"""Lesson 07's checks: the reference solutions pass, placeholders and plausible mistakes do not."""

import asyncio

from django.http import HttpResponse, StreamingHttpResponse

from tutorial_project.course.exercises.lesson07 import check_countdown, check_progress_events
from tutorial_project.instruments.streaming import sse_event


def run(coroutine):
    return asyncio.run(coroutine)


async def countdown(request):
    async def lines():
        for word in ["3", "2", "1", "liftoff"]:
            await asyncio.sleep(0.01)
            yield f"{word}\n"

    return StreamingHttpResponse(lines(), content_type="text/plain")


def sync_countdown(request):
    return StreamingHttpResponse(iter(["3\n", "2\n", "1\n", "liftoff\n"]))


def countdown_all_at_once(request):
    return HttpResponse("3\n2\n1\nliftoff\n")


async def progress_events(job):
    progress = asyncio.Queue()

    async def work():
        async for step in job.run():
            await progress.put(step)
        await progress.put(None)

    worker = asyncio.create_task(work())
    try:
        while (step := await progress.get()) is not None:
            yield sse_event({"step": step, "of": job.steps})
    finally:
        worker.cancel()


async def leaky_progress_events(job):
    progress = asyncio.Queue()

    async def work():
        async for step in job.run():
            await progress.put(step)
        await progress.put(None)

    asyncio.create_task(work())
    while (step := await progress.get()) is not None:
        yield sse_event({"step": step, "of": job.steps})


def test_countdown(project):
    assert run(check_countdown(countdown))
    assert not run(check_countdown(...)).solved
    verdict = run(check_countdown(sync_countdown))
    assert not verdict and "sync iterator" in str(verdict)
    verdict = run(check_countdown(countdown_all_at_once))
    assert not verdict and "StreamingHttpResponse" in str(verdict)


def test_progress_events(project):
    assert run(check_progress_events(progress_events))
    assert not run(check_progress_events(...)).solved
    verdict = run(check_progress_events(leaky_progress_events))
    assert not verdict and "the job went on" in str(verdict)
    assert "cancel the worker task" in str(verdict)
