"""Catch a view that blocks the event loop: asyncio's debug mode times every step of the loop.

In debug mode the loop logs a warning ("Executing <Task ...> took 0.501 seconds") for each step
that ran longer than ``loop.slow_callback_duration``. The test turns that warning into a failure.
The helper times steps, not your code: a process's first request imports and sets up Django's
URLconf, middleware, auth and sessions in one long step, so make one request before it.
"""

import asyncio
import logging
import time
from contextlib import asynccontextmanager

import pytest
from asgiref.sync import sync_to_async

pytestmark = [pytest.mark.urls("tutorial_project.instruments.testing_targets")]


@asynccontextmanager
async def loop_must_not_block(caplog, longest=0.25):  # make a warm-up request before it
    loop = asyncio.get_running_loop()
    loop.set_debug(True)  # or --asyncio-debug: pytest-asyncio>=1.2 overrides PYTHONASYNCIODEBUG
    loop.slow_callback_duration = longest
    # a LOGGING without "disable_existing_loggers": False switches the asyncio logger off;
    # one with "asyncio": {"propagate": False} keeps its records from caplog's root handler
    asyncio_logger = logging.getLogger("asyncio")
    was_disabled, asyncio_logger.disabled = asyncio_logger.disabled, False
    propagated, asyncio_logger.propagate = asyncio_logger.propagate, True
    try:
        await asyncio.sleep(0)  # the loop times whole steps: start a new one, now in debug mode
        with caplog.at_level(logging.WARNING, logger="asyncio"):
            yield
            await asyncio.sleep(0)  # end this step of the loop: its duration is logged now
    finally:
        asyncio_logger.disabled, asyncio_logger.propagate = was_disabled, propagated
    slow = [record for record in caplog.records
            if record.name == "asyncio" and "took" in record.getMessage()]
    if slow:
        pytest.fail(f"the event loop was blocked for more than {longest} s ({len(slow)} step(s))")


@pytest.mark.asyncio
async def test_pause_lets_the_loop_run(async_client, caplog):
    await async_client.get("/pause/")  # warm-up: the first request imports, in one long step
    async with loop_must_not_block(caplog):
        response = await async_client.get("/pause/")
    assert response.status_code == 200


@pytest.mark.asyncio
async def test_pause_blocking_is_caught(async_client, caplog):
    await async_client.get("/pause-blocking/")  # warm-up (debug mode is not on yet)
    async with loop_must_not_block(caplog):
        response = await async_client.get("/pause-blocking/")
    assert response.status_code == 200


@pytest.mark.asyncio
async def test_caught_when_the_logging_config_disabled_asyncio(async_client, caplog, monkeypatch):
    monkeypatch.setattr(logging.getLogger("asyncio"), "disabled", True)  # as such a LOGGING does
    await async_client.get("/pause-blocking/")
    async with loop_must_not_block(caplog):
        await async_client.get("/pause-blocking/")


@pytest.mark.asyncio
async def test_caught_when_asyncio_does_not_propagate(async_client, caplog, monkeypatch):
    monkeypatch.setattr(logging.getLogger("asyncio"), "propagate", False)  # its own handlers
    await async_client.get("/pause-blocking/")
    async with loop_must_not_block(caplog):
        await async_client.get("/pause-blocking/")


async def returns_at_once():
    return None  # awaiting it runs it to the end in the same step: the loop gets no turn


@pytest.mark.asyncio
async def test_short_blocks_slip_through(caplog):  # 0.6 s blocked, in twelve steps
    async with loop_must_not_block(caplog):
        for _ in range(12):
            time.sleep(0.05)
            await asyncio.sleep(0)  # suspends: the step ends here


@pytest.mark.asyncio
async def test_an_await_that_does_not_suspend_ends_no_step(caplog):
    async with loop_must_not_block(caplog):
        for _ in range(12):
            time.sleep(0.05)
            await returns_at_once()  # no suspension: one step of 0.6 s


@pytest.mark.asyncio
async def test_blocking_in_sync_to_async_is_not_seen(caplog):
    async with loop_must_not_block(caplog):  # the loop runs on; asgiref's one thread does not
        await sync_to_async(time.sleep)(0.5)
