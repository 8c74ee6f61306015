"""Lesson 04's checks: the reference solutions pass, the placeholder is "not solved yet",
and plausible wrong answers fail with a message that says why."""

import asyncio
from decimal import Decimal

import pytest


def run(coroutine):
    return asyncio.run(coroutine)


# --- 04.1 category_report ----------------------------------------------------------------


def reports():
    from tutorial_project.catalog.models import Product

    async def reference(slug):
        products = (
            Product.objects.filter(category__slug=slug)
            .order_by("sku")
            .select_related("category")
            .prefetch_related("tags")
        )
        return [(p.sku, p.category.name, [t.name for t in p.tags.all()]) async for p in products]

    async def lazy_category(slug):
        products = Product.objects.filter(category__slug=slug).order_by("sku")
        return [
            (p.sku, p.category.name, [t.name async for t in p.tags.all()]) async for p in products
        ]

    async def one_query_per_product(slug):
        products = Product.objects.filter(category__slug=slug).select_related("category")
        return [
            (p.sku, p.category.name, [t.name async for t in p.tags.all()])
            async for p in products.order_by("sku")
        ]

    async def unordered(slug):
        return list(reversed(await reference(slug)))

    def not_async(slug):
        return []

    return reference, lazy_category, one_query_per_product, unordered, not_async


def test_04_1_reference_passes(project):
    from tutorial_project.course.exercises.lesson04 import check_category_report

    reference, *_ = reports()
    verdict = run(check_category_report(reference))
    assert verdict.passed, str(verdict)


def test_04_1_placeholder_is_not_solved_yet(project):
    from tutorial_project.course.exercises.lesson04 import check_category_report

    verdict = run(check_category_report(...))
    assert not verdict.passed and not verdict.solved
    assert "not solved yet" in str(verdict)


@pytest.mark.parametrize(
    "which, message",
    [
        (1, "SynchronousOnlyOperation"),
        (2, "queries (one or more per product)"),
        (3, "expected"),
        (4, "not an async function"),
    ],
)
def test_04_1_wrong_answers_fail_with_a_reason(project, which, message):
    from tutorial_project.course.exercises.lesson04 import check_category_report

    verdict = run(check_category_report(reports()[which]))
    assert not verdict.passed and verdict.solved
    assert message in str(verdict) and "hint:" in str(verdict), str(verdict)


def test_04_1_with_many_products_the_n_plus_1_answer_still_fails(project):
    """The limit holds whatever the size: 1 + N queries for N products is caught."""
    from asgiref.sync import sync_to_async

    from tutorial_project.catalog.demo import add_generated_products
    from tutorial_project.course.exercises.lesson04 import check_category_report

    run(sync_to_async(add_generated_products)(200))
    reference, _, one_query_per_product, *_ = reports()
    assert run(check_category_report(reference)).passed
    assert not run(check_category_report(one_query_per_product)).passed


# --- 04.2 transfer_credit ----------------------------------------------------------------


def transfers():
    from asgiref.sync import sync_to_async
    from django.db import transaction
    from django.db.models import F

    from tutorial_project.orders.models import Customer

    def move(from_email, to_email, amount):
        with transaction.atomic():
            sender = Customer.objects.select_for_update().get(email=from_email)
            receiver = Customer.objects.select_for_update().get(email=to_email)
            if sender.credit < amount:
                raise ValueError("not enough credit")
            Customer.objects.filter(pk=sender.pk).update(credit=F("credit") - amount)
            Customer.objects.filter(pk=receiver.pk).update(credit=F("credit") + amount)

    async def reference(from_email, to_email, amount):
        await sync_to_async(move)(from_email, to_email, Decimal(amount))

    async def atomic_in_async(from_email, to_email, amount):
        with transaction.atomic():
            sender = await Customer.objects.aget(email=from_email)
            receiver = await Customer.objects.aget(email=to_email)
            sender.credit -= amount
            receiver.credit += amount
            await sender.asave()
            await receiver.asave()

    async def check_then_act(from_email, to_email, amount):
        # Validates first, so single transfers look right; concurrent ones overspend.
        sender = await Customer.objects.aget(email=from_email)
        receiver = await Customer.objects.aget(email=to_email)
        if sender.credit < amount:
            raise ValueError("not enough credit")
        sender.credit -= amount
        await sender.asave()
        receiver.credit += amount
        await receiver.asave()

    async def debit_first(from_email, to_email, amount):
        updated = await Customer.objects.filter(email=from_email, credit__gte=amount).aupdate(
            credit=F("credit") - amount
        )
        if not updated:
            raise ValueError("not enough credit")
        receiver = await Customer.objects.aget(email=to_email)  # too late if missing
        await Customer.objects.filter(pk=receiver.pk).aupdate(credit=F("credit") + amount)

    return reference, atomic_in_async, check_then_act, debit_first


