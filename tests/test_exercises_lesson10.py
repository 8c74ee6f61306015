"""Lesson 10's exercise check: right tests pass (written either way), wrong tests are refused."""

import asyncio
import json
import warnings

import httpx
import pytest

from tutorial_project.rates import client


def run(check, answer):
    return asyncio.run(check(answer))


def times_out():
    def handler(request):
        raise httpx.ReadTimeout("too slow")

    return httpx.MockTransport(handler)



def mark(name, *args, **kwargs):
    """pytest.mark.<name>(...) as a learner writes it (this suite does not load those plugins)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pytest.PytestUnknownMarkWarning)
        decorator = getattr(pytest.mark, name)
    return decorator(*args, **kwargs) if args or kwargs else decorator


# what a test in a file under lesson_tests/pytest.ini needs (strict mode, the trap)
in_a_file = [mark("django_db", transaction=True), mark("asyncio")]


def marked(test):
    for mark in in_a_file:
        test = mark(test)
    return test


def fails_with(verdict, *phrases):
    text = str(verdict)
    assert not verdict, text
    for phrase in phrases:
        assert phrase in text, text


@marked
async def reference(async_client, book):
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

    @marked
    async def with_the_factory(async_rf, price_view, book):
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

    @marked
    async def asserts_nothing(async_client, book):
        with client.use_transport(times_out()):
            await async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})

    fails_with(run(check_timeout_test, asserts_nothing), "passes on", "assert the status")


def test_a_fake_that_answers_504_instead_of_timing_out_is_told_so(project):
    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    @marked
    async def answers_504(async_client, book):
        upstream = httpx.MockTransport(lambda request: httpx.Response(504))
        with client.use_transport(upstream):
            response = await async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})
        assert response.status_code == 502

    fails_with(run(check_timeout_test, answers_504), "passes on", "raise httpx.ReadTimeout",
               "has not timed out")


def test_the_sync_client_in_an_async_test_is_told_to_use_async_client(project):
    from django.test import Client

    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    @marked
    async def sync_client(async_client, book):
        with client.use_transport(times_out()):
            response = Client().get("/exercise-10/price/BK-001/", {"currency": "USD"})
        assert response.status_code == 504

    fails_with(run(check_timeout_test, sync_client), "AsyncToSync", "async_client fixture")


def test_a_forgotten_await_is_refused_with_its_hint(project):
    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    @marked
    async def no_await(async_client, book):
        with client.use_transport(times_out()):
            response = async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})
        assert response.status_code == 504

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the verdict says it: no RuntimeWarning escapes
        fails_with(run(check_timeout_test, no_await), "`await` is missing")


def test_a_dropped_coroutine_is_refused(project):
    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    @marked
    async def dropped(async_client, book):
        with client.use_transport(times_out()):
            async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})

    fails_with(run(check_timeout_test, dropped), "never awaited")


def test_a_status_only_test_misses_the_plain_text_504(project):
    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    @marked
    async def status_only(async_client, book):
        with client.use_transport(times_out()):
            response = await async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})
        assert response.status_code == 504

    fails_with(run(check_timeout_test, status_only), "passes on a view that answers 504 as plain",
               "response.json()")


def test_a_test_that_reads_the_text_but_not_the_json_is_refused(project):
    """Review 10-s31b #2: a plain-text 504 that keeps the JSON's words is the realistic bug
    (JsonResponse swapped for HttpResponse); a test that looks for the words misses it."""
    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    @marked
    async def text_only(async_client, book):
        with client.use_transport(times_out()):
            response = await async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})
        assert response.status_code == 504 and b"timed out" in response.content

    fails_with(run(check_timeout_test, text_only), "passes on a view that answers 504 as plain",
               "response.json()")


def test_a_test_that_accepts_any_error_is_refused(project):
    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    @marked
    async def any_error(async_client, book):
        with client.use_transport(times_out()):
            response = await async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})
        assert response.status_code >= 500 and "error" in response.json()

    fails_with(run(check_timeout_test, any_error), "passes on a view that answers 502")


def test_a_test_without_the_fake_upstream_fails_on_the_correct_view(project):
    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    @marked
    async def real_upstream(async_client, book):
        response = await async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})
        assert response.status_code == 504

    fails_with(run(check_timeout_test, real_upstream), "on the correct view it failed",
               "httpx.ReadTimeout")


def test_a_swallowed_assertion_is_refused(project):
    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    @marked
    async def swallowed(async_client, book):
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


def test_a_sync_test_with_async_to_sync_is_told_why_the_async_form(project):
    """Review 10-s24 #6: way out 3 is right in a file; the hint says why the check wants the
    async form (it runs the test in the notebook's loop, where async_to_sync refuses)."""
    from asgiref.sync import async_to_sync

    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    @mark("django_db")
    def way_out_3(async_client, book):
        async def body():
            with client.use_transport(times_out()):
                response = await async_client.get("/exercise-10/price/BK-001/",
                                                  {"currency": "USD"})
            assert response.status_code == 504 and "error" in response.json()

        async_to_sync(body)()

    fails_with(run(check_timeout_test, way_out_3), "not an async function", "way out 3",
               "async_to_sync refuses to run")


def test_use_transport_as_a_decorator_is_told_to_use_with(project):
    """Review 10-s29: contextmanager's ContextDecorator wraps the async def in a sync function
    that leaves the block before the coroutine runs; the verdict names that, not "not async"."""
    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    @marked
    @client.use_transport(times_out())
    async def decorated(async_client, book):
        response = await async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})
        assert response.status_code == 504 and "error" in response.json()

    fails_with(run(check_timeout_test, decorated), "a decorator wrapped it in a sync function",
               "`with client.use_transport(...):`")


