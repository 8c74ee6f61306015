"""The catalog JSON API and placing orders: bad input gives a 4xx JSON error, never a 500,
and a failed write leaves nothing half-written."""

import asyncio
import json
from decimal import Decimal

import pytest

PRODUCTS = "/api/catalog/products/"
GOOD = {
    "sku": "CF-010",
    "name": "Cold Brew 1 l",
    "category": "coffee",
    "price": "7.50",
    "stock": 20,
    "tags": ["new", "eco"],
}


def run(coroutine):
    return asyncio.run(coroutine)


async def post(body, content_type="application/json", **client_options):
    from django.test import AsyncClient

    client = AsyncClient(raise_request_exception=False, **client_options)
    if not isinstance(body, (str, bytes)):
        body = json.dumps(body)
    return await client.post(PRODUCTS, body, content_type=content_type)


async def product_count():
    from tutorial_project.catalog.models import Product

    return await Product.objects.acount()


def assert_json_error(response, status):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert isinstance(body["error"], str) and body["error"]
    return body


# --- reading ---------------------------------------------------------------------------


def test_list_and_filter_by_category(project):
    from django.test import AsyncClient

    async def scenario():
        client = AsyncClient()
        return await client.get(PRODUCTS), await client.get(PRODUCTS, {"category": "coffee"})

    everything, coffee = run(scenario())
    assert everything.status_code == 200 and len(everything.json()["products"]) == 12
    assert [p["sku"] for p in coffee.json()["products"]] == ["CF-001", "CF-002", "CF-003"]


def test_detail_and_unknown_sku(project):
    from django.test import AsyncClient

    async def scenario():
        client = AsyncClient()
        return await client.get(f"{PRODUCTS}BK-002/"), await client.get(f"{PRODUCTS}NOPE-1/")

    found, missing = run(scenario())
    assert found.json() == {
        "sku": "BK-002",
        "name": "The Event Loop Field Guide",
        "category": "books",
        "price": "24.50",
        "stock": 7,
    }
    assert "NOPE-1" in assert_json_error(missing, 404)["error"]


def test_wrong_methods_get_a_json_405(project):
    from django.test import AsyncClient

    async def scenario():
        client = AsyncClient()
        return await client.delete(PRODUCTS), await client.post(f"{PRODUCTS}BK-001/")

    for response in run(scenario()):
        assert_json_error(response, 405)


# --- creating --------------------------------------------------------------------------


def test_create_a_valid_product_with_its_tags(project):
    from tutorial_project.catalog.models import Product

    async def scenario():
        response = await post(GOOD)
        product = await Product.objects.select_related("category").aget(sku="CF-010")
        return response, product, sorted([t.name async for t in product.tags.all()])

    response, product, tags = run(scenario())
    assert response.status_code == 201
    assert response.json()["sku"] == "CF-010" and response.json()["price"] == "7.50"
    assert (product.category.slug, product.price, product.stock) == ("coffee", Decimal("7.50"), 20)
    assert tags == ["eco", "new"]


def test_the_api_needs_no_csrf_token_and_still_answers_json(project):
    # A real client has no CSRF cookie; the API is csrf_exempt so it gets JSON, not an HTML 403.
    response = run(post(GOOD, enforce_csrf_checks=True))
    assert response.status_code == 201


@pytest.mark.parametrize(
    "body, field",
    [
        ('{"sku": "CF-011", "name": ', "body"),  # truncated
        ("{'sku': 'CF-011'}", "body"),  # Python, not JSON
        ("  ", "body"),
        (b'{"sku": "\xff"}', "body"),  # not UTF-8
        ("[1, 2]", "body"),
        ('"a string"', "body"),
        ("null", "body"),
    ],
)
def test_malformed_json_is_a_400(project, body, field):
    response = run(post(body))
    assert field in assert_json_error(response, 400)["errors"]
    assert run(product_count()) == 12


def test_missing_fields_are_listed(project):
    body = assert_json_error(run(post({"sku": "CF-011"})), 400)
    assert set(body["errors"]) == {"name", "category", "price", "stock"}


@pytest.mark.parametrize(
    "change, field",
    [
        ({"price": []}, "price"),
        ({"price": None}, "price"),
        ({"price": "cheap"}, "price"),
        ({"price": "1.234"}, "price"),
        ({"price": "-1"}, "price"),
        ({"price": "1e9"}, "price"),
        ({"price": "NaN"}, "price"),
        ({"stock": "many"}, "stock"),
        ({"stock": 1.5}, "stock"),
        ({"stock": True}, "stock"),
        ({"stock": -1}, "stock"),
        ({"sku": 42}, "sku"),
        ({"sku": "   "}, "sku"),
        ({"sku": "X" * 21}, "sku"),
        ({"name": ["a"]}, "name"),
        ({"category": {"slug": "coffee"}}, "category"),
        ({"tags": "new"}, "tags"),
        ({"tags": [1, 2]}, "tags"),
        ({"description": 3}, "description"),
        ({"colour": "red"}, "unknown fields"),
    ],
)
def test_wrong_types_and_values_are_a_400_naming_the_field(project, change, field):
    response = run(post({**GOOD, **change}))
    assert field in assert_json_error(response, 400)["errors"]
    assert run(product_count()) == 12