async def credits():
    from tutorial_project.orders.models import Customer

    return {c.email: c.credit async for c in Customer.objects.all()}


def test_04_2_reference_passes_and_the_credits_are_put_back(project):
    from tutorial_project.course.exercises.lesson04 import check_transfer_credit

    before = run(credits())
    verdict = run(check_transfer_credit(transfers()[0]))
    assert verdict.passed, str(verdict)
    assert run(credits()) == before


def test_04_2_placeholder_is_not_solved_yet(project):
    from tutorial_project.course.exercises.lesson04 import check_transfer_credit

    verdict = run(check_transfer_credit(...))
    assert not verdict.passed and not verdict.solved


@pytest.mark.parametrize(
    "which, message",
    [
        (1, "SynchronousOnlyOperation"),
        (2, "went through, Grace ended with"),
        (3, "to a customer who does not exist raised, credits went from"),
    ],
)
def test_04_2_wrong_answers_fail_with_a_reason_and_change_nothing(project, which, message):
    from tutorial_project.course.exercises.lesson04 import check_transfer_credit

    before = run(credits())
    verdict = run(check_transfer_credit(transfers()[which]))
    assert not verdict.passed and verdict.solved
    assert message in str(verdict), str(verdict)
    assert run(credits()) == before


# --- 04.3 tools_page ---------------------------------------------------------------------


def pages():
    from django.http import HttpResponse
    from django.shortcuts import render

    from tutorial_project.catalog.models import Product

    template = "catalog/product_list.html"
    tools = Product.objects.filter(sku__startswith="TL-").order_by("sku")

    async def reference(request):
        products = [p async for p in tools.select_related("category")]
        return render(request, template, {"products": products})

    async def unevaluated(request):
        return render(request, template, {"products": tools})

    async def lazy_category(request):
        return render(request, template, {"products": [p async for p in tools]})

    async def every_product(request):
        products = [p async for p in Product.objects.select_related("category")]
        return render(request, template, {"products": products})

    def sync_view(request):
        return HttpResponse("")

    return reference, unevaluated, lazy_category, every_product, sync_view


def test_04_3_reference_passes(project):
    from tutorial_project.course.exercises.lesson04 import check_tools_page

    verdict = run(check_tools_page(pages()[0]))
    assert verdict.passed, str(verdict)


def test_04_3_placeholder_is_not_solved_yet(project):
    from tutorial_project.course.exercises.lesson04 import check_tools_page

    verdict = run(check_tools_page(...))
    assert not verdict.passed and not verdict.solved


@pytest.mark.parametrize(
    "which, message",
    [
        (1, "it answered 500"),
        (2, "it answered 500"),
        (3, "does not list exactly the TL- products"),
        (4, "not an async function"),
    ],
)
def test_04_3_wrong_answers_fail_with_a_reason(project, which, message):
    from tutorial_project.course.exercises.lesson04 import check_tools_page

    verdict = run(check_tools_page(pages()[which]))
    assert not verdict.passed and verdict.solved
    assert message in str(verdict) and "hint:" in str(verdict), str(verdict)
