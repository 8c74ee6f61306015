"""Fixtures shared by the pytest-style tests in this folder (pytest finds this file itself)."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tutorial_project.catalog.models import Category, Product
from tutorial_project.rates.views import product_price


@pytest.fixture
def book(db):
    """One product in the test database. A sync fixture: it runs on pytest's main thread."""
    books = Category.objects.create(name="Books", slug="books")
    return Product.objects.create(sku="BK-001", name="A book", category=books,
                                  price=Decimal("40.00"), created_at=datetime.now(UTC))


@pytest.fixture
def price_view():
    """The price view itself, for tests that call it with async_rf (exercise 10.1)."""
    return product_price
