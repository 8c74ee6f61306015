"""Lesson 07's checks: the reference solutions and answers written differently pass, the
placeholders wait, and the mistakes learners make fail with a hint that says why."""

import asyncio
import concurrent.futures
import contextlib
import ctypes
import logging
import queue
import select
import socket
import sys
import threading
import time
import traceback
from asyncio import timeout  # imported before the check runs: patching asyncio cannot see it
from time import sleep  # imported before the check runs: patching time.sleep cannot see it

import pytest
from asgiref.sync import sync_to_async
from django.http import HttpResponse, StreamingHttpResponse

from tutorial_project.course.exercises import lesson07
from tutorial_project.course.exercises.lesson07 import (
    FAILURE_DETAIL,
    check_countdown,
    check_progress_events,
)
from tutorial_project.instruments.streaming import sse_event


def run(coroutine):
    return asyncio.run(coroutine)


# --- 07.1 countdown -------------------------------------------------------------------------

WORDS = ["3", "2", "1", "liftoff"]


async def countdown(request):  # the reference
    async def lines():
        for word in WORDS:
            await asyncio.sleep(0.05)
            yield f"{word}\n"

    return StreamingHttpResponse(lines(), content_type="text/plain")


class Countdown:
    """Right too: an async iterator class instead of an async generator, pausing after."""

    def __init__(self):
        self.words = iter(WORDS)
        self.first = True

    def __aiter__(self):
        return self

    async def __anext__(self):
        word = next(self.words, None)
        if word is None:
            raise StopAsyncIteration
        if not self.first:
            await asyncio.sleep(0.05)
        self.first = False
        return word.encode() + b"\n"


async def countdown_iterator_class(request):
    return StreamingHttpResponse(Countdown())


def sync_countdown(request):
    return StreamingHttpResponse(iter(["3\n", "2\n", "1\n", "liftoff\n"]))


def countdown_all_at_once(request):
    return HttpResponse("3\n2\n1\nliftoff\n")


async def blocking_countdown(request):
    async def lines():
        for word in WORDS:
            time.sleep(0.05)  # blocks the event loop
            yield f"{word}\n"

    return StreamingHttpResponse(lines(), content_type="text/plain")


async def from_time_import_sleep_countdown(request):
    async def lines():
        for word in WORDS:
            sleep(0.05)  # blocks the event loop, under another name
            yield f"{word}\n"

    return StreamingHttpResponse(lines(), content_type="text/plain")


async def busy_wait_countdown(request):
    async def lines():
        for word in WORDS:
            until = time.monotonic() + 0.05
            while time.monotonic() < until:  # spins: the event loop is blocked
                pass
            yield f"{word}\n"

    return StreamingHttpResponse(lines(), content_type="text/plain")


async def polling_countdown(request):  # the review's: the loop runs, but a core spins
    async def lines():
        for word in WORDS:
            until = time.perf_counter() + 0.05
            while time.perf_counter() < until:
                await asyncio.sleep(0)
            yield f"{word}\n"

    return StreamingHttpResponse(lines(), content_type="text/plain")


async def countdown_on_a_deadline(request):
    """Right too: each pause sleeps until a deadline on the loop's clock, in one await."""

    async def lines():
        loop = asyncio.get_running_loop()
        for word in WORDS:
            deadline = loop.time() + 0.05
            await asyncio.sleep(max(0.0, deadline - loop.time()))
            yield f"{word}\n"

    return StreamingHttpResponse(lines(), content_type="text/plain")


async def countdown_in_a_thread(request):  # review s24's: each pause holds a pool thread
    """The pause runs in a pool's thread, bytes are yielded."""

    async def lines():
        for index, word in enumerate(WORDS):
            if index:
                await asyncio.to_thread(time.sleep, 0.05)
            yield f"{word}\n".encode()

    return StreamingHttpResponse(lines(), content_type="text/plain; charset=utf-8")


def sync_view_async_countdown(request):
    """Right too: a sync view may return an async iterator; it yields first, then pauses."""

    async def lines():
        for index, word in enumerate(WORDS):
            if index:
                await asyncio.sleep(0.05)
            yield f"{word}\n".encode()

    return StreamingHttpResponse(lines())


async def one_pause_only(request):  # the final review's: 3, 2, 1 at once, a pause, liftoff
    async def lines():
        for word in WORDS[:3]:
            yield f"{word}\n"
        await asyncio.sleep(0.05)
        yield "liftoff\n"

    return StreamingHttpResponse(lines())


async def two_lines_in_one_chunk(request):  # review s20's: paused, but 3 and 2 come together
    async def lines():
        await asyncio.sleep(0.05)
        yield "3\n2\n"
        for word in WORDS[2:]:
            await asyncio.sleep(0.05)
            yield f"{word}\n"

    return StreamingHttpResponse(lines())


async def pauses_after_each_line(request):  # right too: the first line at once, then a pause
    async def lines():
        for word in WORDS:
            yield f"{word}\n".encode()
            if word != WORDS[-1]:
                await asyncio.sleep(0.05)

    return StreamingHttpResponse(lines(), content_type="text/plain")


async def forgot_await_countdown(request):
    async def lines():
        for word in WORDS:
            asyncio.sleep(0.05)  # no await: no pause, and a coroutine never awaited
            yield f"{word}\n"

    return StreamingHttpResponse(lines(), content_type="text/plain")


async def no_newlines(request):
    async def lines():
        for word in WORDS:
            await asyncio.sleep(0.01)
            yield word

    return StreamingHttpResponse(lines())


async def countdown_in_the_sync_cache(request):  # session 18's: 07.2 refuses it, so does 07.1
    from django.core.cache import cache

    async def lines():
        for word in WORDS:
            await asyncio.sleep(0.05)
            cache.set("countdown", word)
            yield f"{word}\n"

    return StreamingHttpResponse(lines(), content_type="text/plain")


async def pauses_too_short(request):  # the review s22's: 16 ms where about 50 are asked
    async def lines():
        for word in WORDS:
            await asyncio.sleep(0.016)
            yield f"{word}\n"

    return StreamingHttpResponse(lines())


async def pauses_of_5_ms(request):  # the review s29's: a units slip, 5 ms for 50
    async def lines():
        for word in WORDS:
            await asyncio.sleep(0.005)
            yield f"{word}\n"

    return StreamingHttpResponse(lines())


async def _countdown_lines():
    for word in WORDS:
        await asyncio.sleep(0.05)
        yield f"{word}\n"


class CountdownWords:
    """An async iterable, not an iterator: each aiter() starts a new countdown."""

    def __aiter__(self):
        return _countdown_lines()


COUNTDOWN_WORDS = CountdownWords()


async def one_iterable_for_every_request(request):  # right: shared, but a new iterator each time
    return StreamingHttpResponse(COUNTDOWN_WORDS, content_type="text/plain")


# The wrong answers below share state between requests: each test builds its own view, so the
# state is new for it (a generator made at import would be used up by the first test).


def one_generator_for_every_request():  # review s30's: made once, outside the view
    shared = _countdown_lines()

    async def countdown(request):
        return StreamingHttpResponse(shared, content_type="text/plain")

    return countdown


def one_generator_as_a_default_argument():
    async def countdown(request, lines=_countdown_lines()):  # noqa: B008 (the mistake shown)
        return StreamingHttpResponse(lines, content_type="text/plain")

    return countdown


def one_response_for_every_request():  # built once "for speed"
    response = StreamingHttpResponse(_countdown_lines(), content_type="text/plain")

    async def countdown(request):
        return response

    return countdown


def words_used_up_by_the_first_request():  # a new generator, over an iterator made once
    words = iter(WORDS)

    async def countdown(request):
        async def lines():
            for word in words:
                await asyncio.sleep(0.05)
                yield f"{word}\n"

        return StreamingHttpResponse(lines(), content_type="text/plain")

    return countdown