def test_async_to_sync_as_a_decorator_gets_the_way_out_3_hint(project):
    from asgiref.sync import async_to_sync

    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    @mark("django_db")
    @async_to_sync
    async def way_out_3(async_client, book):
        with client.use_transport(times_out()):
            response = await async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})
        assert response.status_code == 504 and "error" in response.json()

    fails_with(run(check_timeout_test, way_out_3), "not an async function", "way out 3")


def test_an_unknown_fixture_is_named(project):
    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    async def wants_client(client):  # pytest-django's sync Client: not for an async test
        pass

    fails_with(run(check_timeout_test, wants_client), "asks for client", "async_rf or rf")


def test_pytest_djangos_rf_passes(project):
    """An async view takes the WSGIRequest of the sync RequestFactory too (review s25, 5)."""
    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    @marked
    async def with_rf(rf, price_view, book):
        with client.use_transport(times_out()):
            response = await price_view(rf.get("/", {"currency": "USD"}), sku="BK-001")
        assert response.status_code == 504 and "error" in json.loads(response.content)

    verdict = run(check_timeout_test, with_rf)
    assert verdict, str(verdict)


BODY = """
async def test_upstream_timeout(async_client, book):
    with client.use_transport(times_out()):
        response = await async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})
    assert response.status_code == 504 and "error" in response.json()
"""


def in_a_module(pytestmark, decorators=()):
    """The test defined in a namespace of its own, with that module-level ``pytestmark``, as in
    a file or a notebook (where a cell's globals are the notebook's namespace)."""
    namespace = {"client": client, "times_out": times_out, "pytestmark": pytestmark}
    exec(BODY, namespace)
    test = namespace["test_upstream_timeout"]
    for decorator in decorators:
        test = decorator(test)
    return test


def test_marks_in_a_module_level_pytestmark_count(project):
    """pytest applies a module's pytestmark to each of its tests (review s25, 2)."""
    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    both = [mark("asyncio"), mark("django_db", transaction=True)]
    for right in (in_a_module(both), in_a_module(tuple(both)),
                  in_a_module(mark("asyncio"), [mark("django_db", transaction=True)]),
                  in_a_module([mark("django_db", transaction=True), mark("usefixtures", "db")],
                              [mark("asyncio")])):
        verdict = run(check_timeout_test, right)
        assert verdict, str(verdict)
    fails_with(run(check_timeout_test, in_a_module([mark("django_db", transaction=True)])),
               "no @pytest.mark.asyncio", "module-level pytestmark")
    fails_with(run(check_timeout_test, in_a_module([mark("asyncio"), mark("django_db")])),
               "issue 580")
    # the test's own mark is the nearer one, as in pytest: the trap on the test wins
    fails_with(run(check_timeout_test, in_a_module(both, [mark("django_db")])), "issue 580")


