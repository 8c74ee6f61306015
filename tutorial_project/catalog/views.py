"""The catalog's JSON API, written as async views over the async ORM.

GET  /api/catalog/products/[?category=slug]  the products, optionally of one category
POST /api/catalog/products/                  create one from a JSON object
GET  /api/catalog/products/<sku>/            one product (404 if there is none)

Every error is a JSON object ``{"error": ..., "errors": {...}}`` with a 4xx status:
bad input never becomes a 500.
"""

from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from tutorial_project.catalog.models import Product
from tutorial_project.catalog.payloads import BadPayload, parse_new_product
from tutorial_project.catalog.services import DuplicateSku, UnknownReference, acreate_product


def product_as_json(product):
    """Needs ``category`` loaded (select_related): no lazy loading in async code."""
    return {
        "sku": product.sku,
        "name": product.name,
        "category": product.category.slug,
        "price": str(product.price),
        "stock": product.stock,
    }


def json_error(status, message, errors=None):
    body = {"error": message}
    if errors:
        body["errors"] = errors
    return JsonResponse(body, status=status)


def products_with_category():
    return Product.objects.select_related("category").order_by("sku")


# A JSON API without cookie-based login: CSRF protection has no session to protect here,
# and a CSRF failure would answer with an HTML page instead of a JSON error.
@csrf_exempt
async def products(request):
    if request.method == "GET":
        return await product_list(request)
    if request.method == "POST":
        return await product_create(request)
    return json_error(405, f"method {request.method} not allowed; use GET or POST")


async def product_list(request):
    queryset = products_with_category()
    category = request.GET.get("category")
    if category:
        queryset = queryset.filter(category__slug=category)
    return JsonResponse({"products": [product_as_json(p) async for p in queryset]})


async def product_detail(request, sku):
    if request.method != "GET":
        return json_error(405, f"method {request.method} not allowed; use GET")
    try:
        product = await products_with_category().aget(sku=sku)
    except Product.DoesNotExist:
        return json_error(404, f"no product with sku {sku!r}")
    return JsonResponse(product_as_json(product))


async def product_create(request):
    if request.content_type != "application/json":
        return json_error(415, "send the product as JSON (Content-Type: application/json)")
    try:
        fields = parse_new_product(request.body)
    except RequestDataTooBig:
        return json_error(413, "request body too large")
    except BadPayload as bad:
        return json_error(400, "invalid product", bad.errors)
    try:
        product = await acreate_product(fields)
    except UnknownReference as unknown:
        return json_error(400, "unknown category or tags", unknown.errors)
    except DuplicateSku:
        return json_error(409, f"a product with sku {fields['sku']!r} already exists")
    product = await products_with_category().aget(pk=product.pk)
    return JsonResponse(product_as_json(product), status=201)
