"""A slow job: the stock report of one category, written once as an ``async def`` task.

On Django 6.0+ ``build_stock_report`` is a ``django.tasks`` Task: enqueue it with
``await build_stock_report.aenqueue("coffee")``, or run it right here with ``.acall()``.
Django 5.2 has no ``django.tasks``: there the decorator below leaves the function as it is,
and callers simply ``await build_stock_report("coffee")``.
"""

from decimal import Decimal

from django.db.models import F, Sum

from tutorial_project.catalog.models import Product

try:
    from django.tasks import task

    HAS_TASKS = True
except ImportError:  # Django < 6.0
    HAS_TASKS = False

    def task(function):
        return function


@task  # a Task must live at module level: workers import it by its dotted path
async def build_stock_report(category_slug):
    """Units in stock and their value for a category, as JSON-ready values."""
    totals = await Product.objects.filter(category__slug=category_slug).aaggregate(
        units=Sum("stock"), value=Sum(F("stock") * F("price"))
    )
    return {
        "category": category_slug,
        "units": totals["units"] or 0,
        # Task results must be JSON: no Decimal. SQLite gives many digits, so round first.
        "value": str(Decimal(totals["value"] or 0).quantize(Decimal("0.01"))),
    }
