"""pytest-django issue 580: async ORM work in a pytest-asyncio test escapes the test transaction.

The ``db`` fixture (``@pytest.mark.django_db``) opens a transaction on pytest's main thread.
The test's ``await Model.objects.acreate(...)`` runs in asgiref's sync thread, which has its own
database connection: outside that transaction. The first test shows what happens; the next three
are the ways out that work with the pinned releases (pytest-django 4.14.0, pytest-asyncio 1.5.0).
"""

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.test import TestCase, TransactionTestCase

from tutorial_project.catalog.models import Category


@pytest.mark.django_db
@pytest.mark.asyncio
async def test_trap_async_orm_in_a_db_test(book):
    assert await Category.objects.filter(slug="books").aexists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_way_out_1_transaction_true(book):
    assert await Category.objects.filter(slug="books").aexists()


@pytest.mark.django_db  # the plain mark: rolled back, no tables emptied
def test_way_out_3_a_sync_test_runs_its_async_body(book):
    async def body():  # what TestCase does with an async def test
        assert await Category.objects.filter(slug="books").aexists()

    async_to_sync(body)()  # the query comes back to this thread, inside the transaction


class WayOut2(TestCase):
    @classmethod
    def setUpTestData(cls):
        Category.objects.create(name="Books", slug="books")

    async def test_django_testcase(self):
        self.assertTrue(await Category.objects.filter(slug="books").aexists())


class CodeThatQueriesOnAnotherThread(TransactionTestCase):
    """When the code under test itself queries from other threads, TestCase's one transaction
    cannot hold it: TransactionTestCase commits for real and empties the tables afterwards."""

    async def test_another_thread_sees_the_row(self):
        await Category.objects.acreate(name="Books", slug="books")
        count = sync_to_async(Category.objects.count, thread_sensitive=False)  # a pool thread
        self.assertEqual(await count(), 1)
