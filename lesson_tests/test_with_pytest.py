"""The same kind of tests in pytest's style: plain functions, fixtures, marks.

``@pytest.mark.asyncio`` (pytest-asyncio) runs an ``async def`` test in an event loop;
``@pytest.mark.django_db`` (pytest-django) gives it the test database. An async test that
touches the database needs ``transaction=True``: test_transaction_trap.py shows why.
"""

import httpx
import pytest

from tutorial_project.rates.client import use_transport
from tutorial_project.rates.views import product_price

pytestmark = [pytest.mark.urls("tutorial_project.instruments.testing_targets")]


def rate(value):
    return httpx.MockTransport(lambda request: httpx.Response(200, json={"rate": value}))


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_price_through_the_whole_stack(async_client, book):
    with use_transport(rate("2")):
        response = await async_client.get("/price/BK-001/", {"currency": "USD"})
    assert response.status_code == 200
    assert response.json()["price"] == "80.00"


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_the_view_alone(async_rf, price_view, book):  # price_view: conftest.py's
    with use_transport(rate("0.5")):
        response = await price_view(async_rf.get("/", {"currency": "USD"}), sku="BK-001")
    assert response.status_code == 200


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_logged_in_user(async_client, django_user_model):
    ada = await django_user_model.objects.acreate(username="ada")
    await async_client.aforce_login(ada)
    response = await async_client.get("/whoami/")
    assert response.json() == {"username": "ada"}


@pytest.mark.asyncio
async def test_no_database_needed(async_rf):
    """No django_db mark: pytest-django blocks every query, so a test cannot touch it by chance."""
    request = async_rf.get("/", {"currency": "usd"})  # invalid: rejected before any query
    response = await product_price(request, sku="BK-001")
    assert response.status_code == 400
