"""Checks for lesson 00 · Your notebook is an event loop."""

from django.core.exceptions import SynchronousOnlyOperation

from tutorial_project.course.exercises.core import exercise
from tutorial_project.course.exercises.expect import must_be_async

SYNC_QUERY_HINT = (
    "a sync query ran on the event loop: use the async twins, `await Category.objects.aget(...)`, "
    "`await ....acount()`, `async for`"
)


@exercise("00.1", "Describe a category with the async ORM")
async def check_category_summary(check, category_summary):
    from tutorial_project.catalog.models import Category  # needs the project started

    must_be_async(check, category_summary, "category_summary", "slug")
    async for category in Category.objects.filter(slug__in=["coffee", "books"]):
        expected = {"name": category.name, "products": await category.products.acount()}
        got = await _summary(check, category_summary, category.slug, Category)
        check.that(
            got == expected,
            f"category_summary({category.slug!r}) == {expected}",
            f"category_summary({category.slug!r}) returned {got!r}, expected {expected}",
            hint=_hint_for(got),
        )
    got = await _summary(check, category_summary, "no-such-category", Category)
    check.that(
        got is None,
        "category_summary('no-such-category') is None",
        f"category_summary('no-such-category') returned {got!r}, expected None",
        hint="`aget()` raises Category.DoesNotExist like `get()`: catch it and return None",
    )


async def _summary(check, category_summary, slug, Category):
    try:
        return await category_summary(slug)
    except SynchronousOnlyOperation:
        check.that(False, "", f"category_summary({slug!r}) raised SynchronousOnlyOperation",
                   hint=SYNC_QUERY_HINT)
    except Category.DoesNotExist:
        check.that(False, "", f"category_summary({slug!r}) let Category.DoesNotExist escape",
                   hint="catch Category.DoesNotExist (around the `aget`) and return None")


def _hint_for(got):
    if got is None:
        return (
            "it returned None for a category that exists: if an `except` returns None, make it "
            "catch only Category.DoesNotExist, or it hides the real error (a sync query, a typo)"
        )
    if isinstance(got, dict) and any(type(v).__name__ == "coroutine" for v in got.values()):
        return "a value is a coroutine, not a number: `await` the acount()"
    return "return {'name': category.name, 'products': await category.products.acount()}"