@pytest.mark.parametrize(
    "change, field",
    [({"category": "tea"}, "category"), ({"tags": ["new", "vintage"]}, "tags")],
)
def test_unknown_category_or_tags_are_a_400_and_create_nothing(project, change, field):
    response = run(post({**GOOD, **change}))
    assert field in assert_json_error(response, 400)["errors"]
    assert run(product_count()) == 12


def test_a_duplicate_sku_is_a_409(project):
    first = run(post(GOOD))
    second = run(post({**GOOD, "name": "Another"}))
    assert first.status_code == 201
    assert_json_error(second, 409)
    assert run(product_count()) == 13


def test_a_body_that_is_not_json_content_is_a_415(project):
    form = run(post("sku=CF-011", content_type="application/x-www-form-urlencoded"))
    assert_json_error(form, 415)
    # The test client sends no Content-Type with an empty body: still a JSON 4xx.
    assert_json_error(run(post("")), 415)


def test_a_body_over_the_upload_limit_is_a_413(project):
    from django.test import override_settings

    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=50):
        assert_json_error(run(post({**GOOD, "description": "x" * 100})), 413)
    assert run(product_count()) == 12


def test_a_failure_after_the_product_row_leaves_no_product(project, monkeypatch):
    """The tag links fail after the product row was inserted: the row is rolled back."""
    from django.db import IntegrityError

    from tutorial_project.catalog import services
    from tutorial_project.catalog.models import Tag
    from tutorial_project.catalog.payloads import parse_new_product

    ghost = Tag(pk=999, name="new")  # no such row: inserting the link violates the FK
    ghost._state.db = "default"
    monkeypatch.setattr(Tag.objects, "filter", lambda **lookups: [ghost])
    fields = parse_new_product(json.dumps({**GOOD, "tags": ["new"]}))
    with pytest.raises(IntegrityError):
        run(services.acreate_product(fields))
    monkeypatch.undo()
    assert run(product_count()) == 12


# --- placing orders: all or nothing ----------------------------------------------------


async def order_state():
    from tutorial_project.catalog.models import Product
    from tutorial_project.orders.models import Customer, Order, OrderLine

    return {
        "stock": {p.sku: p.stock async for p in Product.objects.all()},
        "credit": {c.email: c.credit async for c in Customer.objects.all()},
        "orders": await Order.objects.acount(),
        "lines": await OrderLine.objects.acount(),
    }


def test_an_order_takes_stock_and_credit_and_writes_its_lines(project):
    from tutorial_project.orders.services import aplace_order

    before = run(order_state())
    order = run(aplace_order("ada@example.com", {"BK-001": 1, "CF-001": 2}))
    after = run(order_state())
    assert order.pk is not None
    assert after["stock"]["BK-001"] == before["stock"]["BK-001"] - 1
    assert after["stock"]["CF-001"] == before["stock"]["CF-001"] - 2
    assert after["credit"]["ada@example.com"] == Decimal("19.00")
    assert (after["orders"], after["lines"]) == (1, 2)


@pytest.mark.parametrize(
    "email, cart, error",
    [
        # Fails at the credit check, after the stock of both products was taken.
        ("linus@example.com", {"BK-001": 1, "CF-001": 2}, "InsufficientCredit"),
        # Fails on the second product, after the first one's stock was taken.
        ("ada@example.com", {"CF-001": 1, "GM-003": 3}, "OutOfStock"),
        ("ada@example.com", {"CF-001": 1, "NOPE-1": 1}, "DoesNotExist"),
        ("ada@example.com", {"CF-001": 0}, "OutOfStock"),
        ("nobody@example.com", {"CF-001": 1}, "DoesNotExist"),
    ],
)
def test_a_failed_order_leaves_nothing_half_written(project, email, cart, error):
    from tutorial_project.orders.services import aplace_order

    before = run(order_state())
    with pytest.raises(Exception) as raised:
        run(aplace_order(email, cart))
    assert type(raised.value).__name__ == error
    assert run(order_state()) == before


def test_concurrent_orders_cannot_overspend(project):
    """Grace (50.00) orders a 39.00 book three times at once: exactly one goes through."""
    from tutorial_project.orders.services import InsufficientCredit, aplace_order

    async def scenario():
        attempts = [aplace_order("grace@example.com", {"BK-001": 1}) for _ in range(3)]
        return await asyncio.gather(*attempts, return_exceptions=True)

    outcomes = run(scenario())
    assert sum(isinstance(o, InsufficientCredit) for o in outcomes) == 2
    state = run(order_state())
    assert state["credit"]["grace@example.com"] == Decimal("11.00")
    assert (state["orders"], state["stock"]["BK-001"]) == (1, 11)
