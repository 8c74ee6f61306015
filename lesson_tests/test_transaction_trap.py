"""pytest-django issue 580: async ORM work in a pytest-asyncio test escapes the test transaction.

The ``db`` fixture (``@pytest.mark.django_db``) opens a transaction on pytest's main thread.
The test's ``await Model.objects.acreate(...)`` runs in asgiref's sync thread, which has its own
database connection: outside that transaction. The first test shows what happens; the other two
are the ways out that work with the pinned releases.
"""

import pytest
from django.test import TestCase

from tutorial_project.catalog.models import Category


@pytest.mark.django_db
@pytest.mark.asyncio
async def test_trap_async_orm_in_a_db_test(book):
    assert await Category.objects.filter(slug="books").aexists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_way_out_1_transaction_true(book):
    assert await Category.objects.filter(slug="books").aexists()


class WayOut2(TestCase):
    @classmethod
    def setUpTestData(cls):
        Category.objects.create(name="Books", slug="books")

    async def test_django_testcase(self):
        self.assertTrue(await Category.objects.filter(slug="books").aexists())


@pytest.mark.django_db
def test_nothing_leaked_into_later_tests():
    assert not Category.objects.exists()
