"""Lesson 12's checks: the reference pieces pass, placeholders wait, plausible mistakes fail."""

import asyncio
import json

from django.utils.decorators import async_only_middleware

from tutorial_project.course.exercises import lesson12


def run(check, answer):
    return asyncio.run(check(answer))


# 12.1 -------------------------------------------------------------------------------------
def test_12_1_reference_passes(project):
    from tutorial_project.capstone.service import catalog_summary

    verdict = run(lesson12.check_catalog_summary, catalog_summary)
    assert verdict, str(verdict)


def test_12_1_placeholder_is_not_solved(project):
    assert not run(lesson12.check_catalog_summary, ...).solved


def test_12_1_sync_orm_fails_with_a_hint(project):
    from tutorial_project.catalog.models import Category, Product

    async def catalog_summary():
        return {"products": Product.objects.count(), "in_stock": 0,
                "categories": Category.objects.count()}

    verdict = run(lesson12.check_catalog_summary, catalog_summary)
    assert not verdict and "SynchronousOnlyOperation" in str(verdict)
    assert "acount" in str(verdict)


# 12.2 -------------------------------------------------------------------------------------
def test_12_2_reference_passes(project):
    from tutorial_project.capstone.service import gather_sources

    verdict = run(lesson12.check_gather_sources, gather_sources)
    assert verdict, str(verdict)


def test_12_2_placeholder_is_not_solved(project):
    assert not run(lesson12.check_gather_sources, ...).solved


def test_12_2_gather_without_catching_fails_with_a_hint(project):
    from tutorial_project.dashboard.sources import SOURCES, fetch_source

    async def gather_sources(client, modes=None):
        modes = modes or {}
        results = await asyncio.gather(
            *(fetch_source(client, name, mode=modes.get(name, "ok")) for name in SOURCES)
        )
        return dict(zip(SOURCES, results, strict=True)), {}

    verdict = run(lesson12.check_gather_sources, gather_sources)
    assert not verdict and "SourceError" in str(verdict)


# 12.3 -------------------------------------------------------------------------------------
def test_12_3_reference_passes(project):
    from tutorial_project.capstone.service import cached

    verdict = run(lesson12.check_cached, cached)
    assert verdict, str(verdict)


def test_12_3_placeholder_is_not_solved(project):
    assert not run(lesson12.check_cached, ...).solved


def test_12_3_forgetting_to_store_fails_with_a_hint(project):
    from django.core.cache import cache

    async def cached(key, compute, seconds=30):
        value = await cache.aget(key)
        return value if value is not None else await compute()

    verdict = run(lesson12.check_cached, cached)
    assert not verdict and "aset" in str(verdict)


# 12.4 -------------------------------------------------------------------------------------
def test_12_4_reference_passes(project):
    from tutorial_project.capstone.service import dashboard_events

    verdict = run(lesson12.check_dashboard_events, dashboard_events)
    assert verdict, str(verdict)


def test_12_4_placeholder_is_not_solved(project):
    assert not run(lesson12.check_dashboard_events, ...).solved


def test_12_4_waiting_for_all_sources_fails_with_a_hint(project):
    from tutorial_project.capstone.service import gather_sources
    from tutorial_project.instruments.streaming import sse_event

    async def dashboard_events(client):
        data, _errors = await gather_sources(client)  # everything first: nothing streams
        for name, value in data.items():
            yield sse_event({"source": name, "data": value}, event="source")
        yield sse_event({"arrived": list(data)}, event="done")

    verdict = run(lesson12.check_dashboard_events, dashboard_events)
    assert not verdict and "as_completed" in str(verdict)


# 12.5 -------------------------------------------------------------------------------------
def test_12_5_reference_passes(project):
    from tutorial_project.capstone.middleware import cache_control_middleware

    verdict = run(lesson12.check_middleware, cache_control_middleware)
    assert verdict, str(verdict)


def test_12_5_placeholder_is_not_solved(project):
    assert not run(lesson12.check_middleware, ...).solved


def test_12_5_undecorated_middleware_fails_with_a_hint(project):
    def cache_control_middleware(get_response):
        async def middleware(request):
            response = await get_response(request)
            response["Cache-Control"] = "max-age=30"
            return response

        return middleware

    verdict = run(lesson12.check_middleware, cache_control_middleware)
    assert not verdict and "async_only_middleware" in str(verdict)


def test_12_5_overwriting_the_view_header_fails_with_a_hint(project):
    @async_only_middleware
    def cache_control_middleware(get_response):
        async def middleware(request):
            response = await get_response(request)
            response["Cache-Control"] = "max-age=30" if response.status_code == 200 else "no-store"
            return response

        return middleware

    verdict = run(lesson12.check_middleware, cache_control_middleware)
    assert not verdict and "has_header" in str(verdict)


# 12.6 -------------------------------------------------------------------------------------
async def partial_failure_test(client):
    response = await client.get("?news=fail")
    body = json.loads(response.content)
    assert response.status_code == 200
    assert body["partial"] is True and body["news"] is None


def test_12_6_reference_passes(project):
    verdict = run(lesson12.check_partial_test, partial_failure_test)
    assert verdict, str(verdict)


def test_12_6_placeholder_is_not_solved(project):
    assert not run(lesson12.check_partial_test, ...).solved


def test_12_6_status_only_test_fails_with_a_hint(project):
    async def status_only(client):
        response = await client.get("?news=fail")
        assert response.status_code == 200

    verdict = run(lesson12.check_partial_test, status_only)
    assert not verdict and "partial" in str(verdict)


# 12.7 -------------------------------------------------------------------------------------
def _load(concurrency):
    from tutorial_project.instruments.loadtest.loadgen import run_load
    from tutorial_project.instruments.servers import serve_in_process

    async def load_capstone():
        async with serve_in_process() as url:
            return await run_load(f"{url}/capstone/", concurrency=concurrency,
                                  requests_per_client=3)

    return load_capstone


def _check_with_capstone_mounted(load_capstone):
    from tutorial_project import mount, unmount
    from tutorial_project.capstone.views import dashboard

    mount("capstone/", dashboard)
    try:
        return asyncio.run(lesson12.check_load_test(load_capstone))
    finally:
        unmount("capstone/")


def test_12_7_reference_passes(project):
    verdict = _check_with_capstone_mounted(_load(20))
    assert verdict, str(verdict)


def test_12_7_placeholder_is_not_solved(project):
    assert not asyncio.run(lesson12.check_load_test(...)).solved


def test_12_7_one_client_fails_with_a_hint(project):
    verdict = _check_with_capstone_mounted(_load(1))
    assert not verdict and "concurrency=20" in str(verdict)


# The learner copy --------------------------------------------------------------------------
def test_learner_copy_of_lesson_12_runs_to_the_end_and_says_not_solved_yet(tmp_path):
    from pathlib import Path

    import nbformat
    from test_learner_copies import NOT_SOLVED, execute, verdicts

    from tutorial_project.course.learner_copies import write_copies

    lesson = Path(__file__).resolve().parents[1] / "notebooks" / "12_capstone_async_dashboard.ipynb"
    [(path, _)] = write_copies([lesson], tmp_path)
    notebook = execute(nbformat.read(path, as_version=4), tmp_path)
    results = verdicts(notebook)
    assert len(results) == 7 and all(NOT_SOLVED in text for text in results), results
