"""Lesson 06's checks: the reference answers pass, placeholders wait, wrong answers fail clearly."""

import asyncio

import httpx

from tutorial_project.course.exercises import lesson06


async def fetch_both(client):
    weather, news = await asyncio.gather(client.get("/weather"), client.get("/news"))
    return weather.json(), news.json()


async def fetch_both_sequentially(client):
    weather = await client.get("/weather")
    news = await client.get("/news")
    return weather.json(), news.json()


async def get_or_none(client, path, budget):
    try:
        async with asyncio.timeout(budget):
            response = await client.get(path)
        response.raise_for_status()
        return response.json()
    except (TimeoutError, httpx.HTTPError, ValueError):
        return None


async def get_or_none_with_httpx_timeout(client, path, budget):
    try:
        response = await client.get(path, timeout=budget)  # ignored by ASGITransport
        response.raise_for_status()
        return response.json()
    except (httpx.HTTPError, ValueError):
        return None


async def get_or_none_without_status_check(client, path, budget):
    try:
        async with asyncio.timeout(budget):
            return (await client.get(path)).json()
    except (TimeoutError, ValueError):
        return None


def run(check, answer):
    return asyncio.run(check(answer))


def test_06_1_reference_passes():
    verdict = run(lesson06.check_fetch_both, fetch_both)
    assert verdict, str(verdict)


def test_06_1_placeholder_is_not_solved():
    assert not run(lesson06.check_fetch_both, ...).solved


def test_06_1_sequential_fails_with_a_hint():
    verdict = run(lesson06.check_fetch_both, fetch_both_sequentially)
    assert not verdict and "gather" in str(verdict)


def test_06_2_reference_passes():
    verdict = run(lesson06.check_get_or_none, get_or_none)
    assert verdict, str(verdict)


def test_06_2_placeholder_is_not_solved():
    assert not run(lesson06.check_get_or_none, ...).solved


def test_06_2_httpx_timeout_in_process_fails_with_a_hint():
    verdict = run(lesson06.check_get_or_none, get_or_none_with_httpx_timeout)
    assert not verdict and "asyncio.timeout" in str(verdict)


def test_06_2_missing_status_check_fails_with_a_hint():
    verdict = run(lesson06.check_get_or_none, get_or_none_without_status_check)
    assert not verdict and "raise_for_status" in str(verdict)
