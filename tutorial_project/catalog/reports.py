"""Sync reporting code, the kind every older Django project has: plain ORM calls, no async.

Lesson 03 calls it from async code through ``sync_to_async``.
"""

from tutorial_project.catalog.models import Product


def stock_report():
    """``{"in_stock": n, "sold_out": m, "sold_out_skus": [...]}`` for the whole catalog."""
    sold_out = list(Product.objects.filter(stock=0).values_list("sku", flat=True))
    return {
        "in_stock": Product.objects.filter(stock__gt=0).count(),
        "sold_out": len(sold_out),
        "sold_out_skus": sold_out,
    }