@pytest.mark.parametrize(
    "make_answer",
    [one_generator_for_every_request, one_generator_as_a_default_argument,
     one_response_for_every_request, words_used_up_by_the_first_request],
)
def test_07_1_an_answer_that_serves_only_the_first_request_fails(project, make_answer):
    verdict = run(check_countdown(make_answer()))
    assert not verdict and verdict.solved
    assert "a second request got" in str(verdict), str(verdict)
    assert "make a new generator in the view, for every request" in str(verdict), str(verdict)


def test_07_1_pauses_of_5_ms_are_named_not_missed(project):
    verdict = run(check_countdown(pauses_of_5_ms))
    assert not verdict and verdict.solved
    assert "the pauses between the lines were" in str(verdict), str(verdict)
    assert "came at once" not in str(verdict), str(verdict)


def _paused_with(pause):
    """The reference, pausing before each line with ``await pause()``."""

    async def view(request):
        async def lines():
            for word in WORDS:
                await pause()
                yield f"{word}\n"

        return StreamingHttpResponse(lines(), content_type="text/plain")

    return view


# review s22's: the loop stays free, but each pause holds the request's sync thread
sleeps_in_the_request_thread = _paused_with(lambda: sync_to_async(time.sleep)(0.05))
sleeps_in_it_under_another_name = _paused_with(lambda: sync_to_async(sleep)(0.05))
sleeps_in_it_in_a_lambda = _paused_with(lambda: sync_to_async(lambda: time.sleep(0.05))())
pauses_ten_times_too_long = _paused_with(lambda: asyncio.sleep(0.5))  # review s22's
pauses_a_tenth_of_a_second = _paused_with(lambda: asyncio.sleep(0.1))  # right too: longer
# review s24's: the loop stays free, but each pause holds one of a pool's few threads
sleeps_in_a_pool_thread = _paused_with(
    lambda: sync_to_async(time.sleep, thread_sensitive=False)(0.05))
sleeps_in_an_executor = _paused_with(  # review s24's
    lambda: asyncio.get_running_loop().run_in_executor(None, time.sleep, 0.05))

# review s25's: other waits than time.sleep, each holding its thread for the whole pause
waits_on_an_event_in_a_pool_thread = _paused_with(
    lambda: asyncio.to_thread(threading.Event().wait, 0.05))
waits_on_an_event_in_the_request_thread = _paused_with(
    lambda: sync_to_async(threading.Event().wait)(0.05))


def _selects_on_a_socket(seconds=0.05):
    left, right = socket.socketpair()  # select() needs a socket on Windows: none is ready
    with left, right:
        select.select([left], [], [], seconds)


selects_in_the_request_thread = _paused_with(lambda: sync_to_async(_selects_on_a_socket)())


def _queue_get_times_out():
    with contextlib.suppress(queue.Empty):
        queue.Queue().get(timeout=0.05)


waits_on_a_queue_in_a_pool_thread = _paused_with(lambda: asyncio.to_thread(_queue_get_times_out))


def _resolved_later():
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    loop.call_later(0.05, future.set_result, None)
    return future


pauses_on_a_future = _paused_with(_resolved_later)  # review s25's: right, written differently


async def _waits_in_slices(run_in_thread):
    for _ in range(10):  # review s27's: ten waits of 5 ms, each shorter than any bar on one call
        await run_in_thread(threading.Event().wait, 0.005)


waits_in_slices_in_a_pool_thread = _paused_with(lambda: _waits_in_slices(asyncio.to_thread))
waits_in_slices_in_the_request_thread = _paused_with(
    lambda: _waits_in_slices(lambda wait, seconds: sync_to_async(wait)(seconds)))


def _blocks_then_awaits(block):
    """Review 07-s27b's: each 50 ms pause blocks the loop 40 ms, then awaits 10 ms."""

    async def pause():
        block(0.04)
        await asyncio.sleep(0.01)

    return _paused_with(pause)


selects_most_of_each_pause = _blocks_then_awaits(_selects_on_a_socket)
sleeps_most_of_each_pause = _blocks_then_awaits(sleep)  # bound before the check patches it
# a blocking call no watcher names (ctypes calls make no profile event): only timing sees it
usleeps_most_of_each_pause = _blocks_then_awaits(
    lambda seconds: ctypes.CDLL(None).usleep(int(seconds * 1e6)))


async def _counted_then_paused():
    from tutorial_project.catalog.models import Product

    await Product.objects.acount()  # a short sync call in the request's thread, per line
    await asyncio.sleep(0.05)


counts_with_the_async_orm = _paused_with(_counted_then_paused)  # right: review s27's


async def _a_sync_call_then_paused():
    await asyncio.sleep(0.045)
    _selects_on_a_socket(0.008)  # a sync Redis or HTTP call: under the 10 ms the timing sees


calls_a_sync_client_per_line = _paused_with(_a_sync_call_then_paused)  # review 07-s31's


async def _paused_under_a_timeout():
    async with asyncio.timeout(1):  # around the await alone: right
        await asyncio.sleep(0.05)


times_out_each_pause = _paused_with(_paused_under_a_timeout)


async def countdown_yields_inside_a_timeout(request):  # review 07-s31's: PEP 789's trap
    async def lines():
        async with asyncio.timeout(5):  # "cap the stream"
            for word in WORDS:
                await asyncio.sleep(0.05)
                yield f"{word}\n"

    return StreamingHttpResponse(lines(), content_type="text/plain")


async def sleep_returns_the_line(request):  # review s25's: right, written differently
    async def lines():
        for word in WORDS:
            yield await asyncio.sleep(0.05, result=f"{word}\n")

    return StreamingHttpResponse(lines())


async def sync_orm_in_the_generator(request):  # review s22's: SynchronousOnlyOperation
    from tutorial_project.catalog.models import Product

    async def lines():
        for word in WORDS:
            await asyncio.sleep(0.05)
            yield f"{word} ({Product.objects.count()} products)\n"

    return StreamingHttpResponse(lines())


async def sync_orm_in_the_view(request):
    from tutorial_project.catalog.models import Product

    words = WORDS if Product.objects.exists() else []
    return StreamingHttpResponse(f"{word}\n" for word in words)


WAITERS = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="waiter")


async def waits_in_a_pool_of_its_own(request):  # review s31b's: a thread does the waiting
    async def lines():
        for word in WORDS:
            await asyncio.wrap_future(WAITERS.submit(threading.Event().wait, 0.05))
            yield f"{word}\n"

    return StreamingHttpResponse(lines())


async def sleeps_in_a_pool_of_its_own(request):  # its name and the pool's hide the sleep
    async def lines():
        for word in WORDS:
            await asyncio.wrap_future(WAITERS.submit(sleep, 0.05))
            yield f"{word}\n"

    return StreamingHttpResponse(lines())


async def pauses_with_a_timer(request):
    async def lines():
        loop = asyncio.get_running_loop()
        for word in WORDS:
            paused = loop.create_future()
            threading.Timer(0.05, loop.call_soon_threadsafe, (paused.set_result, None)).start()
            await paused
            yield f"{word}\n"

    return StreamingHttpResponse(lines())


async def pauses_in_a_thread_of_its_own(request):
    async def lines():
        loop = asyncio.get_running_loop()
        for word in WORDS:
            paused = loop.create_future()

            def wait(paused=paused):
                sleep(0.05)
                loop.call_soon_threadsafe(paused.set_result, None)

            threading.Thread(target=wait, daemon=True).start()
            await paused
            yield f"{word}\n"

    return StreamingHttpResponse(lines())


@pytest.mark.parametrize(
    "answer",
    [countdown, countdown_iterator_class, sync_view_async_countdown,
     countdown_on_a_deadline, pauses_after_each_line, pauses_a_tenth_of_a_second,
     pauses_on_a_future, sleep_returns_the_line, counts_with_the_async_orm,
     one_iterable_for_every_request, times_out_each_pause],
)
def test_07_1_right_answers_pass(project, answer):
    verdict = run(check_countdown(answer))
    assert verdict, str(verdict)


def test_07_1_placeholder_is_not_solved(project):
    assert not run(check_countdown(...)).solved


