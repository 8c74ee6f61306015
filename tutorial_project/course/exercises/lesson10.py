"""Checks for lesson 10 · Testing async code.

10.1 asks for a test, not for code under test: the check runs the learner's test against the
correct price view and against views with realistic bugs. A right test passes on the first
and fails (by an assertion or any exception, as under pytest) on each buggy one.
"""

import inspect
import json

import pytest
from django.core.exceptions import SynchronousOnlyOperation
from django.http import JsonResponse
from django.test import AsyncClient, AsyncRequestFactory

from tutorial_project.course.exercises.attempt import Raised, attempt, fail
from tutorial_project.course.exercises.core import exercise
from tutorial_project.course.exercises.expect import must_be_async
from tutorial_project.course.exercises.probes import quiet_request_log
from tutorial_project.playground import mount, unmount
from tutorial_project.rates import client
from tutorial_project.rates.views import product_price

ROUTE = "exercise-10/price/<str:sku>/"  # the learner's test requests /exercise-10/price/BK-001/
# what a test may ask for, by name
FIXTURES = {"async_client", "async_rf", "price_view", "monkeypatch"}


def _buggy_views():
    async def timeout_is_a_502(request, sku):  # lumps every upstream failure together
        response = await product_price(request, sku)
        if response.status_code == 504:
            return JsonResponse({"error": "rates upstream failed"}, status=502)
        return response

    async def timeout_escapes(request, sku):  # forgot the except: a 500, and no JSON
        await client.fetch_rate(request.GET.get("currency", "EUR"))
        return await product_price(request, sku)

    async def falls_back_silently(request, sku):  # answers the EUR price as if converted
        response = await product_price(request, sku)
        if response.status_code == 504:
            from tutorial_project.catalog.models import Product

            product = await Product.objects.aget(sku=sku)
            return JsonResponse({"sku": sku, "currency": request.GET.get("currency"),
                                 "price": str(product.price)})
        return response

    async def plain_text_504(request, sku):  # the right status, but no JSON error to show
        from django.http import HttpResponse

        response = await product_price(request, sku)
        if response.status_code == 504:
            return HttpResponse("Gateway Timeout", status=504, content_type="text/plain")
        return response

    async def right_error_wrong_status(request, sku):  # the timeout's own JSON, as a 502
        response = await product_price(request, sku)
        if response.status_code == 504:
            return JsonResponse(json.loads(response.content), status=502)
        return response

    return {
        "a view that answers 502 for a timeout": (
            timeout_is_a_502, "assert response.status_code == 504, not just 'an error'"),
        "a view that lets the timeout escape (a 500)": (
            timeout_escapes, "assert the status code: a 500 is not a 504"),
        "a view that answers 200 with an unconverted price": (
            falls_back_silently, "assert the status code is 504"),
        "a view that answers 504 as plain text": (
            plain_text_504, 'assert the JSON error too: "error" in response.json()'),
        "a view that answers the timeout's JSON error with a 502": (
            right_error_wrong_status,
            "assert response.status_code == 504: the error message alone does not tell a "
            "504 from a 502"),
    }


def _fixtures_for(test, view):
    asked = set(inspect.signature(test).parameters)
    unknown = asked - FIXTURES
    return unknown, {
        "async_client": lambda: AsyncClient(),
        "async_rf": lambda: AsyncRequestFactory(),
        "price_view": lambda: view,
        "monkeypatch": pytest.MonkeyPatch,
    }, asked


async def _run(check, test, view, what):
    mount(ROUTE, view)
    try:
        _, makers, asked = _fixtures_for(test, view)
        kwargs = {name: makers[name]() for name in asked}
        try:
            with quiet_request_log():
                return await attempt(check, lambda: test(**kwargs), f"your test on {what}")
        finally:
            if "monkeypatch" in kwargs:
                kwargs["monkeypatch"].undo()  # as pytest does after each test
    finally:
        unmount(ROUTE)


@exercise("10.1", "A test that catches a bug")
async def check_timeout_test(check, test_upstream_timeout):
    must_be_async(check, test_upstream_timeout, "test_upstream_timeout", "async_client")
    unknown, _, _ = _fixtures_for(test_upstream_timeout, product_price)
    check.that(not unknown, "it asks only for fixtures the check provides",
               f"it asks for {', '.join(sorted(unknown))}",
               hint="take async_client, async_rf, price_view and/or monkeypatch as parameters")
    outcome = await _run(check, test_upstream_timeout, product_price, "the correct view")
    if isinstance(outcome, Raised):
        fail(check, f"on the correct view it failed: {outcome}", _hint_for(outcome.error))
    check.that(True, "it passes on the correct view", "")
    asked = set(inspect.signature(test_upstream_timeout).parameters)
    caught = 0
    for what, (view, hint) in _buggy_views().items():
        outcome = await _run(check, test_upstream_timeout, view, what)
        if not isinstance(outcome, Raised) and caught == 0 and not asked & {"async_client",
                                                                          "price_view"}:
            fail(check, f"it passes on {what}: it never calls the view the check swaps",
                 "call the view through the price_view fixture (price_view(request, sku=...)), "
                 "or request /exercise-10/price/BK-001/ with async_client")
        check.that(isinstance(outcome, Raised), f"it fails on {what}",
                   f"it passes on {what}" + (": does it assert anything?" if caught == 0 else ""),
                   hint=hint)
        caught += 1


def _hint_for(error):
    """What to change when the test fails on the correct view, from the error it raised."""
    if isinstance(error, SynchronousOnlyOperation):
        return ("the sync ORM cannot run in an async test: use its a-methods "
                "(await Product.objects.aget(...), aexists()...)")
    if isinstance(error, AttributeError) and "json" in str(error):
        return ("a view's own response has no .json() (the test client adds it): "
                "use json.loads(response.content)")
    return ("make the upstream time out with client.use_transport(httpx.MockTransport(...)) "
            "whose handler raises httpx.ReadTimeout; the correct view answers 504 with JSON")
