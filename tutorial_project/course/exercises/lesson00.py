"""Checks for lesson 00 · Your notebook is an event loop."""

from tutorial_project.catalog.models import Product
from tutorial_project.course.exercises.core import exercise
from tutorial_project.course.exercises.expect import must_be_async


@exercise("00.1", "Count a category's products with the async ORM")
async def check_count_in_category(check, count_in_category):
    must_be_async(check, count_in_category, "count_in_category", "slug")
    for slug in ["coffee", "books", "no-such-category"]:
        expected = await Product.objects.filter(category__slug=slug).acount()
        got = await count_in_category(slug)
        check.that(
            got == expected,
            f"count_in_category({slug!r}) == {expected}",
            f"count_in_category({slug!r}) returned {got!r}, expected {expected}",
            hint="filter on category__slug and `await` the queryset's acount()",
        )