calls = []  # module level, as a learner's notebook cell would keep it


def test_a_test_that_fails_the_buggy_runs_only_through_its_own_state_is_refused(project):
    """It asserts nothing about the response: its second run fails whatever the view does
    (review s25, 4)."""
    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    @marked
    async def counts_its_runs(async_client, book):
        with client.use_transport(times_out()):
            response = await async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})
        calls.append(response)
        assert len(calls) == 1

    calls.clear()
    fails_with(run(check_timeout_test, counts_its_runs),
               "passes on the correct view once, but fails on it a second time",
               "module level")

    answers = iter([httpx.ReadTimeout("too slow")])  # one-shot: the second run gets nothing

    @marked
    async def one_shot_handler(async_client, book):
        def handler(request):
            raise next(answers)

        with client.use_transport(httpx.MockTransport(handler)):
            response = await async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})
        assert response.status_code == 504 and "error" in response.json()

    fails_with(run(check_timeout_test, one_shot_handler), "a second time", "StopIteration")


def test_a_test_whose_state_changes_on_the_buggy_runs_is_refused(project):
    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    failures = []

    @marked
    async def stops_after_a_failure(async_client, book):
        if failures:
            raise AssertionError("an earlier run failed")
        with client.use_transport(times_out()):
            response = await async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})
        try:
            assert response.status_code == 504 and "error" in response.json()
        except AssertionError:
            failures.append(response.status_code)
            raise

    fails_with(run(check_timeout_test, stops_after_a_failure),
               "fails on it after the buggy runs")


def test_caplog_runs_print_no_django_request_lines(project, capsys):
    """The check's caplog keeps django.request's records and prints none of them (review s25,
    7): the settings' cell handler gives way while it captures, and is back after."""
    import logging

    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    handlers = list(logging.getLogger("django.request").handlers)

    @marked
    async def caplog_and_json(async_client, book, caplog):
        with client.use_transport(times_out()):
            response = await async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})
        assert response.status_code == 504 and "error" in response.json()
        assert "Gateway Timeout" in caplog.text

    capsys.readouterr()
    verdict = run(check_timeout_test, caplog_and_json)
    assert verdict, str(verdict)
    assert "[django.request]" not in capsys.readouterr().out
    assert logging.getLogger("django.request").handlers == handlers


def test_a_test_that_checks_the_message_but_not_the_status_is_refused(project):
    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    @marked
    async def message_only(async_client, book):
        with client.use_transport(times_out()):
            response = await async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})
        assert "timed out" in response.json()["error"]

    @marked
    async def not_200(async_client, book):
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

    @marked
    async def imported_view(async_rf, book):
        with client.use_transport(times_out()):
            response = await product_price(async_rf.get("/", {"currency": "USD"}), "BK-001")
        assert response.status_code == 504 and "error" in json.loads(response.content)

    fails_with(run(check_timeout_test, imported_view), "never calls the view", "price_view")


def test_json_on_a_factory_response_gets_its_own_hint(project):
    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    @marked
    async def factory_json(async_rf, price_view, book):
        with client.use_transport(times_out()):
            response = await price_view(async_rf.get("/", {"currency": "USD"}), sku="BK-001")
        assert response.status_code == 504 and "error" in response.json()

    fails_with(run(check_timeout_test, factory_json), "AttributeError", "json.loads")


def test_the_sync_orm_in_the_test_gets_its_own_hint(project):
    from tutorial_project.catalog.models import Product
    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    @marked
    async def sync_orm(async_client, book):
        assert Product.objects.filter(sku="BK-001").exists()
        with client.use_transport(times_out()):
            response = await async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})
        assert response.status_code == 504 and "error" in response.json()

    fails_with(run(check_timeout_test, sync_orm), "SynchronousOnlyOperation", "a-methods")


