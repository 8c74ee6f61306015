"""Lesson 03 checks: the reference solutions pass, placeholders and wrong answers do not."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.http import JsonResponse

pytestmark = pytest.mark.usefixtures("project")  # tests/conftest.py: start() in this process


def stock_report():
    from tutorial_project.catalog.reports import stock_report  # needs start() first

    return stock_report()


def verdict_of(check, answer):
    from tutorial_project.course.exercises import lesson03

    return asyncio.run(getattr(lesson03, check)(answer))


# Reference solutions, as in the notebook's cells tagged "solution".
async def stock_report_view(request):
    report = await sync_to_async(stock_report)()
    return JsonResponse(report)


async def lookup_many(lookup, skus):
    call = sync_to_async(lookup, thread_sensitive=False)
    return await asyncio.gather(*(call(sku) for sku in skus))


@pytest.mark.parametrize(
    "check, solution",
    [("check_stock_report_view", stock_report_view), ("check_lookup_many", lookup_many)],
)
def test_reference_solution_passes_and_placeholder_is_not_solved(check, solution):
    verdict = verdict_of(check, solution)
    assert verdict.passed, str(verdict)
    placeholder = verdict_of(check, ...)
    assert not placeholder.passed and not placeholder.solved
    assert "not solved yet" in str(placeholder)


def test_sync_orm_in_the_async_view_fails_with_a_hint():
    async def calls_the_orm_on_the_loop(request):
        return JsonResponse(stock_report())

    verdict = verdict_of("check_stock_report_view", calls_the_orm_on_the_loop)
    assert not verdict.passed
    assert "answered 500" in str(verdict) and "sync_to_async(stock_report)" in str(verdict)


def test_a_sync_view_is_not_the_answer():
    def sync_view(request):
        return JsonResponse(stock_report())

    verdict = verdict_of("check_stock_report_view", sync_view)
    assert not verdict.passed and "not an async function" in str(verdict)


def test_a_view_answering_something_else_fails():
    async def wrong_json(request):
        return JsonResponse({"ok": True})

    verdict = verdict_of("check_stock_report_view", wrong_json)
    assert not verdict.passed and "expected {" in str(verdict)


def test_calling_the_blocking_lookup_on_the_loop_fails():
    async def blocks_the_loop(lookup, skus):
        return [lookup(sku) for sku in skus]

    verdict = verdict_of("check_lookup_many", blocks_the_loop)
    assert not verdict.passed and "the event loop froze" in str(verdict)


def test_thread_sensitive_lookups_take_turns_and_fail():
    async def thread_sensitive(lookup, skus):
        return await asyncio.gather(*(sync_to_async(lookup)(sku) for sku in skus))

    verdict = verdict_of("check_lookup_many", thread_sensitive)
    assert not verdict.passed
    assert "at most 1 of 4 lookups" in str(verdict) and "thread_sensitive=False" in str(verdict)


def test_one_lookup_after_another_fails():
    async def one_by_one(lookup, skus):
        call = sync_to_async(lookup, thread_sensitive=False)
        return [await call(sku) for sku in skus]

    verdict = verdict_of("check_lookup_many", one_by_one)
    assert not verdict.passed and "at most 1 of 4 lookups" in str(verdict)
