"""Lesson 11's tasks: module-level functions, because a worker imports a task by its path.

``build_stock_report`` is the report job (an ``async def`` task); ``send_receipt`` takes
0.3 s, as a call to a mail server might; ``export_to_partner`` fails
the way a call to a partner's server can; ``report_with_context`` asks for its TaskContext;
``stock_value`` returns a Decimal, which is not JSON; ``count_in_stock`` is a sync task.
``@task`` comes from ``tasks_api``: ``django.tasks`` on Django 6.0+, the ``django-tasks``
backport on Django 5.2, the same API on both.
"""

import asyncio
from decimal import Decimal

from django.db.models import F, Sum

from tutorial_project.catalog.models import Product
from tutorial_project.instruments.tasks_api import task


@task
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


class PartnerDown(Exception):
    """The partner's server refused the export."""


@task
async def export_to_partner(category_slug):
    """Always fails: stands in for an upstream that is down."""
    raise PartnerDown(f"the partner refused the {category_slug} export")


@task(takes_context=True)
async def report_with_context(context, category_slug):
    """The same report, plus what the backend says about this run."""
    report = await build_stock_report.acall(category_slug)
    return {**report, "result_id_known": bool(context.task_result.id),
            "attempt": context.attempt}


@task
async def send_receipt(order_id):
    """Stands in for a mail server that takes 0.3 s to accept a message."""
    await asyncio.sleep(0.3)
    return {"order": order_id, "sent": True}


@task
async def stock_value(category_slug):
    """Returns the raw Decimal sum: not JSON, so the backend cannot store it."""
    totals = await Product.objects.filter(category__slug=category_slug).aaggregate(
        value=Sum(F("stock") * F("price"))
    )
    return totals["value"]


@task
def count_in_stock(category_slug):
    """A sync task that uses the sync ORM, as most tasks written so far do."""
    return Product.objects.filter(category__slug=category_slug, stock__gt=0).count()