def test_right_tests_written_differently_pass(project):
    from unittest import mock

    from django.test import AsyncClient

    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    @marked
    async def with_mock_patch_of_the_transport(async_client, book):
        with mock.patch.object(client, "_transport", times_out()):
            response = await async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})
        assert response.status_code == 504
        assert response["Content-Type"] == "application/json" and response.json()["error"]

    @marked
    async def with_its_own_client(async_client, book):
        own = AsyncClient(raise_request_exception=False)
        with client.use_transport(times_out()):
            response = await own.get("/exercise-10/price/BK-001/", {"currency": "USD"})
        assert response.status_code == 504 and "error" in response.json()

    @marked
    async def with_a_connect_timeout(async_rf, price_view, book):
        async def handler(request):
            raise httpx.ConnectTimeout("slow")

        with client.use_transport(httpx.MockTransport(handler)):
            response = await price_view(async_rf.get("/", {"currency": "USD"}), sku="BK-001")
        assert response.status_code == 504 and "error" in json.loads(response.content)

    for right in (with_mock_patch_of_the_transport, with_its_own_client,
                  with_a_connect_timeout):
        verdict = run(check_timeout_test, right)
        assert verdict, f"{right.__name__}: {verdict}"
    assert client.fetch_rate.__name__ == "fetch_rate"  # the check's buggy client was undone


def test_a_test_that_replaces_fetch_rate_misses_the_client_bug(project):
    """Review 10-s24 #2: patching the client's method, not its transport, passes on the view
    bugs but never runs the client's error mapping: the buggy client catches it."""
    from unittest import mock

    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    @marked
    async def with_mock_patch(async_client, book):
        with mock.patch.object(client, "fetch_rate", side_effect=client.UpstreamTimeout("slow")):
            response = await async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})
        assert response.status_code == 504
        assert response["Content-Type"] == "application/json" and response.json()["error"]

    @marked
    async def with_monkeypatch(async_client, monkeypatch, book):
        async def boom(currency):
            raise client.UpstreamTimeout("slow")

        monkeypatch.setattr(client, "fetch_rate", boom)
        response = await async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})
        assert response.status_code == 504 and "error" in response.json()

    real_fetch = client.fetch_rate
    for wrong in (with_mock_patch, with_monkeypatch):
        fails_with(run(check_timeout_test, wrong), "it fails on a view that answers 502",
                   "passes on a rates client that turns the timeout into an upstream error",
                   "swap the transport, not fetch_rate")
    assert client.fetch_rate is real_fetch  # the check's buggy client and the patches undone


def test_a_fake_upstream_that_blocks_the_loop_is_refused(project):
    """Review 10-s24 #3: MockTransport has no timeout, so a handler that sleeps is only slow;
    time.sleep on the loop's thread holds the loop (under any name)."""
    import time
    from time import sleep

    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    @marked
    async def sleeps_then_raises(async_client, book):
        def too_slow(request):
            time.sleep(0.3)  # "simulate" the timeout
            raise httpx.ReadTimeout("slow")

        with client.use_transport(httpx.MockTransport(too_slow)):
            response = await async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})
        assert response.status_code == 504 and "error" in response.json()

    @marked
    async def sleeps_in_the_test(async_client, book):
        with client.use_transport(times_out()):
            sleep(0.1)  # bound before the check: seen by what it is
            response = await async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})
        assert response.status_code == 504 and "error" in response.json()

    for wrong in (sleeps_then_raises, sleeps_in_the_test):
        started = time.perf_counter()
        fails_with(run(check_timeout_test, wrong), "blocks the event loop", "time.sleep",
                   "MockTransport ignores the client's timeout=", "raise httpx.ReadTimeout")
        assert time.perf_counter() - started < 5  # refused after one run, not seven


def test_a_fake_upstream_that_spins_on_the_loop_is_refused(project):
    """Review 10-s31b #1: a handler that burns CPU instead of sleeping calls nothing the
    blocking-call watch names, and holds the loop just the same."""
    import time

    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    @marked
    async def spins_then_raises(async_client, book):
        def too_slow(request):
            # "simulate" a slow upstream without time.sleep: 0.3 s of this thread's CPU (a
            # spin timed by the wall clock gets only its share of a loaded machine's cores, and
            # the check times CPU, which is what a learner's machine would spend)
            end = time.thread_time() + 0.3
            while time.thread_time() < end:
                pass
            raise httpx.ReadTimeout("slow")

        with client.use_transport(httpx.MockTransport(too_slow)):
            response = await async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})
        assert response.status_code == 504 and "error" in response.json()

    fails_with(run(check_timeout_test, spins_then_raises), "held the event loop for",
               "ms of CPU", "raise httpx.ReadTimeout")


