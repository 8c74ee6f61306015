"""Checks for lesson 10 · Testing async code."""

from decimal import Decimal

import httpx
from django.test import AsyncClient

from tutorial_project.catalog.models import Product
from tutorial_project.course.exercises.core import exercise
from tutorial_project.course.exercises.expect import must_be_async
from tutorial_project.instruments.ticker import ticker
from tutorial_project.playground import mount, unmount
from tutorial_project.rates.client import use_transport
from tutorial_project.rates.views import product_price


@exercise("10.1", "A fake upstream with httpx.MockTransport")
async def check_rate_transport(check, transport):
    check.that(
        isinstance(transport, httpx.AsyncBaseTransport),
        "rate_transport is an httpx transport",
        f"rate_transport is a {type(transport).__name__}, not an httpx transport",
        hint="wrap a handler: httpx.MockTransport(lambda request: httpx.Response(...))",
    )
    route = "exercise-10-1/<str:sku>/"
    mount(route, product_price)
    try:
        with use_transport(transport):
            response = await AsyncClient(raise_request_exception=False).get(
                "/exercise-10-1/BK-001/", {"currency": "USD"}
            )
    finally:
        unmount(route)
    body = response.json() if response.get("Content-Type") == "application/json" else {}
    check.that(
        response.status_code == 200,
        "the price view answered 200",
        f"the price view answered {response.status_code} {body}",
        hint='answer httpx.Response(200, json={"rate": "2.5"}) for every request',
    )
    euros = (await Product.objects.aget(sku="BK-001")).price
    expected = (euros * Decimal("2.5")).quantize(Decimal("0.01"))
    check.that(
        Decimal(body.get("price", "0")) == expected,
        f"BK-001 ({euros} EUR) costs {expected} at a rate of 2.5",
        f"BK-001 ({euros} EUR) costs {body.get('price')}, expected {expected}",
        hint='the rate must be 2.5: json={"rate": "2.5"}',
    )


@exercise("10.2", "Read a streaming response")
async def check_read_stream(check, read_stream):
    must_be_async(
        check,
        read_stream,
        "read_stream",
        hint="define it with `async def read_stream(response):` and use `async for`",
    )
    route = "exercise-10-2/"
    mount(route, ticker)
    try:
        response = await AsyncClient().get(f"/{route}", {"count": 3})
        body = await read_stream(response)
    finally:
        unmount(route)
    check.that(
        isinstance(body, str),
        "it returns a str",
        f"it returned a {type(body).__name__}",
        hint="join the byte chunks, then .decode() them",
    )
    check.that(
        body == "tick 1\ntick 2\ntick 3\n",
        "it returns the whole body: 3 ticks",
        f"it returned {body!r}",
        hint="collect every chunk: [chunk async for chunk in response.streaming_content]",
    )
