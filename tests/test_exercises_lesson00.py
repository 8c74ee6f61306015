"""Lesson 00 checks: the reference solution and a differently written right answer pass; the
placeholder is "not solved yet"; the wrong answers learners write fail with a useful hint."""

import asyncio
import warnings

import pytest
from asgiref.sync import sync_to_async
from django.db.models import Count

pytestmark = pytest.mark.usefixtures("project")  # tests/conftest.py: start() in this process


def verdict_of(answer):
    from tutorial_project.course.exercises.lesson00 import check_category_summary

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        verdict = asyncio.run(check_category_summary(answer))
    # A forgotten await is the verdict's business, not a RuntimeWarning pointing into the check.
    assert not [w for w in caught if "never awaited" in str(w.message)]
    return verdict


def models():
    from tutorial_project.catalog.models import Category, Product

    return Category, Product


# Reference solution, as in the notebook's cell tagged "solution".
async def category_summary(slug):
    Category, _ = models()
    try:
        category = await Category.objects.aget(slug=slug)
    except Category.DoesNotExist:
        return None
    return {"name": category.name, "products": await category.products.acount()}


async def with_annotate(slug):
    Category, _ = models()
    found = await Category.objects.filter(slug=slug).annotate(n=Count("products")).afirst()
    return found and {"name": found.name, "products": found.n}


async def through_a_thread(slug):
    Category, Product = models()

    def summary():
        category = Category.objects.filter(slug=slug).first()
        if category is None:
            return None
        count = Product.objects.filter(category=category).count()
        return {"name": category.name, "products": count}

    return await sync_to_async(summary)()


@pytest.mark.parametrize("answer", [category_summary, with_annotate, through_a_thread])
def test_right_answers_pass(answer):
    verdict = verdict_of(answer)
    assert verdict.passed, str(verdict)
    assert "✅ passed" in str(verdict)


def test_placeholder_is_not_solved_yet():
    verdict = verdict_of(...)
    assert not verdict.passed and not verdict.solved
    assert "not solved yet" in str(verdict)


async def sync_orm(slug):
    Category, _ = models()
    category = Category.objects.get(slug=slug)
    return {"name": category.name, "products": category.products.count()}


async def forgotten_await(slug):
    Category, _ = models()
    try:
        category = await Category.objects.aget(slug=slug)
    except Category.DoesNotExist:
        return None
    return {"name": category.name, "products": category.products.acount()}


async def swallows_errors(slug):
    Category, _ = models()
    try:
        category = Category.objects.get(slug=slug)
        return {"name": category.name, "products": category.products.count()}
    except Exception:
        return None


async def lets_does_not_exist_escape(slug):
    Category, _ = models()
    category = await Category.objects.aget(slug=slug)
    return {"name": category.name, "products": await category.products.acount()}


async def empty_dict_when_missing(slug):
    summary = await category_summary(slug)
    return summary or {}


def sync_function(slug):
    return None


@pytest.mark.parametrize(
    ("answer", "messages"),
    [
        (sync_orm, ["raised SynchronousOnlyOperation", "aget"]),
        (forgotten_await, ["acount(...) was called but never awaited", "`await acount(...)`"]),
        (swallows_errors, ["returned None for a category that exists", "DoesNotExist"]),
        (lets_does_not_exist_escape, ["let Category.DoesNotExist escape", "return None"]),
        (empty_dict_when_missing, ["returned {}, expected None", "DoesNotExist"]),
        (sync_function, ["not an async function", "async def category_summary(slug)"]),
    ],
    ids=["sync ORM", "forgotten await", "swallowed exception", "DoesNotExist escapes",
         "{} for a missing slug", "sync function"],
)
def test_wrong_answers_fail_with_a_hint(answer, messages):
    verdict = verdict_of(answer)
    assert not verdict.passed and verdict.solved
    for message in messages:
        assert message in str(verdict), str(verdict)