def test_the_sync_cache_in_the_test_is_refused(project):
    """Review 10-s31b #3: cell 31 teaches that the sync cache holds the loop with Redis."""
    from django.core.cache import cache

    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    @marked
    async def clears_the_cache_sync(async_client, book):
        cache.clear()
        with client.use_transport(times_out()):
            response = await async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})
        assert response.status_code == 504 and "error" in response.json()

    @marked
    async def clears_the_cache_async(async_client, book):
        await cache.aclear()
        with client.use_transport(times_out()):
            response = await async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})
        assert response.status_code == 504 and "error" in response.json()

    fails_with(run(check_timeout_test, clears_the_cache_sync), "sync cache.clear()",
               "await cache.aclear(...)")
    verdict = run(check_timeout_test, clears_the_cache_async)
    assert verdict, str(verdict)


def test_a_test_that_leaves_the_fake_upstream_in_place_is_refused(project):
    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    real_transport, real_fetch = client._transport, client.fetch_rate

    @marked
    async def leaks_the_transport(async_client, book):
        client._transport = times_out()  # never put back
        response = await async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})
        assert response.status_code == 504 and "error" in response.json()

    @marked
    async def leaks_fetch_rate(async_client, book):
        async def boom(currency):
            raise client.UpstreamTimeout("slow")

        client.fetch_rate = boom  # never put back
        response = await async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})
        assert response.status_code == 504 and "error" in response.json()

    fails_with(run(check_timeout_test, leaks_the_transport), "left the rates client changed",
               "_transport", "client.use_transport")
    fails_with(run(check_timeout_test, leaks_fetch_rate), "left the rates client changed",
               "fetch_rate", "monkeypatch")
    assert (client._transport, client.fetch_rate) == (real_transport, real_fetch)  # put back


def test_a_fake_upstream_leaked_inside_the_client_is_refused_and_put_back(project):
    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    def too_slow(request):
        raise httpx.ReadTimeout("no answer")

    @marked
    async def swaps_the_handler(async_client, book):  # the transport mutated in place
        client._transport.handler = too_slow
        response = await async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})
        assert response.status_code == 504 and "error" in response.json()

    @marked
    async def swaps_the_shared_clients_transport(async_client, book):
        client.shared_client()._transport = httpx.MockTransport(too_slow)
        response = await async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})
        assert response.status_code == 504 and "error" in response.json()

    @marked
    async def fakes_nothing(async_client, book):  # right only while a leak is in place
        response = await async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})
        assert response.status_code == 504 and "error" in response.json()

    async def in_one_loop():  # as in the notebook: every check runs in the kernel's loop
        verdicts = [await check_timeout_test(test) for test in (
            swaps_the_handler, fakes_nothing, swaps_the_shared_clients_transport,
            fakes_nothing)]
        return verdicts, await client.fetch_rate("USD")

    real_handler = client._transport.handler
    (handler, after_handler, shared, after_shared), rate = asyncio.run(in_one_loop())
    fails_with(handler, "left the rates client changed", "_transport.handler",
               "now raises UpstreamTimeout; before your test it answers 1.10",
               "client.use_transport")
    fails_with(shared, "left the rates client changed", "shared_client()._transport")
    for verdict in (handler, shared):
        assert "restart the kernel" not in str(verdict), str(verdict)  # it was put back
    for verdict in (after_handler, after_shared):  # the leak did not outlive its check
        fails_with(verdict, "on the correct view it failed")
    assert (client._transport.handler, str(rate)) == (real_handler, "1.10")


def test_an_upstream_an_earlier_cell_broke_is_put_back_before_the_test_runs(project):
    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    real_transport = client._transport
    client._transport = times_out()  # a notebook cell that never put it back
    try:
        verdict = run(check_timeout_test, reference)
        assert verdict, str(verdict)
        assert "put the simulated upstream back" in str(verdict)
        assert str(asyncio.run(client.fetch_rate("USD"))) == "1.10"
    finally:
        client._transport = real_transport