@pytest.mark.parametrize(
    "answer, message",
    [
        (sync_countdown, "sync iterator"),
        (countdown_all_at_once, "StreamingHttpResponse"),
        (blocking_countdown, "time.sleep() on the event loop"),
        (from_time_import_sleep_countdown, "block the event loop"),
        (busy_wait_countdown, "block the event loop"),
        (polling_countdown, "keeps a core busy"),
        (forgot_await_countdown, "did you forget `await`"),
        (no_newlines, "expected"),
        (one_pause_only, "some lines came together"),
        (two_lines_in_one_chunk, "some lines came together, in one chunk: b'3\\n2\\n'"),
        (countdown_in_the_sync_cache, "cache.set() on the event loop"),
        (pauses_too_short, "the exercise asks for about 50 ms"),
        (sync_orm_in_the_generator, "the stream broke off: your generator called the sync ORM"),
        (sync_orm_in_the_view, "the view answered 500: it called the sync ORM"),
        (sleeps_in_the_request_thread, "it pauses with `sync_to_async(time.sleep)`"),
        (sleeps_in_it_under_another_name, "it pauses with `sync_to_async(time.sleep)`"),
        (sleeps_in_it_in_a_lambda, "it pauses with `sync_to_async(time.sleep)`"),
        (pauses_ten_times_too_long, "and up to 250 ms passes"),
        (countdown_in_a_thread, "it pauses in a pool's thread"),
        (sleeps_in_a_pool_thread, "it pauses in a pool's thread"),
        (sleeps_in_an_executor, "it pauses in a pool's thread"),
        (waits_on_an_event_in_a_pool_thread, "calls it ran in threads lasted"),
        (waits_on_an_event_in_the_request_thread, "calls it ran in threads lasted"),
        (selects_in_the_request_thread, "calls it ran in threads lasted"),
        (waits_on_a_queue_in_a_pool_thread, "calls it ran in threads lasted"),
        (waits_in_a_pool_of_its_own, "calls it ran in threads lasted"),
        (sleeps_in_a_pool_of_its_own, "calls it ran in threads lasted"),
        (pauses_with_a_timer, "it starts a thread for its pauses (Timer)"),
        (pauses_in_a_thread_of_its_own, "it starts a thread for its pauses (Thread)"),
        (waits_in_slices_in_a_pool_thread, "in one wait or many short ones"),
        (waits_in_slices_in_the_request_thread, "in one wait or many short ones"),
        (selects_most_of_each_pause, "it calls select.select there"),
        (calls_a_sync_client_per_line, "it calls select.select on the event loop"),
        (countdown_yields_inside_a_timeout, "it yields inside an `asyncio.timeout()` block"),
        (sleeps_most_of_each_pause, "it calls time.sleep there"),
        pytest.param(usleeps_most_of_each_pause, "the pauses block the event loop: it was held",
                     marks=pytest.mark.skipif(sys.platform == "win32", reason="no usleep")),
    ],
)
def test_07_1_wrong_answers_fail_with_a_hint(project, answer, message, recwarn):
    verdict = run(check_countdown(answer))
    assert not verdict and verdict.solved
    assert message in str(verdict), str(verdict)
    assert not [w for w in recwarn if "never awaited" in str(w.message)]
    # no false tick: a blocking answer is never told that it pauses without blocking
    assert "without blocking" not in str(verdict), str(verdict)


def test_07_1_a_poller_is_refused_by_its_turns_when_a_busy_machine_starves_it(
        project, monkeypatch):
    """At a load of 28 a poller got too little CPU to cross the CPU bar; its thousands of loop
    turns still show. Lift the CPU bar out of reach so only the turns can refuse it."""
    monkeypatch.setattr(lesson07, "BUSY_CPU", 10.0)
    verdict = run(check_countdown(polling_countdown))
    assert not verdict and verdict.solved
    assert "the loop turned" in str(verdict) and "keeps a core busy" in str(verdict), str(verdict)


# --- 07.2 progress_events -------------------------------------------------------------------


async def progress_events(job):  # the reference
    progress = asyncio.Queue()

    async def work():
        try:
            async for step in job.run():
                await progress.put(step)
        finally:
            progress.put_nowait(None)  # the end marker, whether the job finished or failed

    worker = asyncio.create_task(work())
    try:
        while (step := await progress.get()) is not None:
            yield sse_event({"step": step, "of": job.steps})
        try:
            await worker  # raises the job's error, if it failed
        except Exception:
            logging.getLogger(__name__).exception("the job failed")
            yield sse_event({"error": "the job failed"}, event="failed")
        else:
            yield sse_event({"total": job.steps}, event="done")
    finally:
        worker.cancel()


async def errors_through_the_queue(job):
    """Right too: the worker sends ("step" | "error" | "done", value); the generator returns."""
    progress = asyncio.Queue()

    async def work():
        try:
            async for step in job.run():
                await progress.put(("step", step))
        except Exception as error:
            await progress.put(("error", error))
            return
        await progress.put(("done", None))

    worker = asyncio.create_task(work())
    try:
        while True:
            kind, value = await progress.get()
            if kind == "step":
                yield sse_event({"step": value, "of": job.steps})
            elif kind == "error":
                logging.getLogger("jobs").error("the job failed", exc_info=value)
                yield sse_event({"error": "the job failed"}, event="failed")
                return
            else:
                yield sse_event({"total": job.steps}, event="done")
                return
    finally:
        worker.cancel()


async def cancel_caught_and_reraised(job):
    """The second review's: CancelledError caught to cancel the worker, then re-raised, but
    closing the generator (GeneratorExit) leaves the worker running."""
    progress = asyncio.Queue()

    async def work():
        try:
            async for step in job.run():
                await progress.put(step)
        finally:
            progress.put_nowait(None)

    worker = asyncio.create_task(work())
    try:
        while (step := await progress.get()) is not None:
            yield sse_event({"step": step, "of": job.steps})
        if worker.exception():
            yield sse_event({"error": "failed"}, event="failed")
        else:
            yield sse_event({"total": job.steps}, event="done")
    except asyncio.CancelledError:
        worker.cancel()
        raise


async def hangs_on_success(job):  # the review's: the end marker is sent only on failure
    progress = asyncio.Queue()

    async def work():
        try:
            async for step in job.run():
                await progress.put(step)
        except Exception as error:
            await progress.put(error)

    worker = asyncio.create_task(work())
    try:
        while True:
            item = await progress.get()
            if isinstance(item, Exception):
                yield sse_event({"error": str(item)}, event="failed")
                return
            yield sse_event({"step": item, "of": job.steps})
    finally:
        worker.cancel()


async def swallows_the_cancellation(job):  # the review's: CancelledError caught, not re-raised
    progress = asyncio.Queue()

    async def work():
        try:
            async for step in job.run():
                await progress.put(step)
        finally:
            progress.put_nowait(None)

    worker = asyncio.create_task(work())
    try:
        while (step := await progress.get()) is not None:
            yield sse_event({"step": step, "of": job.steps})
        try:
            await worker
        except Exception:
            yield sse_event({"error": "the job failed"}, event="failed")
        else:
            yield sse_event({"total": job.steps}, event="done")
    except asyncio.CancelledError:
        worker.cancel()  # no raise: swallowed


async def no_done_on_success(job):
    progress = asyncio.Queue()

    async def work():
        try:
            async for step in job.run():
                await progress.put(step)
        finally:
            progress.put_nowait(None)

    worker = asyncio.create_task(work())
    try:
        while (step := await progress.get()) is not None:
            yield sse_event({"step": step, "of": job.steps})
        try:
            await worker
        except Exception:
            yield sse_event({"error": "the job failed"}, event="failed")
    finally:
        worker.cancel()


