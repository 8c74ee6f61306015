"""Fixtures shared by the pytest-style tests in this folder (pytest finds this file itself)."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tutorial_project.catalog.models import Category, Product


@pytest.fixture
def book(db):
    """One product in the test database. A sync fixture: it runs on pytest's main thread."""
    books = Category.objects.create(name="Books", slug="books")
    return Product.objects.create(sku="BK-001", name="A book", category=books,
                                  price=Decimal("40.00"), created_at=datetime.now(UTC))
