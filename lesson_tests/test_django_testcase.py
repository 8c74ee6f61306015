"""Django's own test classes with ``async def`` tests: what ``manage.py test`` runs, and pytest too.

``TestCase`` runs each async test through ``async_to_sync``, so the test's ORM calls happen on
the thread that opened the test's transaction: everything it writes is rolled back.
"""

from datetime import UTC, datetime
from decimal import Decimal

import httpx
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.core.exceptions import SynchronousOnlyOperation
from django.db import transaction
from django.test import AsyncRequestFactory, TestCase, override_settings

from tutorial_project.catalog.models import Category, Product
from tutorial_project.rates.client import use_transport
from tutorial_project.rates.views import product_price


def upstream_answering(status, payload):
    return httpx.MockTransport(lambda request: httpx.Response(status, json=payload))


def upstream_raising(error):
    def handler(request):
        raise error

    return httpx.MockTransport(handler)


@override_settings(ROOT_URLCONF="tutorial_project.instruments.testing_targets")
class PriceViewTests(TestCase):
    @classmethod
    def setUpTestData(cls):  # sync, once per class, rolled back after the class
        books = Category.objects.create(name="Books", slug="books")
        cls.book = Product.objects.create(sku="BK-001", name="A book", category=books,
                                          price=Decimal("40.00"), created_at=datetime.now(UTC))

    async def test_converts_with_the_upstream_rate(self):
        with use_transport(upstream_answering(200, {"rate": "2"})):
            response = await self.async_client.get("/price/BK-001/", {"currency": "USD"})
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json()["price"], "80.00")

    async def test_upstream_error_is_a_502(self):
        with use_transport(upstream_answering(503, {})):
            response = await self.async_client.get("/price/BK-001/", {"currency": "USD"})
        self.assertEqual(response.status_code, 502)
        self.assertIn("503", response.json()["error"])

    async def test_upstream_timeout_is_a_504(self):
        with use_transport(upstream_raising(httpx.ReadTimeout("too slow"))):
            response = await self.async_client.get("/price/BK-001/", {"currency": "USD"})
        self.assertEqual(response.status_code, 504)

    async def test_the_view_alone_with_async_request_factory(self):
        request = AsyncRequestFactory().get("/any/url/", {"currency": "USD"})
        with use_transport(upstream_answering(200, {"rate": "0.5"})):
            response = await product_price(request, sku="BK-001")  # no URLs, no middleware
        self.assertEqual(response.status_code, 200)
        self.assertJSONEqual(response.content,
                             {"sku": "BK-001", "currency": "USD", "price": "20.00"})


@override_settings(ROOT_URLCONF="tutorial_project.instruments.testing_targets")
class LoginTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.ada = User.objects.create_user("ada", password="correct horse")

    async def test_anonymous_gets_a_401(self):
        response = await self.async_client.get("/whoami/")
        self.assertEqual(response.status_code, 401)

    async def test_aforce_login_skips_the_password(self):
        await self.async_client.aforce_login(self.ada)
        response = await self.async_client.get("/whoami/")
        self.assertEqual(response.json(), {"username": "ada"})

    async def test_alogin_checks_the_password(self):
        self.assertFalse(await self.async_client.alogin(username="ada", password="wrong"))
        self.assertTrue(await self.async_client.alogin(username="ada", password="correct horse"))


class QueryCountTests(TestCase):
    async def test_assert_num_queries_runs_in_sync_code(self):
        with self.assertRaises(SynchronousOnlyOperation):
            with self.assertNumQueries(1):  # entering it touches the connection: sync ORM
                await Category.objects.acount()

        def count_categories():  # the way out: the whole assertion in sync code
            with self.assertNumQueries(1):
                return Category.objects.count()

        await sync_to_async(count_categories)()


class OnCommitTests(TestCase):
    async def test_on_commit_callbacks_run_in_sync_code(self):
        done = []

        def register():  # TestCase never commits: capture the callbacks, and run them
            with self.captureOnCommitCallbacks(execute=True):
                transaction.on_commit(lambda: done.append("ran"))  # sync-only too

        await sync_to_async(register)()
        self.assertEqual(done, ["ran"])