async def raises_the_failure(job):  # the lesson's reference before: cuts the connection
    progress = asyncio.Queue()

    async def work():
        try:
            async for step in job.run():
                await progress.put(step)
        finally:
            progress.put_nowait(None)

    worker = asyncio.create_task(work())
    try:
        while (step := await progress.get()) is not None:
            yield sse_event({"step": step, "of": job.steps})
        await worker  # raises the job's error out of the generator
    finally:
        worker.cancel()


async def sends_the_failure_then_reraises(job):  # review 07-s28's: no `await` in finally
    progress = asyncio.Queue()

    async def work():
        try:
            async for step in job.run():
                await progress.put(step)
        except Exception:
            await progress.put(None)
            raise
        await progress.put(None)

    worker = asyncio.create_task(work())
    try:
        while (step := await progress.get()) is not None:
            yield sse_event({"step": step, "of": job.steps})
        try:
            await worker
        except Exception:
            logging.getLogger(__name__).exception("the job failed")
            yield sse_event({"error": "the job failed"}, event="failed")
            raise
        else:
            yield sse_event({"total": job.steps}, event="done")
    finally:
        worker.cancel()


async def says_done_after_a_failure(job):
    progress = asyncio.Queue()

    async def work():
        try:
            async for step in job.run():
                await progress.put(step)
        except Exception:
            pass  # swallowed: the client will believe the job finished
        finally:
            progress.put_nowait(None)

    worker = asyncio.create_task(work())
    try:
        while (step := await progress.get()) is not None:
            yield sse_event({"step": step, "of": job.steps})
        yield sse_event({"total": job.steps}, event="done")
    finally:
        worker.cancel()


async def no_task_at_all(job):
    async for step in job.run():
        yield sse_event({"step": step, "of": job.steps})


async def error_event_names_the_step(job):
    """Right too: tagged queue items, the error event carries the step that failed."""
    progress = asyncio.Queue()

    async def work():
        try:
            async for step in job.run():
                progress.put_nowait(("step", step))
            progress.put_nowait(("done", None))
        except Exception as error:
            progress.put_nowait(("error", error))

    worker = asyncio.create_task(work())
    last = 0
    try:
        while True:
            kind, value = await progress.get()
            if kind == "step":
                last = value
                yield sse_event({"step": value, "of": job.steps})
            elif kind == "error":
                # the exception itself as exc_info: the record carries its traceback
                logging.getLogger(__name__).error("the job failed", exc_info=value)
                yield sse_event({"step": last + 1, "error": "failed"}, event="failed")
                return
            else:
                yield sse_event({"total": job.steps}, event="done")
                return
    finally:
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker


async def progress_events_with_error_event(job):
    """Right too: the end marker comes from a done callback, and a failure becomes an event."""
    progress = asyncio.Queue()

    async def work():
        async for step in job.run():
            await progress.put(step)

    worker = asyncio.create_task(work())
    worker.add_done_callback(lambda _task: progress.put_nowait(None))
    try:
        while (step := await progress.get()) is not None:
            yield sse_event({"step": step, "of": job.steps})
        if not worker.cancelled() and worker.exception() is not None:
            logging.getLogger(__name__).error("the job failed", exc_info=worker.exception())
            yield sse_event({"error": "the job failed"}, event="failed")
        else:
            yield sse_event({"total": job.steps}, event="done")
    finally:
        worker.cancel()


async def failure_in_plain_text(job):
    """Right too: the failure and done events carry plain text, valid SSE that EventSource
    hands to the page as a string (only the progress events are asked to be JSON)."""
    progress = asyncio.Queue()

    async def work():
        try:
            async for step in job.run():
                await progress.put(step)
        finally:
            progress.put_nowait(None)

    worker = asyncio.create_task(work())
    try:
        while (step := await progress.get()) is not None:
            yield sse_event({"step": step, "of": job.steps})
        try:
            await worker
        except Exception:  # noqa: BLE001 (the job's own error: the browser gets a generic one)
            logging.exception("the job failed")  # the root logger
            yield "event: failed\ndata: The job failed. Please try again later.\n\n"
        else:
            yield "event: done\ndata: finished\n\n"
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


