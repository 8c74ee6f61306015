"""Lesson 10's exercise check: right tests pass (written either way), wrong tests are refused."""

import asyncio
import json
import warnings

import httpx

from tutorial_project.rates import client


def run(check, answer):
    return asyncio.run(check(answer))


def times_out():
    def handler(request):
        raise httpx.ReadTimeout("too slow")

    return httpx.MockTransport(handler)


def fails_with(verdict, *phrases):
    text = str(verdict)
    assert not verdict, text
    for phrase in phrases:
        assert phrase in text, text


async def reference(async_client):
    with client.use_transport(times_out()):
        response = await async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})
    assert response.status_code == 504
    assert "timed out" in response.json()["error"]


def test_reference_passes(project):
    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    verdict = run(check_timeout_test, reference)
    assert verdict, str(verdict)


def test_a_right_test_with_async_request_factory_passes(project):
    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    async def with_the_factory(async_rf, price_view):
        request = async_rf.get("/", {"currency": "GBP"})
        with client.use_transport(times_out()):
            response = await price_view(request, sku="BK-001")
        assert response.status_code == 504 and response["Content-Type"] == "application/json"
        assert json.loads(response.content)["error"]  # .json() is the test client's addition

    verdict = run(check_timeout_test, with_the_factory)
    assert verdict, str(verdict)


def test_placeholder_is_not_solved(project):
    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    assert not run(check_timeout_test, ...).solved


def test_a_test_that_asserts_nothing_is_refused(project):
    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    async def asserts_nothing(async_client):
        with client.use_transport(times_out()):
            await async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})

    fails_with(run(check_timeout_test, asserts_nothing), "passes on", "assert anything")


def test_a_forgotten_await_is_refused_with_its_hint(project):
    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    async def no_await(async_client):
        with client.use_transport(times_out()):
            response = async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})
        assert response.status_code == 504

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the verdict says it: no RuntimeWarning escapes
        fails_with(run(check_timeout_test, no_await), "`await` is missing")


def test_a_dropped_coroutine_is_refused(project):
    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    async def dropped(async_client):
        with client.use_transport(times_out()):
            async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})

    fails_with(run(check_timeout_test, dropped), "never awaited")


def test_a_status_only_test_misses_the_plain_text_504(project):
    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    async def status_only(async_client):
        with client.use_transport(times_out()):
            response = await async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})
        assert response.status_code == 504

    fails_with(run(check_timeout_test, status_only), "passes on a view that answers 504 as plain",
               "response.json()")


def test_a_test_that_accepts_any_error_is_refused(project):
    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    async def any_error(async_client):
        with client.use_transport(times_out()):
            response = await async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})
        assert response.status_code >= 500 and "error" in response.json()

    fails_with(run(check_timeout_test, any_error), "passes on a view that answers 502")


def test_a_test_without_the_fake_upstream_fails_on_the_correct_view(project):
    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    async def real_upstream(async_client):
        response = await async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})
        assert response.status_code == 504

    fails_with(run(check_timeout_test, real_upstream), "on the correct view it failed",
               "httpx.ReadTimeout")


def test_a_swallowed_assertion_is_refused(project):
    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    async def swallowed(async_client):
        with client.use_transport(times_out()):
            response = await async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})
        try:
            assert response.status_code == 504
        except AssertionError:
            pass

    fails_with(run(check_timeout_test, swallowed), "passes on")


def test_a_sync_test_is_refused(project):
    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    def sync_test(async_client):
        pass

    fails_with(run(check_timeout_test, sync_test), "not an async function")


def test_an_unknown_fixture_is_named(project):
    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    async def wants_rf(rf):
        pass

    fails_with(run(check_timeout_test, wants_rf), "asks for rf")


def test_a_test_that_checks_the_message_but_not_the_status_is_refused(project):
    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    async def message_only(async_client):
        with client.use_transport(times_out()):
            response = await async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})
        assert "timed out" in response.json()["error"]

    async def not_200(async_client):
        with client.use_transport(times_out()):
            response = await async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})
        assert response.status_code != 200 and "timed out" in response.json()["error"]

    for wrong in (message_only, not_200):
        fails_with(run(check_timeout_test, wrong),
                   "passes on a view that answers the timeout's JSON error with a 502",
                   "status_code == 504")


def test_a_factory_test_of_the_imported_view_is_told_to_use_price_view(project):
    from tutorial_project.course.exercises.lesson10 import check_timeout_test
    from tutorial_project.rates.views import product_price

    async def imported_view(async_rf):
        with client.use_transport(times_out()):
            response = await product_price(async_rf.get("/", {"currency": "USD"}), "BK-001")
        assert response.status_code == 504 and "error" in json.loads(response.content)

    fails_with(run(check_timeout_test, imported_view), "never calls the view", "price_view")


def test_json_on_a_factory_response_gets_its_own_hint(project):
    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    async def factory_json(async_rf, price_view):
        with client.use_transport(times_out()):
            response = await price_view(async_rf.get("/", {"currency": "USD"}), sku="BK-001")
        assert response.status_code == 504 and "error" in response.json()

    fails_with(run(check_timeout_test, factory_json), "AttributeError", "json.loads")


def test_the_sync_orm_in_the_test_gets_its_own_hint(project):
    from tutorial_project.catalog.models import Product
    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    async def sync_orm(async_client):
        assert Product.objects.filter(sku="BK-001").exists()
        with client.use_transport(times_out()):
            response = await async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})
        assert response.status_code == 504 and "error" in response.json()

    fails_with(run(check_timeout_test, sync_orm), "SynchronousOnlyOperation", "a-methods")


def test_right_tests_written_differently_pass(project):
    from unittest import mock

    from django.test import AsyncClient

    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    async def with_mock_patch(async_client):
        with mock.patch.object(client, "fetch_rate", side_effect=client.UpstreamTimeout("slow")):
            response = await async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})
        assert response.status_code == 504
        assert response["Content-Type"] == "application/json" and response.json()["error"]

    async def with_monkeypatch(async_client, monkeypatch):
        async def boom(currency):
            raise client.UpstreamTimeout("slow")

        monkeypatch.setattr(client, "fetch_rate", boom)
        response = await async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})
        assert response.status_code == 504 and "error" in response.json()

    async def with_its_own_client(async_client):
        own = AsyncClient(raise_request_exception=False)
        with client.use_transport(times_out()):
            response = await own.get("/exercise-10/price/BK-001/", {"currency": "USD"})
        assert response.status_code == 504 and "error" in response.json()

    async def with_a_connect_timeout(async_rf, price_view):
        async def handler(request):
            raise httpx.ConnectTimeout("slow")

        with client.use_transport(httpx.MockTransport(handler)):
            response = await price_view(async_rf.get("/", {"currency": "USD"}), sku="BK-001")
        assert response.status_code == 504 and "error" in json.loads(response.content)

    for right in (with_mock_patch, with_monkeypatch, with_its_own_client, with_a_connect_timeout):
        verdict = run(check_timeout_test, right)
        assert verdict, f"{right.__name__}: {verdict}"
    assert client.fetch_rate.__name__ == "fetch_rate"  # monkeypatch was undone