def unmarked_right_test():
    """A right test body, with no marks: a new function each time, since a mark is stored on
    the function itself."""
    async def test_upstream_timeout(async_client, book):
        with client.use_transport(times_out()):
            response = await async_client.get("/exercise-10/price/BK-001/",
                                              {"currency": "USD"})
        assert response.status_code == 504 and "error" in response.json()

    return test_upstream_timeout


def test_a_test_that_would_fail_under_pytest_is_refused(project):
    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    right_body = unmarked_right_test

    async def no_book(async_client):
        await right_body()(async_client, None)

    async def only_db_fixture(async_client, db, book):
        await right_body()(async_client, book)

    async def no_database(async_client):
        await right_body()(async_client, None)

    wrong = {
        "no marks at all": (right_body(), "no @pytest.mark.asyncio"),
        "no asyncio mark": (mark("django_db", transaction=True)(right_body()), "strict mode"),
        "no database at all": (mark("asyncio")(no_database), "query is blocked"),
        "book alone (its plain db)": (mark("asyncio")(right_body()), "issue 580"),
        "the plain django_db (the trap)": (
            mark("asyncio")(mark("django_db")(right_body())), "issue 580"),
        "the db fixture, no transaction": (mark("asyncio")(only_db_fixture), "issue 580"),
        "no book": (marked(no_book), "test database starts empty"),
    }
    for label, (test, phrase) in wrong.items():
        verdict = run(check_timeout_test, test)
        assert not verdict, label
        assert phrase in str(verdict), f"{label}: {verdict}"


def test_a_misspelt_django_db_argument_is_named_with_the_right_one(project):
    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    @mark("asyncio")
    @mark("django_db", transactional=True)  # pytest errors on it too
    async def test_upstream_timeout(async_client, book):
        with client.use_transport(times_out()):
            response = await async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})
        assert response.status_code == 504 and "error" in response.json()

    fails_with(run(check_timeout_test, test_upstream_timeout),
               "unexpected keyword argument 'transactional'", "takes transaction=True")


def test_a_test_that_never_reads_the_error_is_refused(project):
    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    @marked
    async def any_json(async_client, book):
        with client.use_transport(times_out()):
            response = await async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})
        assert response.status_code == 504 and response.json() is not None

    fails_with(run(check_timeout_test, any_json), "empty JSON object", '"error"')


def test_right_tests_with_other_fixtures_and_marks_pass(project):
    from django.conf import settings as django_settings

    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    async def transactional_fixture(async_client, transactional_db, book):
        with client.use_transport(times_out()):
            response = await async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})
        assert response.status_code == 504 and "error" in response.json()

    @marked
    async def db_and_caplog(async_client, db, book, caplog):
        with client.use_transport(times_out()):
            response = await async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})
        assert response.status_code == 504 and "error" in response.json()
        assert "Gateway Timeout" in caplog.text  # django.request logs the 504

    @marked
    async def with_settings(async_client, settings, book):
        settings.DEBUG = False
        with client.use_transport(times_out()):
            response = await async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})
        assert response.status_code == 504 and "error" in response.json()

    @marked
    async def monkeypatched_transport(async_rf, price_view, monkeypatch, book):
        monkeypatch.setattr(client, "_transport", times_out())
        response = await price_view(async_rf.get("/", {"currency": "GBP"}), sku=book.sku)
        assert response.status_code == 504 and json.loads(response.content)["error"]

    @marked
    async def connect_timeout_no_currency(async_client, book):
        def handler(request):
            raise httpx.ConnectTimeout("connect timeout", request=request)

        with client.use_transport(httpx.MockTransport(handler)):
            response = await async_client.get("/exercise-10/price/BK-001/")
        assert (response.status_code, response["Content-Type"]) == (504, "application/json")
        assert "timed out" in response.json()["error"]

    debug = django_settings.DEBUG
    for right in (mark("asyncio")(transactional_fixture), db_and_caplog, with_settings,
                  monkeypatched_transport, connect_timeout_no_currency):
        verdict = run(check_timeout_test, right)
        assert verdict, f"{right.__name__}: {verdict}"
    assert django_settings.DEBUG == debug  # the settings fixture was undone


