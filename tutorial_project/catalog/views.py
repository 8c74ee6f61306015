"""The catalog's JSON API, written as async views over the async ORM."""

from django.http import JsonResponse

from tutorial_project.catalog.models import Product


def product_as_json(product):
    return {
        "sku": product.sku,
        "name": product.name,
        "category": product.category.slug,
        "price": str(product.price),
        "stock": product.stock,
    }


async def product_list(request):
    products = Product.objects.select_related("category").order_by("sku")
    category = request.GET.get("category")
    if category:
        products = products.filter(category__slug=category)
    return JsonResponse({"products": [product_as_json(p) async for p in products]})


async def product_detail(request, sku):
    try:
        product = await Product.objects.select_related("category").aget(sku=sku)
    except Product.DoesNotExist:
        return JsonResponse({"error": f"no product with sku {sku!r}"}, status=404)
    return JsonResponse(product_as_json(product))
