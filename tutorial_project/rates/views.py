"""``GET <route>/<sku>/?currency=USD``: a product's price converted with the upstream's rate."""

import re
from decimal import Decimal

from django.http import JsonResponse

from tutorial_project.catalog.models import Product
from tutorial_project.rates import client

CURRENCY_CODE = re.compile(r"[A-Z]{3}")


async def product_price(request, sku):
    currency = request.GET.get("currency", "EUR")
    if not CURRENCY_CODE.fullmatch(currency):
        return JsonResponse({"error": "currency must be 3 capital letters, e.g. USD"}, status=400)
    try:
        product = await Product.objects.aget(sku=sku)
    except Product.DoesNotExist:
        return JsonResponse({"error": f"no product with sku {sku!r}"}, status=404)
    try:
        rate = await client.fetch_rate(currency)
    except client.UnknownCurrency:
        return JsonResponse({"error": f"no exchange rate for {currency}"}, status=400)
    except client.UpstreamTimeout as error:
        return JsonResponse({"error": f"rates upstream timed out: {error}"}, status=504)
    except client.UpstreamError as error:
        return JsonResponse({"error": f"rates upstream failed: {error}"}, status=502)
    price = (product.price * rate).quantize(Decimal("0.01"))
    return JsonResponse({"sku": sku, "currency": currency, "price": str(price)})
