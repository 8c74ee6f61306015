import json, httpx, pytest
from django.urls import path
from tutorial_project.rates import client
from tutorial_project.rates.views import product_price
urlpatterns = [path("exercise-10/price/<str:sku>/", product_price)]
pytestmark = [pytest.mark.urls(__name__)]

def too_slow(request):
    raise httpx.ReadTimeout("no answer")

@pytest.fixture
def price_view():
    return product_price

@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_reference(async_client, book):
    with client.use_transport(httpx.MockTransport(too_slow)):
        r = await async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})
    assert r.status_code == 504 and "error" in r.json()

@pytest.mark.django_db
@pytest.mark.asyncio
async def test_plain_db(async_client, book):
    with client.use_transport(httpx.MockTransport(too_slow)):
        r = await async_client.get("/exercise-10/price/BK-001/", {"currency": "USD"})
    assert r.status_code == 504 and "error" in r.json()

@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_r1(async_rf, price_view, book, monkeypatch):
    monkeypatch.setattr(client, "_transport", httpx.MockTransport(too_slow))
    response = await price_view(async_rf.get("/x/", {"currency": "GBP"}), sku=book.sku)
    assert response.status_code == 504
    assert json.loads(response.content)["error"]
