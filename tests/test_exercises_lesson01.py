"""Lesson 01 checks: the reference solutions pass, placeholders and wrong answers do not."""

import asyncio
import time

import pytest

pytestmark = pytest.mark.usefixtures("project")  # tests/conftest.py: start() in this process


def verdict_of(check, answer):
    from tutorial_project.course.exercises import lesson01

    return asyncio.run(getattr(lesson01, check)(answer))


# Reference solutions, as in the notebook's cells tagged "solution".
async def fetch_prices(fetch_price, skus):
    prices = await asyncio.gather(*(fetch_price(sku) for sku in skus))
    return dict(zip(skus, prices, strict=True))


async def price_or_none(fetch_price, sku, seconds):
    try:
        async with asyncio.timeout(seconds):
            return await fetch_price(sku)
    except TimeoutError:
        return None


async def without_blocking(func, *args):
    return await asyncio.to_thread(func, *args)


@pytest.mark.parametrize(
    "check, solution",
    [
        ("check_fetch_prices", fetch_prices),
        ("check_price_or_none", price_or_none),
        ("check_without_blocking", without_blocking),
    ],
)
def test_reference_solution_passes_and_placeholder_is_not_solved(check, solution):
    verdict = verdict_of(check, solution)
    assert verdict.passed, str(verdict)
    placeholder = verdict_of(check, ...)
    assert not placeholder.passed and not placeholder.solved
    assert "not solved yet" in str(placeholder)


def test_fetching_one_after_another_fails():
    async def one_by_one(fetch_price, skus):
        return {sku: await fetch_price(sku) for sku in skus}

    verdict = verdict_of("check_fetch_prices", one_by_one)
    assert not verdict.passed
    assert "at most 1 of 4 fetches" in str(verdict)
    assert "asyncio.gather" in str(verdict)


def test_returning_a_list_fails():
    async def as_list(fetch_price, skus):
        return await asyncio.gather(*(fetch_price(sku) for sku in skus))

    verdict = verdict_of("check_fetch_prices", as_list)
    assert not verdict.passed and "expected {" in str(verdict)


def test_a_sync_function_fails_with_a_hint():
    def sync_fetch_prices(fetch_price, skus):
        return {}

    verdict = verdict_of("check_fetch_prices", sync_fetch_prices)
    assert not verdict.passed and "not an async function" in str(verdict)


def test_no_timeout_fails_without_waiting_for_the_slow_fetch():
    async def no_timeout(fetch_price, sku, seconds):
        return await fetch_price(sku)

    started = time.perf_counter()
    verdict = verdict_of("check_price_or_none", no_timeout)
    assert time.perf_counter() - started < 10
    assert not verdict.passed
    assert "still being awaited" in str(verdict) and "asyncio.timeout" in str(verdict)


def test_a_timeout_that_leaves_the_fetch_running_fails():
    async def leaves_it_running(fetch_price, sku, seconds):
        task = asyncio.ensure_future(fetch_price(sku))
        done, _ = await asyncio.wait([task], timeout=seconds)
        return task.result() if done else None

    async def run_and_clean_up():
        from tutorial_project.course.exercises.lesson01 import check_price_or_none

        verdict = await check_price_or_none(leaves_it_running)
        for task in asyncio.all_tasks() - {asyncio.current_task()}:
            task.cancel()
        return verdict

    verdict = asyncio.run(run_and_clean_up())
    assert not verdict.passed and "was not cancelled" in str(verdict)


def test_calling_the_blocking_function_directly_fails():
    async def blocks(func, *args):
        return func(*args)

    verdict = verdict_of("check_without_blocking", blocks)
    assert not verdict.passed
    assert "froze" in str(verdict) and "asyncio.to_thread" in str(verdict)
