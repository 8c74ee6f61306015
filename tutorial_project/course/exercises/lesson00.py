"""Checks for lesson 00 · Your notebook is an event loop."""

import os
from contextlib import contextmanager
from datetime import UTC, datetime

from django.core.exceptions import SynchronousOnlyOperation

from tutorial_project.course.exercises.attempt import Raised, attempt
from tutorial_project.course.exercises.core import exercise
from tutorial_project.course.exercises.expect import must_be_async, sleeps_on_this_thread
from tutorial_project.instruments.heartbeat import Heartbeat

SYNC_QUERY_HINT = (
    "a sync query ran on the event loop: use the async twins, `await Category.objects.aget(...)`, "
    "`await ....acount()`, `async for`"
)
UNSAFE = "DJANGO_ALLOW_ASYNC_UNSAFE"
# An answer that only awaits the async ORM leaves the loop free (its queries run on a worker
# thread); a quarter of a second without a heartbeat means something blocked it, even on a
# loaded 2-core machine.
STALL = 0.25
# A category the demo data lacks: its name is not slug.title() and it has 1 product (every demo
# category has 3), out of stock. The check creates it for its run and removes it afterwards.
EXTRA_SLUG, EXTRA_NAME, EXTRA_SKU = "gift-cards", "Gift cards & vouchers", "GC-001"


@exercise("00.1", "Describe a category with the async ORM")
async def check_category_summary(check, category_summary):
    from tutorial_project.catalog.models import Category, Product  # needs the project started

    must_be_async(check, category_summary, "category_summary", "slug")
    _guard_stays_on(check, before=True)
    stalls = []
    await _remove_extra_category(Category, Product)  # left over if an earlier run was stopped
    extra = await Category.objects.acreate(name=EXTRA_NAME, slug=EXTRA_SLUG)
    answers = []  # (slug, expected, got), judged once the extra category is gone again
    try:
        await Product.objects.acreate(
            sku=EXTRA_SKU, name="Gift card 25", category=extra, price="25.00", stock=0,
            created_at=datetime(2026, 1, 1, tzinfo=UTC),
        )
        slugs = ["books", "coffee", EXTRA_SLUG]
        async for category in Category.objects.filter(slug__in=slugs).order_by("pk"):
            expected = {"name": category.name, "products": await category.products.acount()}
            got = await _summary(check, category_summary, category.slug, Category, stalls)
            answers.append((category.slug, expected, got))
    finally:
        await _remove_extra_category(Category, Product)
    for slug, expected, got in answers:
        check.that(
            got == expected,
            f"category_summary({slug!r}) == {expected}",
            f"category_summary({slug!r}) returned {got!r}, expected {expected}",
            hint=_hint_for(got, slug),
        )
    missing = await _summary(check, category_summary, "no-such-category", Category, stalls)
    check.that(
        missing is None,
        "category_summary('no-such-category') is None",
        f"category_summary('no-such-category') returned {missing!r}, expected None",
        hint="`aget()` raises Category.DoesNotExist like `get()`: catch it and return None",
    )
    check.that(
        max(stalls) < STALL and not os.environ.get(UNSAFE),
        f"Django's guard stayed on, and the event loop never stood still for {STALL} s",
        "the event loop stood still or the guard was off", hint=BLOCKING_HINT,
    )


async def _remove_extra_category(Category, Product):
    await Product.objects.filter(sku=EXTRA_SKU).adelete()
    await Category.objects.filter(slug=EXTRA_SLUG).adelete()


async def _summary(check, category_summary, slug, Category, stalls):
    """Await the answer once, with the loop watched and Django's guard checked after it."""
    what = f"category_summary({slug!r})"
    try:
        with _blocking_on_the_loop() as blocked:
            async with Heartbeat(every=0.005) as heartbeat:
                # attempt() spots a forgotten await and drops the answer's frames, so its
                # coroutine is reported now, not blamed on the next run of this check.
                outcome = await attempt(check, lambda: category_summary(slug), what)
    finally:
        _guard_stays_on(check, before=False)
    stalls.append(heartbeat.longest_gap)
    if blocked:
        check.that(False, "", f"{what} {blocked[0]} on the event loop's thread",
                   hint=SYNC_QUERY_HINT if "query" in blocked[0] else BLOCKING_HINT)
    if heartbeat.longest_gap >= STALL:
        check.that(
            False, "",
            f"{what} held the event loop for {heartbeat.longest_gap:.1f} s: nothing else "
            "could run meanwhile",
            hint=BLOCKING_HINT,
        )
    if isinstance(outcome, Raised):
        if isinstance(outcome.error, SynchronousOnlyOperation):
            check.that(False, "", f"{what} raised SynchronousOnlyOperation", hint=SYNC_QUERY_HINT)
        if isinstance(outcome.error, Category.DoesNotExist):
            check.that(False, "", f"{what} let Category.DoesNotExist escape",
                       hint="catch Category.DoesNotExist (around the `aget`) and return None")
        check.that(False, "", f"{what} raised {outcome}")
    return outcome


@contextmanager
def _blocking_on_the_loop():
    """Note a time.sleep, or an SQL query, run on this (the event loop's) thread.

    The async ORM runs its queries on a worker thread, with that thread's connection; a query
    through this thread's connection means the sync ORM ran on the loop (the guard switched
    off, even for a moment).
    """
    from django.db import connection

    found = []

    def noted_query(execute, sql, params, many, context):
        found.append("ran an SQL query")
        return execute(sql, params, many, context)

    with sleeps_on_this_thread() as sleeps, connection.execute_wrapper(noted_query):
        yield found
    found[:0] = [f"called time.sleep({seconds})" for seconds in sleeps]


BLOCKING_HINT = (
    "something in your function blocked the loop (time.sleep, a sync HTTP call, a sync query "
    "with the guard off): `await` async calls (`await asyncio.sleep(...)`, the ORM's a-methods)"
)


def _guard_stays_on(check, *, before):
    """Fail if DJANGO_ALLOW_ASYNC_UNSAFE is set, and unset it: Django's `async_unsafe` tests
    `os.environ.get(...)`, so any non-empty value ("false", "0" too) switches the guard off for
    the rest of this kernel's life, and every sync query on the loop would quietly "work"."""
    value = os.environ.pop(UNSAFE, None)
    if value is None:
        return
    where = "was set before the check ran" if before else "was set by your function"
    check.that(
        False, "",
        f"{UNSAFE}={value!r} {where}: Django's guard was off (the check has unset it)",
        hint="never set it (see 'Why this course never sets DJANGO_ALLOW_ASYNC_UNSAFE'); "
        + SYNC_QUERY_HINT,
    )


def _hint_for(got, slug):
    if got is None:
        return (
            "it returned None for a category that exists: look the category up by its slug "
            "(`slug=slug`), and if an `except` returns None, make it catch only "
            "Category.DoesNotExist, or it hides the real error (a sync query, a typo)"
        )
    if isinstance(got, dict) and any(type(v).__name__ == "coroutine" for v in got.values()):
        return "a value is a coroutine, not a number: `await` the acount()"
    if slug == EXTRA_SLUG:
        return (
            f"the check added {slug!r} for this run ({EXTRA_NAME!r}, 1 product, out of stock): "
            "count all of this category's products, `await category.products.acount()`, "
            "and return `category.name`"
        )
    return "return {'name': category.name, 'products': await category.products.acount()}"
