"""The pytest-asyncio 0.x recipe for sharing one loop: override the ``event_loop`` fixture.

pytest-asyncio 1.0 removed that fixture, so an override is an ordinary fixture that no test
asks for: it is ignored without a warning, and each test still gets a loop of its own.
"""

import asyncio

import pytest

loops = []


@pytest.fixture(scope="module")
def event_loop():  # the old recipe (in conftest.py, usually with scope="session")
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.mark.asyncio
async def test_first():
    loops.append(asyncio.get_running_loop())


@pytest.mark.asyncio
async def test_second_gets_a_loop_of_its_own():
    loops.append(asyncio.get_running_loop())
    assert loops[0] is not loops[1]  # the override did not share one loop
