"""Catch a view that blocks the event loop: asyncio's debug mode times every step of the loop.

In debug mode the loop logs a warning ("Executing <Task ...> took 0.501 seconds") for each step
that ran longer than ``loop.slow_callback_duration``. The test turns that warning into a failure.
"""

import asyncio
import logging
from contextlib import asynccontextmanager

import pytest

from tutorial_project.instruments import testing_targets as views

pytestmark = [pytest.mark.urls("tutorial_project.instruments.testing_targets")]


@asynccontextmanager
async def loop_must_not_block(caplog, longest=0.25):  # far above a healthy step, even under load
    loop = asyncio.get_running_loop()
    loop.set_debug(True)  # or run pytest with --asyncio-debug, or PYTHONASYNCIODEBUG=1
    loop.slow_callback_duration = longest
    await asyncio.sleep(0)  # the loop times whole steps: start a new one, now in debug mode
    with caplog.at_level(logging.WARNING, logger="asyncio"):
        yield
        await asyncio.sleep(0)  # end this step of the loop: its duration is logged now
    slow = [record for record in caplog.records
            if record.name == "asyncio" and "took" in record.getMessage()]
    if slow:
        pytest.fail(f"the event loop was blocked for more than {longest} s ({len(slow)} step(s))")


@pytest.mark.asyncio
async def test_pause_lets_the_loop_run(async_rf, caplog):
    async with loop_must_not_block(caplog):
        response = await views.pause(async_rf.get("/pause/"))
    assert response.status_code == 200


@pytest.mark.asyncio
async def test_pause_blocking_is_caught(async_rf, caplog):
    async with loop_must_not_block(caplog):
        response = await views.pause_blocking(async_rf.get("/pause-blocking/"))
    assert response.status_code == 200
