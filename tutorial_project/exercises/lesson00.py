"""Checks for lesson 00 · Your notebook is an event loop."""

from asgiref.sync import iscoroutinefunction

from tutorial_project.catalog.models import Product
from tutorial_project.exercises.core import exercise


@exercise("00.1", "Count a category's products with the async ORM")
async def check_count_in_category(check, count_in_category):
    check.that(
        iscoroutinefunction(count_in_category),
        "count_in_category is an async function",
        "count_in_category is not an async function",
        hint="define it with `async def count_in_category(slug):`; the sync ORM cannot run here",
    )
    for slug in ["coffee", "books", "no-such-category"]:
        expected = await Product.objects.filter(category__slug=slug).acount()
        got = await count_in_category(slug)
        check.that(
            got == expected,
            f"count_in_category({slug!r}) == {expected}",
            f"count_in_category({slug!r}) returned {got!r}, expected {expected}",
            hint="filter on category__slug and `await` the queryset's acount()",
        )
