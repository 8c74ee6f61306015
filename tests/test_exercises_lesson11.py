"""Lesson 11's exercise checks: the reference answers pass, placeholders and wrong answers don't."""

import asyncio

REFERENCE_CHOICES = {
    "show the product's price in the page": "await",
    "send the order confirmation email": "task",
    "rebuild the sales report, which takes two minutes": "task",
    "check the customer's credit before accepting the order": "await",
}


def run(check, answer):
    return asyncio.run(check(answer))


def test_page_skus(project):
    from asgiref.sync import sync_to_async
    from django.core import paginator as django_paginator

    from tutorial_project.catalog.models import Product
    from tutorial_project.course.exercises.lesson11 import check_page_skus

    async def reference(number):  # works on Django 5.2 and 6.x
        paginator = django_paginator.Paginator(Product.objects.order_by("sku"), 5)
        return await sync_to_async(lambda: [p.sku for p in paginator.get_page(number)])()

    async def strict_page(number):  # page() instead of get_page(): raises out of range
        paginator = django_paginator.Paginator(Product.objects.order_by("sku"), 5)
        return await sync_to_async(lambda: [p.sku for p in paginator.page(number)])()

    async def unordered(number):
        newest_first = Product.objects.order_by("-sku").values_list("sku", flat=True)
        return [sku async for sku in newest_first][:5]

    assert run(check_page_skus, reference)
    assert not run(check_page_skus, ...).solved
    verdict = run(check_page_skus, strict_page)
    assert not verdict and "raised" in str(verdict)
    verdict = run(check_page_skus, unordered)
    assert not verdict and "order by sku" in str(verdict)


def test_task_or_await(project):
    from tutorial_project.course.exercises.lesson11 import check_task_or_await

    assert run(check_task_or_await, REFERENCE_CHOICES)
    assert not run(check_task_or_await, ...).solved
    assert not run(check_task_or_await, dict.fromkeys(REFERENCE_CHOICES, ...)).solved
    everything_a_task = dict.fromkeys(REFERENCE_CHOICES, "task")
    verdict = run(check_task_or_await, everything_a_task)
    assert not verdict and 'it is "await"' in str(verdict)
    typo = {**REFERENCE_CHOICES, "send the order confirmation email": "background"}
    verdict = run(check_task_or_await, typo)
    assert not verdict and 'answer "task" or "await"' in str(verdict)