async def leaves_its_getter_pending(job):  # review 07-s32: cancels the worker, not its getter
    progress = asyncio.Queue()

    async def work():
        async for step in job.run():
            progress.put_nowait(step)

    worker = asyncio.create_task(work())
    try:
        while True:
            getter = asyncio.ensure_future(progress.get())
            done, _ = await asyncio.wait({getter, worker}, return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                yield sse_event({"step": getter.result(), "of": job.steps})
                continue
            getter.cancel()
            while not progress.empty():
                yield sse_event({"step": progress.get_nowait(), "of": job.steps})
            break
        if worker.exception() is not None:
            logging.getLogger("shop.jobs").error("job failed", exc_info=worker.exception())
            yield sse_event({"message": "Something went wrong"}, event="failed")
        else:
            yield sse_event({"total": job.steps}, event="done")
    finally:
        worker.cancel()


async def hangs_if_the_job_fails(job):  # the lesson's reference before the fix
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


async def swallows_the_failure(job):
    progress = asyncio.Queue()

    async def work():
        try:
            async for step in job.run():
                await progress.put(step)
            await progress.put(None)
        except Exception:
            pass  # the error is swallowed, and so is the end marker

    worker = asyncio.create_task(work())
    try:
        while (step := await progress.get()) is not None:
            yield sse_event({"step": step, "of": job.steps})
    finally:
        worker.cancel()


async def cancels_only_at_the_end(job):
    progress = asyncio.Queue()

    async def work():
        try:
            async for step in job.run():
                await progress.put(step)
        finally:
            progress.put_nowait(None)

    worker = asyncio.create_task(work())
    while (step := await progress.get()) is not None:
        yield sse_event({"step": step, "of": job.steps})
    worker.cancel()  # not reached when the client leaves


async def wrong_payload(job):
    async for step in job.run():
        yield sse_event(step)


async def sends_the_exception_text(job):  # the second review's
    progress = asyncio.Queue()

    async def work():
        try:
            async for step in job.run():
                await progress.put(step)
        finally:
            progress.put_nowait(None)

    worker = asyncio.create_task(work())
    try:
        while (step := await progress.get()) is not None:
            yield sse_event({"step": step, "of": job.steps})
        try:
            await worker
        except Exception as error:
            yield sse_event({"error": repr(error)}, event="failed")
        else:
            yield sse_event({"total": job.steps}, event="done")
    finally:
        worker.cancel()


async def guesses_failure_from_a_timeout(job):  # the second review's: no end marker
    progress = asyncio.Queue()

    async def work():
        async for step in job.run():
            await progress.put(step)
        await progress.put(None)

    worker = asyncio.create_task(work())
    try:
        while True:
            try:
                step = await asyncio.wait_for(progress.get(), timeout=1.0)
            except TimeoutError:
                yield sse_event({"error": "the job failed"}, event="failed")
                return
            if step is None:
                break
            yield sse_event({"step": step, "of": job.steps})
        yield sse_event({"total": job.steps}, event="done")
    finally:
        worker.cancel()


def _guesses_after(seconds):
    """Review s20's: no end marker; silence for ``seconds`` is taken for a failure."""

    async def guesses(job):
        progress = asyncio.Queue()

        async def work():
            async for step in job.run():
                await progress.put(step)
            await progress.put(None)

        worker = asyncio.create_task(work())
        try:
            while True:
                try:
                    step = await asyncio.wait_for(progress.get(), seconds)
                except TimeoutError:
                    yield sse_event({"error": "the job failed"}, event="failed")
                    return
                if step is None:
                    break
                yield sse_event({"step": step, "of": job.steps})
            yield sse_event({"total": job.steps}, event="done")
        finally:
            worker.cancel()

    return guesses


guesses_between_the_two_runs = _guesses_after(1.5)  # passed when the slow step was 1.2 s
guesses_longer_than_the_reader_waits = _guesses_after(2.5)


async def awaits_the_failed_worker(job):  # review s20's: `await worker` in finally re-raises
    progress = asyncio.Queue()

    async def work():
        try:
            async for step in job.run():
                await progress.put(step)
        finally:
            progress.put_nowait(None)

    worker = asyncio.create_task(work())
    try:
        while (step := await progress.get()) is not None:
            yield sse_event({"step": step, "of": job.steps})
        if worker.exception() is not None:
            yield sse_event({"error": "the job failed"}, event="failed")
        else:
            yield sse_event({"total": job.steps}, event="done")
    finally:
        if not worker.done():
            worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker  # after a failure: the job's RuntimeError, after the failed event


async def yields_inside_a_task_group(job):  # the second review's: what "use TaskGroup" leads to
    progress = asyncio.Queue()

    async def work():
        try:
            async for step in job.run():
                await progress.put(step)
        finally:
            progress.put_nowait(None)

    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(work())
            while (step := await progress.get()) is not None:
                yield sse_event({"step": step, "of": job.steps})
        yield sse_event({"total": job.steps}, event="done")
    except* Exception:
        yield sse_event({"error": "the job failed"}, event="failed")


async def waits_for_the_first(job):
    """Right too: asyncio.wait on the next step and on the worker, whichever comes first."""
    progress = asyncio.Queue()

    async def work():
        async for step in job.run():
            progress.put_nowait(step)

    worker, getter = asyncio.create_task(work()), None
    try:
        while True:
            getter = asyncio.ensure_future(progress.get())
            done, _ = await asyncio.wait({getter, worker}, return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                yield sse_event({"step": getter.result(), "of": job.steps})
                continue
            getter.cancel()
            while not progress.empty():
                yield sse_event({"step": progress.get_nowait(), "of": job.steps})
            if worker.exception() is not None:  # a warning is logged too
                logging.getLogger(__name__).warning("job failed", exc_info=worker.exception())
                yield sse_event({"message": "the job failed"}, event="failed")
            else:
                yield sse_event({"total": job.steps}, event="done")
            return
    finally:
        worker.cancel()
        if getter is not None:  # a disconnect cancels this generator while both wait
            getter.cancel()
        # the worker's error or CancelledError comes back as a value; a cancellation of this
        # task still raises here (suppress(CancelledError) would swallow it)
        await asyncio.gather(worker, return_exceptions=True)


async def tagged_and_reraised(job):
    """Right too: tagged queue items; CancelledError caught, re-raised, and a finally too."""
    progress = asyncio.Queue()

    async def work():
        try:
            async for step in job.run():
                progress.put_nowait(("step", step))
        except Exception:
            logging.getLogger(__name__).exception("the job failed")  # in the worker's task
            progress.put_nowait(("failed", None))
        else:
            progress.put_nowait(("done", None))

    worker = asyncio.create_task(work())
    try:
        while True:
            kind, step = await progress.get()
            if kind == "step":
                yield sse_event({"step": step, "of": job.steps})
            elif kind == "failed":
                yield sse_event({"error": "failed"}, event="failed")
                return
            else:
                yield sse_event({"total": job.steps}, event="done")
                return
    except asyncio.CancelledError:
        raise
    finally:
        worker.cancel()


async def _marker_put_nowait(job, progress):  # the reference's end marker, before review s27b
    try:
        async for step in job.run():
            await progress.put(step)
    finally:
        progress.put_nowait(None)


async def _marker_awaited(job, progress):  # the lesson's: on success and failure, awaited
    try:
        async for step in job.run():
            await progress.put(step)
    except Exception:
        await progress.put(None)
        raise
    await progress.put(None)


async def _marker_put_nowait_at_the_end(job, progress):  # review 07-s28's: not in finally
    try:
        async for step in job.run():
            await progress.put(step)
    except Exception:
        progress.put_nowait(None)
        raise
    progress.put_nowait(None)


async def _marker_awaited_in_finally(job, progress):  # review s27b's: waits after a cancel
    try:
        async for step in job.run():
            await progress.put(step)
    finally:
        await progress.put(None)


def _reference_with(*, on_each_step=None, failure_event="failed", failure=None,
                    around_yields=None, maxsize=0, work=_marker_put_nowait):
    """The reference answer, changed in one place, as the final review wrote its cases."""

    async def answer(job):
        progress = asyncio.Queue(maxsize(job) if callable(maxsize) else maxsize)

        worker = asyncio.create_task(work(job, progress))
        try:
            async with around_yields() if around_yields else contextlib.nullcontext():
                while (step := await progress.get()) is not None:
                    if on_each_step:
                        on_each_step(step)
                    yield sse_event({"step": step, "of": job.steps})
            try:
                await worker
            except Exception as error:
                message = failure(error) if failure else "the job failed"
                yield sse_event({"error": message}, event=failure_event)
            else:
                yield sse_event({"total": job.steps}, event="done")
        finally:
            worker.cancel()

    return answer


names_it_error = _reference_with(failure_event="error")  # EventSource's own event name
leaks_part_of_the_error = _reference_with(failure=lambda error: str(error).split(" ")[0])
sleeps_on_the_loop = _reference_with(on_each_step=lambda step: time.sleep(0.01))
# review s27b's: the lesson advised a bounded queue for big items
bounded_and_put_nowait = _reference_with(maxsize=1)  # QueueFull: the end marker is lost
bounded_and_awaited_in_finally = _reference_with(maxsize=1, work=_marker_awaited_in_finally)
# review 07-s28's: a reader only a step or two behind never fills a queue of 2 or 10
put_nowait_in_a_queue_of_2 = _reference_with(maxsize=2)
put_nowait_in_a_queue_of_10 = _reference_with(maxsize=10, work=_marker_put_nowait_at_the_end)


def _sync_cache_set(step):
    from django.core.cache import cache

    cache.set("job-progress", step)  # a sync cache call on the event loop


uses_the_sync_cache = _reference_with(on_each_step=_sync_cache_set)
yields_inside_a_timeout = _reference_with(around_yields=lambda: asyncio.timeout(30))


throttled_by_a_hidden_sleep = _reference_with(on_each_step=lambda step: sleep(0.02))
capped_by_a_hidden_timeout = _reference_with(around_yields=lambda: timeout(30))


# Short blocking waits on the loop, as a sync rate limiter or a sync client makes them: each
# holds every other request for as long as it waits (task 2 of session 21).
waits_on_an_event = _reference_with(on_each_step=lambda step: threading.Event().wait(0.02))


def _select_on_a_socket(step):
    left, right = socket.socketpair()  # select() needs a socket on Windows: none is ready
    with left, right:
        select.select([left], [], [], 0.02)


selects_on_the_loop = _reference_with(on_each_step=_select_on_a_socket)


def _blocks_once(*, on_done=None, on_leaving=None):
    """Review 07-s31's: the reference with one short sync call (a webhook with `requests`, a
    sync Redis call; `select` stands for it) off the path of a failing job: before the `done`
    event, or when the client leaves. The check watches every path for blocking calls."""

    async def answer(job):
        progress = asyncio.Queue()
        worker = asyncio.create_task(_marker_put_nowait(job, progress))
        try:
            while (step := await progress.get()) is not None:
                yield sse_event({"step": step, "of": job.steps})
            try:
                await worker
            except Exception:
                logging.getLogger(__name__).exception("the job failed")
                yield sse_event({"error": "the job failed"}, event="failed")
            else:
                if on_done:
                    on_done()
                yield sse_event({"total": job.steps}, event="done")
        except (asyncio.CancelledError, GeneratorExit):
            if on_leaving:
                on_leaving()  # "mark the job abandoned"
            raise
        finally:
            worker.cancel()

    return answer


def _short_select(seconds):
    def block():
        left, right = socket.socketpair()
        with left, right:
            select.select([left], [], [], seconds)

    return block


blocks_before_done = _blocks_once(on_done=_short_select(0.2))
blocks_when_the_client_leaves = _blocks_once(on_leaving=_short_select(0.02))


def _polls_every(seconds):
    """Review 07-s31's: a queue looked at every 20-40 ms, a sleep between looks. Its looks
    may fall just after each step, so the events come nearly on time; it wakes all the same."""

    async def answer(job):
        progress = asyncio.Queue()
        worker = asyncio.create_task(_marker_put_nowait(job, progress))
        try:
            while True:
                while progress.empty():
                    await asyncio.sleep(seconds)
                if (step := progress.get_nowait()) is None:
                    break
                yield sse_event({"step": step, "of": job.steps})
            try:
                await worker
            except Exception:
                logging.getLogger(__name__).exception("the job failed")
                yield sse_event({"error": "the job failed"}, event="failed")
            else:
                yield sse_event({"total": job.steps}, event="done")
        finally:
            worker.cancel()

    return answer


polls_every_20_ms = _polls_every(0.02)
polls_every_40_ms = _polls_every(0.04)


async def paced_in_a_thread(job):
    """Right too: the same sync wait, moved to a thread (the loop stays free), and the failure
    logged through the root logger."""
    progress = asyncio.Queue()

    async def work():
        try:
            async for step in job.run():
                await progress.put(step)
        finally:
            progress.put_nowait(None)

    worker = asyncio.create_task(work())
    try:
        while (step := await progress.get()) is not None:
            await asyncio.to_thread(threading.Event().wait, 0.01)
            yield sse_event({"step": step, "of": job.steps})
        if (error := await asyncio.gather(worker, return_exceptions=True)) != [None]:
            logging.exception("job failed", exc_info=error[0])
            yield sse_event({"error": "the job failed"}, event="failed")
        else:
            yield sse_event({"total": job.steps}, event="done")
    finally:
        worker.cancel()


def _waits_in_a_thread(wait):
    """Review s25's: a thread-safe ``queue.Queue``, as in threaded code, each step awaited with
    ``wait(progress.get)``: the loop stays free, a thread waits for the whole job."""

    async def answer(job):
        progress = queue.Queue()

        async def work():
            try:
                async for step in job.run():
                    progress.put(step)
            finally:
                progress.put(None)

        worker = asyncio.create_task(work())
        try:
            while (step := await wait(progress.get)) is not None:
                yield sse_event({"step": step, "of": job.steps})
            try:
                await worker
            except Exception:
                logging.getLogger(__name__).exception("the job failed")
                yield sse_event({"error": "the job failed"}, event="failed")
            else:
                yield sse_event({"total": job.steps}, event="done")
        finally:
            worker.cancel()

    return answer


waits_in_a_pool_thread = _waits_in_a_thread(asyncio.to_thread)
waits_in_the_request_thread = _waits_in_a_thread(lambda get: sync_to_async(get)())


async def without_the_total(job):  # session 18's: the statement asks for "of"
    async for event in progress_events(job):
        yield event.replace(f', "of": {job.steps}', "")


async def awaits_the_cancelled_worker(job):  # session 18's: `await worker` after cancel()
    progress = asyncio.Queue()

    async def work():
        try:
            async for step in job.run():
                await progress.put(step)
        finally:
            progress.put_nowait(None)

    worker = asyncio.create_task(work())
    try:
        while (step := await progress.get()) is not None:
            yield sse_event({"step": step, "of": job.steps})
        try:
            await worker
        except Exception:  # noqa: BLE001
            yield sse_event({"error": "the job failed"}, event="failed")
        else:
            yield sse_event({"total": job.steps}, event="done")
    finally:
        worker.cancel()
        await worker  # re-raises CancelledError (closed) or the job's error (failed)


async def waits_for_the_cancelled_worker(job):
    """Right too (session 18's): cancels a worker still running and waits for it, quietly."""
    progress = asyncio.Queue()

    async def work():
        try:
            async for step in job.run():
                await progress.put(step)
        finally:
            progress.put_nowait(None)

    worker = asyncio.create_task(work())
    try:
        while (step := await progress.get()) is not None:
            yield sse_event({"step": step, "of": job.steps}, id=step)
        try:
            await worker
        except Exception as error:  # noqa: BLE001
            logging.getLogger(__name__).error("the export failed: %s", error, exc_info=True)
            yield sse_event({"message": "Sorry, the export failed."}, event="job-failed")
        else:
            yield sse_event({"total": job.steps}, event="done")
    finally:
        if not worker.done():
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker


async def with_heartbeats(job):
    """Right too (session 18's): keep-alive comments, a timeout around the `get()` alone."""
    progress = asyncio.Queue()

    async def work():
        try:
            async for step in job.run():
                await progress.put(step)
        finally:
            progress.put_nowait(None)

    worker = asyncio.create_task(work())
    try:
        while True:
            try:
                async with asyncio.timeout(0.5):
                    step = await progress.get()
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            if step is None:
                break
            yield sse_event({"step": step, "of": job.steps})
        error = None if worker.cancelled() else worker.exception()
        if worker.cancelled() or error is not None:
            logging.getLogger(__name__).error("the job failed: %r", error, exc_info=error)
            yield sse_event({"error": "the job failed"}, event="failed")
        else:
            yield sse_event({"total": job.steps}, event="done")
    finally:
        worker.cancel()


async def capped_with_a_deadline(job):
    """Right too: a deadline around each `await` (not the `yield`), another event name, and the
    async cache API."""
    from django.core.cache import cache

    progress = asyncio.Queue()
    deadline = asyncio.get_running_loop().time() + 30

    async def work():
        try:
            async for step in job.run():
                await progress.put(step)
        finally:
            progress.put_nowait(None)

    worker = asyncio.create_task(work())
    try:
        while True:
            async with asyncio.timeout_at(deadline):
                step = await progress.get()
            if step is None:
                break
            await cache.aset("job-progress", step)
            yield sse_event({"step": step, "of": job.steps})
        try:
            await worker
        except Exception:  # noqa: BLE001 (the job's own error: the browser gets a generic one)
            logging.getLogger(__name__).exception("the export failed")
            yield sse_event({"message": "Sorry, the export failed."}, event="job-error")
        else:
            yield sse_event({"total": job.steps}, event="done")
    except TimeoutError:
        yield sse_event({"message": "Sorry, the export took too long."}, event="job-error")
    finally:
        worker.cancel()


def _worker_that_swallows(*, then):
    """The reference, but work() catches the CancelledError and goes on with ``then()``."""

    async def answer(job):
        progress = asyncio.Queue()

        async def work():
            try:
                async for step in job.run():
                    await progress.put(step)
            except asyncio.CancelledError:
                await then()
            finally:
                progress.put_nowait(None)

        worker = asyncio.create_task(work())
        try:
            while (step := await progress.get()) is not None:
                yield sse_event({"step": step, "of": job.steps})
            try:
                await worker
            except Exception:  # noqa: BLE001
                yield sse_event({"error": "the job failed"}, event="failed")
            else:
                yield sse_event({"total": job.steps}, event="done")
        finally:
            worker.cancel()

    return answer


async def _nothing():
    pass


# review s22's: the job was cancelled, but its worker caught that and went on (or just ended)
worker_keeps_running = _worker_that_swallows(then=lambda: asyncio.sleep(3))
worker_swallows_and_ends = _worker_that_swallows(then=_nothing)


async def anext_in_a_task_per_step(job):  # review s22's: a new task for each step
    steps = job.run()
    try:
        while True:
            try:
                step = await asyncio.ensure_future(anext(steps))
            except StopAsyncIteration:
                break
            except Exception:  # noqa: BLE001
                yield sse_event({"error": "the job failed"}, event="failed")
                return
            yield sse_event({"step": step, "of": job.steps})
        yield sse_event({"total": job.steps}, event="done")
    finally:
        await steps.aclose()


async def anext_under_wait_for(job):  # refused on every Python, with two true messages:
    steps = job.run()  # 3.11's wait_for runs each step in a new task, 3.12+'s in this one
    try:
        while True:
            try:
                step = await asyncio.wait_for(anext(steps), 10)
            except StopAsyncIteration:
                break
            yield sse_event({"step": step, "of": job.steps})
        yield sse_event({"total": job.steps}, event="done")
    finally:
        await steps.aclose()


async def logs_nothing_and_cancels_on_leaving(job):
    """Review s22's: no log at all, and the worker cancelled only on CancelledError or
    GeneratorExit: an error raised in the generator leaves the job running."""
    progress = asyncio.Queue()

    async def work():
        try:
            async for step in job.run():
                await progress.put(step)
        finally:
            progress.put_nowait(None)

    worker = asyncio.create_task(work())
    try:
        while (step := await progress.get()) is not None:
            yield sse_event({"step": step, "of": job.steps})
        try:
            await worker
        except Exception:  # noqa: BLE001
            yield sse_event({"error": "the job failed"}, event="failed")
        else:
            yield sse_event({"total": job.steps}, event="done")
    except (asyncio.CancelledError, GeneratorExit):  # not finally
        worker.cancel()
        raise


logs_nothing = _reference_with()  # the reference without its logger.exception(...)


def _logs_a_record(log):
    def failure(error):
        log(error)
        return "the job failed"

    return failure


async def cancels_on_leaving_only(job):
    """The job's error logged, but the worker cancelled only on CancelledError or
    GeneratorExit, not in finally."""
    progress = asyncio.Queue()

    async def work():
        try:
            async for step in job.run():
                await progress.put(step)
        finally:
            progress.put_nowait(None)

    worker = asyncio.create_task(work())
    try:
        while (step := await progress.get()) is not None:
            yield sse_event({"step": step, "of": job.steps})
        try:
            await worker
        except Exception:  # noqa: BLE001
            logging.getLogger(__name__).exception("the job failed")
            yield sse_event({"error": "the job failed"}, event="failed")
        else:
            yield sse_event({"total": job.steps}, event="done")
    except (asyncio.CancelledError, GeneratorExit):
        worker.cancel()
        raise


logs_without_the_error = _reference_with(  # a record, but nothing of what went wrong
    failure=_logs_a_record(lambda error: logging.getLogger(__name__).error("the job failed")))
logs_at_info = _reference_with(  # below WARNING: the default configuration drops it
    failure=_logs_a_record(lambda error: logging.getLogger(__name__).info(
        "the job failed", exc_info=error)))
names_the_exception_type = _reference_with(  # review s22's: the class name only
    failure=lambda error: f"the job failed ({type(error).__name__})")
logs_the_message_only = _reference_with(  # review s30c's: the error's text, no traceback
    failure=_logs_a_record(lambda error: logging.getLogger(__name__).error(
        "the job failed: %s", error)))
logs_an_error_with_exc_info = _reference_with(  # right too: exc_info=True in the except block
    failure=_logs_a_record(lambda error: logging.getLogger(__name__).error(
        "the job failed", exc_info=True)))
logs_a_warning_with_exc_info = _reference_with(  # right too: WARNING carries it as well
    failure=_logs_a_record(lambda error: logging.getLogger("jobs").warning(
        "job failed: %s", error, exc_info=True)))
logs_with_the_reference = _reference_with(  # right too: the reference, as _reference_with
    failure=_logs_a_record(lambda error: logging.getLogger(__name__).error(
        "the job failed", exc_info=error)))
_logs_the_error = _logs_a_record(
    lambda error: logging.getLogger(__name__).error("the job failed", exc_info=error))
# right: the lesson's reference since review s27b, with a bounded queue and without
bounded_and_awaited = _reference_with(maxsize=1, work=_marker_awaited, failure=_logs_the_error)
awaited_unbounded = _reference_with(work=_marker_awaited, failure=_logs_the_error)
bounded_at_10_and_awaited = _reference_with(maxsize=10, work=_marker_awaited,
                                            failure=_logs_the_error)
# right too: the queue holds every step and the marker, so put_nowait never finds it full
room_for_the_whole_job = _reference_with(maxsize=lambda job: job.steps + 1,
                                         work=_marker_put_nowait_at_the_end,
                                         failure=_logs_the_error)


def _logged_then_says(message):
    def failure(error):
        logging.getLogger(__name__).error("export job failed", exc_info=error)
        return message

    return failure


# review s27's: right, in words of its own that the exception's message also holds
says_it_was_rejected = _reference_with(
    failure=_logged_then_says("The export was rejected; please try again later."))
mentions_a_password = _reference_with(
    failure=_logged_then_says("The export failed. Your password was not shared."))
# wrong: what the exception holds, in other forms than its whole text
leaks_the_rest_of_the_error = _reference_with(
    failure=lambda error: str(error).split(" ", 1)[1])
leaks_the_traceback = _reference_with(
    failure=lambda error: "".join(traceback.format_tb(error.__traceback__)))
leaks_the_lowercased_type = _reference_with(
    failure=lambda error: f"the job failed: {type(error).__name__.lower()}")


def _sync_orm_update(step):
    from tutorial_project.catalog.models import Product

    Product.objects.filter(pk=-1).update(name="x")  # review s27's: a "progress row", sync


updates_a_row_with_the_sync_orm = _reference_with(on_each_step=_sync_orm_update)


def _busy_pause(step):
    until = time.perf_counter() + 0.05
    while time.perf_counter() < until:  # a pause that computes: the loop is held
        pass


paces_with_a_busy_wait = _reference_with(on_each_step=_busy_pause)  # review s22's


async def hard_codes_the_count(job):  # review s24b's: "of" fits the 20-step job only
    async for event in progress_events(_Steps20(job)):
        yield event


class _Steps20:
    """The job as the answer sees it, with steps = 20 whatever the job's own count."""

    def __init__(self, job):
        self.job, self.steps = job, 20

    def run(self):
        return self.job.run()


async def streams_after_the_whole_job(job):  # review s24b's: no progress, nothing to stop
    steps = []

    async def work():
        async for step in job.run():
            steps.append(step)

    worker = asyncio.create_task(work())
    try:
        try:
            await worker  # the whole job, before the first event
        except Exception:
            logging.getLogger(__name__).exception("the job failed")
            failed = True
        else:
            failed = False
        for step in steps:
            yield sse_event({"step": step, "of": job.steps})
        if failed:
            yield sse_event({"error": "the job failed"}, event="failed")
        else:
            yield sse_event({"total": job.steps}, event="done")
    finally:
        worker.cancel()


async def polls_the_queue(job):  # review s24's: the loop runs, but a core spins
    progress = asyncio.Queue()

    async def work():
        try:
            async for step in job.run():
                progress.put_nowait(step)
        finally:
            progress.put_nowait(None)

    worker = asyncio.create_task(work())
    try:
        while True:
            while progress.empty():
                await asyncio.sleep(0)
            if (step := progress.get_nowait()) is None:
                break
            yield sse_event({"step": step, "of": job.steps})
        try:
            await worker
        except Exception:
            logging.getLogger(__name__).exception("the job failed")
            yield sse_event({"error": "the job failed"}, event="failed")
        else:
            yield sse_event({"total": job.steps}, event="done")
    finally:
        worker.cancel()


async def polls_a_thread_safe_queue(job):  # review s29's: little CPU, every event late
    progress = queue.Queue()

    async def work():
        try:
            async for step in job.run():
                progress.put(step)
        finally:
            progress.put(None)

    worker = asyncio.create_task(work())
    try:
        while True:
            try:
                step = progress.get_nowait()
            except queue.Empty:
                await asyncio.sleep(0.5)
                continue
            if step is None:
                break
            yield sse_event({"step": step, "of": job.steps})
        try:
            await worker
        except Exception:
            logging.getLogger(__name__).exception("the job failed")
            yield sse_event({"error": "the job failed"}, event="failed")
        else:
            yield sse_event({"total": job.steps}, event="done")
    finally:
        worker.cancel()


async def yields_bytes_with_ids(job):  # right: bytes, an id per event, a first comment
    progress = asyncio.Queue()

    async def work():
        try:
            async for step in job.run():
                await progress.put(step)
        finally:
            progress.put_nowait(None)

    worker = asyncio.create_task(work())
    try:
        yield b": started\n\n"
        while (step := await progress.get()) is not None:
            yield sse_event({"step": step, "of": job.steps}, id=str(step)).encode()
        try:
            await worker
        except Exception:
            logging.getLogger(__name__).exception("the job failed")
            yield sse_event({"error": "the job failed"}, event="failed").encode()
        else:
            yield sse_event({"total": job.steps}, event="done").encode()
    finally:
        worker.cancel()


@pytest.mark.parametrize(
    "answer",
    [
        progress_events,
        yields_bytes_with_ids,
        progress_events_with_error_event,
        error_event_names_the_step,
        errors_through_the_queue,
        waits_for_the_first,
        tagged_and_reraised,
        capped_with_a_deadline,
        waits_for_the_cancelled_worker,
        with_heartbeats,
        failure_in_plain_text,
        paced_in_a_thread,
        logs_with_the_reference,
        logs_an_error_with_exc_info,
        logs_a_warning_with_exc_info,
        says_it_was_rejected,
        mentions_a_password,
        bounded_and_awaited,
        awaited_unbounded,
        bounded_at_10_and_awaited,
        room_for_the_whole_job,
    ],
)
def test_07_2_right_answers_pass(project, answer, capsys):
    verdict = run(check_progress_events(answer))
    assert verdict, str(verdict)
    assert "Exception in ASGI application" not in capsys.readouterr().out


def test_07_2_placeholder_is_not_solved(project):
    assert not run(check_progress_events(...)).solved


@pytest.mark.parametrize(
    "answer, message",
    [
        (leaky_progress_events, "cancel the worker task"),
        (leaves_its_getter_pending, "tasks your code started were still pending: Queue.get"),
        (cancels_only_at_the_end, "the job went on"),
        (hangs_if_the_job_fails, "the stream hung"),
        (swallows_the_failure, "the stream hung"),
        (raises_the_failure, "the connection was cut"),
        (says_done_after_a_failure, "cannot tell the failure from a finished job"),
        (no_task_at_all, "the job runs inside the generator"),
        (wrong_payload, "the first two events were"),
        (hangs_on_success, "when a 3-step job succeeded, the stream hung"),
        (swallows_the_cancellation, "caught the CancelledError of the disconnect"),
        (no_done_on_success, "without a `done` event"),
        (cancel_caught_and_reraised, "closed with aclose() after two events, the job went on"),
        (sends_the_exception_text, "sent the exception to the browser"),
        (guesses_failure_from_a_timeout, "was reported as failed"),
        (guesses_between_the_two_runs, "was reported as failed"),
        (guesses_longer_than_the_reader_waits, "the stream hung"),
        (awaits_the_failed_worker, "your failure event arrived, so what raised runs after it"),
        (awaits_the_failed_worker, "`await asyncio.gather(worker, return_exceptions=True)`"),
        (yields_inside_a_task_group, "the reader's own task was cancelled"),
        (names_it_error, "EventSource fires an `error` event of its own"),
        (leaks_part_of_the_error, "or part of it (db.internal, 5432)"),
        (sleeps_on_the_loop, "time.sleep(0.01) on the event loop"),
        (uses_the_sync_cache, "cache.set() on the event loop"),
        (yields_inside_a_timeout, "inside an `asyncio.timeout()` block"),
        (capped_by_a_hidden_timeout, "inside an `asyncio.timeout()` block"),
        (throttled_by_a_hidden_sleep, "time.sleep() (under another name) on the event loop"),
        (without_the_total, '"of": 20'),
        (awaits_the_cancelled_worker, "raised CancelledError though nobody cancelled"),
        (waits_on_an_event, "threading.Event.wait (a wait for a lock) on the event loop"),
        (selects_on_the_loop, "select.select on the event loop"),
        (blocks_before_done, "select.select on the event loop"),
        (blocks_when_the_client_leaves, "select.select on the event loop"),
        (polls_every_20_ms, "woke"),
        (polls_every_40_ms, "times with nothing to send"),
        (worker_keeps_running, "was still running a second after the client left"),
        (worker_swallows_and_ends, "the worker task ended normally: it caught the"),
        (anext_in_a_task_per_step, "each step of the job ran in a new task"),
        (anext_under_wait_for, "start it once with `worker = asyncio.create_task(work())`"),
        (paces_with_a_busy_wait, "ms at a stretch (the median of 5 tries"),
        (polls_the_queue, "a loop that polls (`await asyncio.sleep(0)`"),
        (polls_a_thread_safe_queue, "ms after the job had produced it (the median"),
        (hard_codes_the_count, 'the events of a 3-step job said "of": 20'),
        (streams_after_the_whole_job, "steps before the first event reached the client"),
        (logs_nothing, "no log record carried its error"),
        (logs_without_the_error, "no log record carried its error"),
        (logs_at_info, "no log record carried its error"),
        (logs_the_message_only, "logged without its traceback"),
        (cancels_on_leaving_only, "when an error was raised in the generator at its `yield`"),
        (logs_nothing_and_cancels_on_leaving, "raised in the generator at its `yield`"),
        (names_the_exception_type, "or part of it (RuntimeError)"),
        # both put() on the loop into a queue.Queue that a thread reads: when the getter
        # holds the queue's lock at that moment, the put waits, and that is refused first
        (waits_in_a_pool_thread, ("calls it ran in threads lasted",
                                  "queue.Queue.put (a wait for a lock) on the event loop")),
        (waits_in_the_request_thread, ("calls it ran in threads lasted",
                                       "queue.Queue.put (a wait for a lock) on the event loop")),
        (leaks_the_rest_of_the_error, "or part of it (rejected the password, for user report)"),
        (leaks_the_traceback, "sent the exception to the browser"),
        (leaks_the_lowercased_type, "or part of it (RuntimeError)"),
        (updates_a_row_with_the_sync_orm, "Django raised SynchronousOnlyOperation"),
        (bounded_and_put_nowait, "raised asyncio.QueueFull, so the marker was lost"),
        (bounded_and_awaited_in_finally, "the worker's task was still waiting a second later"),
        (put_nowait_in_a_queue_of_2, "raised asyncio.QueueFull, so the marker was lost"),
        (put_nowait_in_a_queue_of_10, "raised asyncio.QueueFull, so the marker was lost"),
        (sends_the_failure_then_reraises, "was raised again (a `raise` in the except block"),
    ],
)
def test_07_2_wrong_answers_fail_with_a_hint(project, answer, message):
    verdict = run(check_progress_events(answer))
    assert not verdict and verdict.solved
    messages = message if isinstance(message, tuple) else (message,)  # any one diagnosis
    assert any(part in str(verdict) for part in messages), str(verdict)


def _probe_failures(records):
    return [r for r in records if FAILURE_DETAIL in f"{r.exc_info and r.exc_info[1]} {r.msg}"]


@pytest.mark.parametrize("answer", [progress_events, paced_in_a_thread, tagged_and_reraised])
def test_07_2_the_probes_failure_is_logged_only_outside_the_check(project, answer, caplog):
    """The answer logs the job's error, as it should: the check's own failing job prints no
    traceback above the verdict, and the same answer run for real still logs it."""
    from tutorial_project.course.exercises.lesson07 import _FailingJob

    with caplog.at_level(logging.ERROR):
        assert run(check_progress_events(answer))
        assert not _probe_failures(caplog.records)

        async def read_a_failing_job():
            return [event async for event in answer(_FailingJob(fails_at=2, delay=0.01))]

        events = run(read_a_failing_job())
    assert "event: failed" in events[-1]
    assert len(_probe_failures(caplog.records)) == 1


def test_07_2_no_traceback_on_stderr_without_logging_handlers(project, capsys, monkeypatch):
    """In a notebook no handler is configured, so logging.lastResort prints to stderr."""
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    assert run(check_progress_events(progress_events))
    assert FAILURE_DETAIL not in capsys.readouterr().err
    logging.getLogger(__name__).error("for real: %s", FAILURE_DETAIL)
    assert FAILURE_DETAIL in capsys.readouterr().err
