"""Checks for lesson 11 · Django 6: AsyncPaginator and the Tasks framework."""


from tutorial_project.catalog.models import Product
from tutorial_project.course.exercises.core import NotSolved, exercise
from tutorial_project.course.exercises.expect import must_be_async

PER_PAGE = 5


async def _expected_page(number):
    skus = [sku async for sku in Product.objects.order_by("sku").values_list("sku", flat=True)]
    pages = max(1, -(-len(skus) // PER_PAGE))
    try:
        number = int(number)
    except (TypeError, ValueError):
        number = 1
    number = min(max(number, 1), pages)
    return skus[(number - 1) * PER_PAGE : number * PER_PAGE]


@exercise("11.1", "One page of the catalog, get_page style")
async def check_page_skus(check, page_skus):
    must_be_async(check, page_skus, "page_skus", "number")
    for number, meaning in [(1, "page 1"), (3, "the last page"), ("x", "not a number: page 1"),
                            (99, "out of range: the last page")]:
        expected = await _expected_page(number)
        got = await page_skus(number)
        check.that(
            list(got) == expected,
            f"page_skus({number!r}) ({meaning}) == {expected}",
            f"page_skus({number!r}) returned {got!r}, expected {expected} ({meaning})",
            hint="order by sku, 5 per page, and use get_page semantics "
            "(AsyncPaginator.aget_page on Django 6, Paginator.get_page on 5.2)",
        )


EXPECTED_CHOICES = {
    "show the product's price in the page": (
        "await",
        "the response needs the price: the view must wait for it",
    ),
    "send the order confirmation email": (
        "task",
        "the customer should not wait for a mail server, and a failed send can be retried",
    ),
    "rebuild the sales report, which takes two minutes": (
        "task",
        "no request should take minutes: enqueue it and let a worker run it",
    ),
    "check the customer's credit before accepting the order": (
        "await",
        "the answer decides the response (accepted or refused)",
    ),
}


@exercise("11.2", "A task, or await it in the view?")
async def check_task_or_await(check, choices):
    check.that(
        isinstance(choices, dict),
        "choices is a dict",
        f"choices is a {type(choices).__name__}",
        hint='map each job to "task" or "await"',
    )
    if all(value is Ellipsis for value in choices.values()):
        raise NotSolved
    for job, (answer, why) in EXPECTED_CHOICES.items():
        given = choices.get(job)
        check.that(
            given == answer,
            f"{job}: {answer} ({why})",
            f"{job}: you chose {given!r}",
            hint=f'it is "{answer}": {why}' if given in ("task", "await") else
            'answer "task" or "await" for this job',
        )