def test_reset_sequences_is_transactional_and_serialized_rollback_is_not(project):
    """As pytest-django 4.14's _django_db_helper: reset_sequences (the mark's argument or the
    django_db_reset_sequences fixture, which asks for transactional_db) makes the test a
    TransactionTestCase; serialized_rollback alone keeps the plain, trapped db."""
    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    right_body = unmarked_right_test

    async def reset_fixture(async_client, django_db_reset_sequences, book):
        await right_body()(async_client, book)

    async def serialized_fixture(async_client, django_db_serialized_rollback, book):
        await right_body()(async_client, book)

    right = {
        "django_db(reset_sequences=True)": mark("asyncio")(
            mark("django_db", reset_sequences=True)(right_body())),
        "django_db_reset_sequences fixture, plain mark": mark("asyncio")(
            mark("django_db")(reset_fixture)),
        "django_db_reset_sequences fixture, no mark": mark("asyncio")(reset_fixture),
    }
    for label, test in right.items():
        verdict = run(check_timeout_test, test)
        assert verdict, f"{label}: {verdict}"
    wrong = {
        "django_db(serialized_rollback=True)": mark("asyncio")(
            mark("django_db", serialized_rollback=True)(right_body())),
        "django_db_serialized_rollback fixture": mark("asyncio")(serialized_fixture),
    }
    for label, test in wrong.items():
        verdict = run(check_timeout_test, test)
        assert not verdict, label
        assert "issue 580" in str(verdict), f"{label}: {verdict}"


def test_a_test_of_the_notebooks_own_route_is_told_which_route_to_request(project):
    from tutorial_project.course.exercises.lesson10 import check_timeout_test
    from tutorial_project.playground import mount, unmount
    from tutorial_project.rates.views import product_price

    @marked
    async def notebook_route(async_client, book):  # /price/ is the notebook's correct view
        with client.use_transport(times_out()):
            response = await async_client.get("/price/BK-001/", {"currency": "USD"})
        assert response.status_code == 504 and "error" in response.json()

    mount("/price/<str:sku>/", product_price)
    try:
        fails_with(run(check_timeout_test, notebook_route), "never calls the view",
                   "/exercise-10/price/BK-001/")
    finally:
        unmount("/price/<str:sku>/")


def test_book_named_in_usefixtures_passes(project):
    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    @mark("usefixtures", "book")
    @marked
    async def book_by_usefixtures(async_client):  # idiomatic pytest: BK-001 exists, unused
        with client.use_transport(times_out()):
            response = await async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})
        assert response.status_code == 504 and "error" in response.json()

    verdict = run(check_timeout_test, book_by_usefixtures)
    assert verdict, str(verdict)
    assert "it asks for the book fixture" in str(verdict)


def test_usefixtures_without_book_or_with_an_unknown_fixture_is_refused(project):
    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    async def body(async_client):
        with client.use_transport(times_out()):
            response = await async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})
        assert response.status_code == 504 and "error" in response.json()

    fails_with(run(check_timeout_test, mark("usefixtures", "db")(marked(body))),
               "it does not ask for book")
    fails_with(run(check_timeout_test, mark("usefixtures", "book", "mailoutbox")(marked(body))),
               "it asks for mailoutbox")


