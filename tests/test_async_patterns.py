"""The project's own tests for its async code, written the way lesson 10 teaches.

- ``async def`` test methods in ``TestCase`` (Django runs them in an event loop for you);
- ``self.async_client`` (an ``AsyncClient``) and ``AsyncRequestFactory``;
- the rates view tested by swapping the upstream's transport (``httpx.MockTransport``);
- a middleware tested in sync and in async mode;
- a streaming response read with ``async for``, and a client disconnect through the real
  ``ASGIHandler``.
Run alone with: ``.venv/py311/bin/python -m pytest -q tests/test_async_patterns.py``.
"""

# ruff: noqa: E402  (the project is configured before its models are imported)
import asyncio
from decimal import Decimal

import httpx

from tutorial_project import mount, start, unmount, use_middleware

start(quiet=True)

from django.core.handlers.asgi import ASGIHandler
from django.http import HttpResponse
from django.test import AsyncRequestFactory, RequestFactory, SimpleTestCase, TestCase

from tutorial_project.catalog.models import Product
from tutorial_project.instruments import ticker as ticker_module
from tutorial_project.instruments.served_by import served_mode_middleware
from tutorial_project.rates.client import use_transport
from tutorial_project.rates.views import product_price

PRICE_ROUTE = "tests/price/<str:sku>/"
TICKER_ROUTE = "tests/ticker/"


def upstream_answering(status, payload):
    return httpx.MockTransport(lambda request: httpx.Response(status, json=payload))


def upstream_raising(error):
    def handler(request):
        raise error

    return httpx.MockTransport(handler)


class MountedViewsMixin:
    @classmethod
    def setUpClass(cls):
        start(quiet=True)  # the demo data, whatever tests ran before in this process
        super().setUpClass()
        mount(PRICE_ROUTE, product_price)
        mount(TICKER_ROUTE, ticker_module.ticker)

    @classmethod
    def tearDownClass(cls):
        unmount(PRICE_ROUTE)
        unmount(TICKER_ROUTE)
        super().tearDownClass()


class PriceViewTests(MountedViewsMixin, TestCase):
    async def test_converts_with_the_upstream_rate(self):
        product = await Product.objects.aget(sku="BK-001")
        with use_transport(upstream_answering(200, {"rate": "2"})):
            response = await self.async_client.get("/tests/price/BK-001/?currency=USD")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(Decimal(response.json()["price"]), product.price * 2)

    async def test_upstream_error_is_a_502(self):
        with use_transport(upstream_answering(503, {"error": "down"})):
            response = await self.async_client.get("/tests/price/BK-001/?currency=USD")
        self.assertEqual(response.status_code, 502)
        self.assertIn("503", response.json()["error"])

    async def test_upstream_timeout_is_a_504(self):
        with use_transport(upstream_raising(httpx.ReadTimeout("too slow"))):
            response = await self.async_client.get("/tests/price/BK-001/?currency=USD")
        self.assertEqual(response.status_code, 504)

    async def test_bad_input_is_a_4xx_json_error(self):
        cases = {
            "/tests/price/BK-001/?currency=usd": 400,  # not a currency code
            "/tests/price/BK-001/?currency=XXX": 400,  # the upstream does not know it
            "/tests/price/NO-SUCH/?currency=USD": 404,
        }
        for url, status in cases.items():
            with self.subTest(url=url):
                response = await self.async_client.get(url)
                self.assertEqual(response.status_code, status)
                self.assertIn("error", response.json())

    async def test_view_called_directly_with_async_request_factory(self):
        request = AsyncRequestFactory().get("/anything/", {"currency": "GBP"})
        response = await product_price(request, sku="BK-001")
        self.assertEqual(response.status_code, 200)


class MiddlewareTests(MountedViewsMixin, TestCase):
    def test_sync_mode(self):
        middleware = served_mode_middleware(lambda request: HttpResponse("ok"))
        response = middleware(RequestFactory().get("/"))
        self.assertEqual(response["X-Served-Mode"], "sync")

    async def test_async_mode(self):
        async def get_response(request):
            return HttpResponse("ok")

        middleware = served_mode_middleware(get_response)
        response = await middleware(AsyncRequestFactory().get("/"))
        self.assertEqual(response["X-Served-Mode"], "async")

    async def test_in_the_real_stack_under_asgi(self):
        with use_middleware("tutorial_project.instruments.served_by.served_mode_middleware"):
            response = await self.async_client.get("/tests/price/BK-001/")
        self.assertEqual(response["X-Served-Mode"], "async")


class StreamingTests(MountedViewsMixin, SimpleTestCase):
    async def test_streams_every_tick(self):
        response = await self.async_client.get("/tests/ticker/?count=3")
        self.assertTrue(response.streaming)
        body = b"".join([chunk async for chunk in response.streaming_content])
        self.assertEqual(body, b"tick 1\ntick 2\ntick 3\n")

    async def test_bad_count_is_a_400(self):
        response = await self.async_client.get("/tests/ticker/?count=oops")
        self.assertEqual(response.status_code, 400)

    async def test_disconnect_cancels_the_stream(self):
        ticker_module.events.clear()
        messages = asyncio.Queue()
        messages.put_nowait({"type": "http.request", "body": b"", "more_body": False})
        chunks = []

        async def send(message):
            if message["type"] == "http.response.body" and message.get("body"):
                chunks.append(message["body"])
                messages.put_nowait({"type": "http.disconnect"})  # the client leaves

        scope = {"type": "http", "method": "GET", "path": "/tests/ticker/",
                 "query_string": b"count=50", "headers": [], "server": ("testserver", 80)}
        await asyncio.wait_for(ASGIHandler()(scope, messages.get, send), timeout=10)
        self.assertEqual(ticker_module.events, ["cancelled"])
        self.assertLess(len(chunks), 50)