def test_right_tests_with_anyio_or_their_own_product_pass_and_their_writes_do_not_last(project):
    from datetime import UTC, datetime
    from decimal import Decimal

    from tutorial_project.catalog.models import Category, Product
    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    @mark("django_db", transaction=True)
    @mark("anyio")  # anyio's pytest plugin (it ships with httpx) runs it on asyncio
    async def with_anyio(async_client, book):
        with client.use_transport(times_out()):
            response = await async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})
        assert response.status_code == 504 and "error" in response.json()

    @marked
    async def with_its_own_product(async_client):  # no book: it makes the row itself
        books = await Category.objects.acreate(name="Books", slug="books")
        await Product.objects.acreate(sku="BK-001", name="A book", category=books,
                                      price=Decimal("40.00"), created_at=datetime.now(UTC))
        with client.use_transport(times_out()):
            response = await async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})
        assert response.status_code == 504 and "error" in response.json()

    @marked
    async def writes_a_price(async_client, book):
        await Product.objects.filter(sku="BK-001").aupdate(price=Decimal("1.00"))
        with client.use_transport(times_out()):
            response = await async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})
        assert response.status_code == 504 and "error" in response.json()

    def snapshot():
        return sorted(Product.objects.values_list("sku", "price")), Category.objects.count()

    before = snapshot()
    for right in (with_anyio, with_its_own_product, writes_a_price):
        verdict = run(check_timeout_test, right)
        assert verdict, f"{right.__name__}: {verdict}"
    assert "marked @pytest.mark.anyio" in str(run(check_timeout_test, with_anyio))
    assert snapshot() == before  # each run was rolled back


def test_anyio_without_its_mark_or_with_the_trap_is_refused(project):
    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    async def body(async_client, book):
        with client.use_transport(times_out()):
            response = await async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})
        assert response.status_code == 504 and "error" in response.json()

    fails_with(run(check_timeout_test, mark("anyio")(mark("django_db")(body))), "issue 580")


def test_a_test_that_can_never_fail_under_pytest_is_refused(project):
    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    def right_body():
        return marked(unmarked_right_test())

    never_fail = {
        "skip": mark("skip"),
        "skipif": mark("skipif", True, reason="later"),
        "xfail": mark("xfail"),
        "strict xfail": mark("xfail", strict=True),
    }
    for label, decorator in never_fail.items():
        fails_with(run(check_timeout_test, decorator(right_body())), "never fails",
                   label.split()[-1])
    module_level = in_a_module([mark("skip"), mark("asyncio"), mark("django_db", transaction=True)])
    fails_with(run(check_timeout_test, module_level), "never fails", "skip")
    via_param = mark("parametrize", "error", [pytest.param(1, marks=pytest.mark.xfail)])

    @via_param
    @marked
    async def xfail_in_a_param(async_client, book, error):
        await right_body()(async_client, book)

    fails_with(run(check_timeout_test, xfail_in_a_param), "never fails", "xfail")


def test_a_test_parametrized_over_two_timeouts_passes(project):
    from tutorial_project.course.exercises.lesson10 import check_timeout_test

    timeouts = [httpx.ReadTimeout("slow"), httpx.ConnectTimeout("slow")]

    @mark("parametrize", "error", timeouts)
    @marked
    async def over_two_timeouts(async_client, book, error):
        def handler(request):
            raise error

        with client.use_transport(httpx.MockTransport(handler)):
            response = await async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})
        assert response.status_code == 504 and "error" in response.json()

    verdict = run(check_timeout_test, over_two_timeouts)
    assert verdict, str(verdict)

    @mark("parametrize", ("error", "status"),
          [(timeouts[0], 504), (httpx.ConnectError("no"), 504)])
    @marked
    async def wrong_in_one_set(async_client, book, error, status):  # a ConnectError is a 502
        def handler(request):
            raise error

        with client.use_transport(httpx.MockTransport(handler)):
            response = await async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})
        assert response.status_code == status

    fails_with(run(check_timeout_test, wrong_in_one_set), "correct view", "502 == 504")

    @mark("parametrize", "error", timeouts)
    @marked
    async def status_only(async_client, book, error):  # misses the plain-text 504
        def handler(request):
            raise error

        with client.use_transport(httpx.MockTransport(handler)):
            response = await async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})
        assert response.status_code == 504

    fails_with(run(check_timeout_test, status_only), "passes on a view that answers 504 as plain")

    @mark("parametrize", "mistake", [1])
    @marked
    async def not_a_parameter(async_client, book):
        pass

    fails_with(run(check_timeout_test, not_a_parameter), "pytest refuses to collect it")

    @mark("parametrize", ("error", "status"), [(1, 2, 3)])
    @marked
    async def wrong_count(async_client, book, error, status):
        pass

    fails_with(run(check_timeout_test, wrong_count), "wrong number of values")
