"""Checks for lesson 04 · The async ORM, done right."""

import asyncio
from contextlib import asynccontextmanager
from decimal import Decimal

from asgiref.sync import sync_to_async
from django.core.exceptions import SynchronousOnlyOperation
from django.db import DEFAULT_DB_ALIAS, connections
from django.test.utils import CaptureQueriesContext

from tutorial_project.catalog.models import Product
from tutorial_project.course.exercises.core import exercise
from tutorial_project.course.exercises.expect import must_be_async
from tutorial_project.orders.models import Customer


@asynccontextmanager
async def captured_queries():
    """Capture the SQL run on Django's sync thread, where every a-method runs its query.

    The capture is opened and closed on that thread too: connections are per thread.
    """

    def open_capture():
        capture = CaptureQueriesContext(connections[DEFAULT_DB_ALIAS])
        capture.__enter__()
        return capture

    capture = await sync_to_async(open_capture)()
    try:
        yield capture
    finally:
        await sync_to_async(capture.__exit__)(None, None, None)


async def expected_report(slug):
    products = Product.objects.filter(category__slug=slug).order_by("sku")
    products = products.select_related("category").prefetch_related("tags")
    return [
        (p.sku, p.category.name, sorted(t.name for t in p.tags.all())) async for p in products
    ]


@exercise("04.1", "Load everything the loop touches, in a few queries")
async def check_category_report(check, category_report):
    must_be_async(check, category_report, "category_report", "slug")
    for slug in ["books", "games", "no-such-category"]:
        expected = await expected_report(slug)
        async with captured_queries() as queries:
            try:
                got = await category_report(slug)
            except SynchronousOnlyOperation:
                check.that(
                    False,
                    "",
                    f"category_report({slug!r}) loaded a relation lazily: SynchronousOnlyOperation",
                    hint="select_related('category') and prefetch_related('tags') before iterating",
                )
        got = [(sku, name, sorted(tags)) for sku, name, tags in got or []]
        check.that(
            got == expected,
            f"category_report({slug!r}) lists {len(expected)} products, in sku order",
            f"category_report({slug!r}) returned {got[:2]!r}..., expected {expected[:2]!r}...",
            hint="one tuple (sku, category name, list of tag names) per product, ordered by sku",
        )
        check.that(
            len(queries) <= 3,
            f"category_report({slug!r}) ran at most 3 queries",
            f"category_report({slug!r}) ran {len(queries)} queries (one or more per product)",
            hint="prefetch_related('tags') loads every product's tags in one extra query",
        )


TRANSFER_CUSTOMERS = ["ada@example.com", "grace@example.com", "linus@example.com"]


async def credits():
    rows = Customer.objects.filter(email__in=TRANSFER_CUSTOMERS).values_list("email", "credit")
    return {email: credit async for email, credit in rows}


@exercise("04.2", "Transfer credit, all or nothing")
async def check_transfer_credit(check, transfer_credit):
    must_be_async(
        check,
        transfer_credit,
        "transfer_credit",
        hint="async def transfer_credit(...): return await sync_to_async(a_sync_function)(...)",
    )
    before = await credits()
    try:
        await _check_transfers(check, transfer_credit, before)
    finally:  # leave the customers as they were, whatever the learner's code did
        for email, credit in before.items():
            await Customer.objects.filter(email=email).aupdate(credit=credit)


async def _check_transfers(check, transfer_credit, before):
    ada, grace, linus = TRANSFER_CUSTOMERS
    try:
        await transfer_credit(ada, grace, Decimal("10.00"))
    except SynchronousOnlyOperation as error:
        check.that(
            False,
            "",
            f"moving 10.00 from Ada to Grace raised SynchronousOnlyOperation: {error}",
            hint="transaction.atomic() and the sync ORM cannot run in async def: put them in a "
            "sync function and await sync_to_async(that_function)(...)",
        )
    after = await credits()
    check.that(
        (after[ada], after[grace]) == (before[ada] - 10, before[grace] + 10),
        "10.00 moved from Ada to Grace",
        f"after moving 10.00 from Ada to Grace, the credits are {after[ada]} and {after[grace]}",
    )
    for label, args in [
        ("more than Linus has", (linus, ada, Decimal("5.00"))),
        ("to a customer who does not exist", (ada, "nobody@example.com", Decimal("10.00"))),
    ]:
        start = await credits()
        raised = await _raises(transfer_credit(*args))
        check.that(
            raised and await credits() == start,
            f"a transfer {label} raised and changed nothing",
            f"a transfer {label} {'raised' if raised else 'did not raise'}, credits went "
            f"from {_show(start)} to {_show(await credits())}",
            hint="do every step in one sync function under transaction.atomic(), and raise "
            "when a step fails: the exception rolls the earlier steps back",
        )
    await _check_concurrent_transfers(check, transfer_credit)


async def _check_concurrent_transfers(check, transfer_credit):
    ada, grace, _ = TRANSFER_CUSTOMERS
    await Customer.objects.filter(email=grace).aupdate(credit=Decimal("50.00"))
    start = await credits()
    attempts = [transfer_credit(grace, ada, Decimal("20.00")) for _ in range(5)]
    outcomes = await asyncio.gather(*attempts, return_exceptions=True)
    succeeded = sum(not isinstance(outcome, BaseException) for outcome in outcomes)
    end = await credits()
    check.that(
        succeeded == 2 and end[grace] == 10 and sum(end.values()) == sum(start.values()),
        "5 transfers of 20.00 at once from Grace's 50.00: 2 went through, 3 were refused",
        f"5 transfers of 20.00 at once from Grace's 50.00: {succeeded} went through, "
        f"Grace ended with {end[grace]}, all credits went from {sum(start.values())} "
        f"to {sum(end.values())}",
        hint="between two awaits another transfer runs: read the balance, check it and write "
        "it inside one sync function under transaction.atomic()",
    )


async def _raises(awaitable):
    try:
        await awaitable
    except Exception:
        return True
    return False


def _show(credit_by_email):
    return ", ".join(f"{email.split('@')[0]} {credit}" for email, credit in credit_by_email.items())


@exercise("04.3", "Render a template from an async view")
async def check_tools_page(check, tools_page):
    from tutorial_project.course.exercises.probes import call_view

    must_be_async(check, tools_page, "tools_page", "request", kind="view")
    response = await call_view(tools_page)
    check.that(
        response.status_code == 200,
        "it answers 200",
        f"it answered {response.status_code}",
        hint="a template that iterates a QuerySet, or reads a relation that was not loaded, runs "
        "a sync query: pass a list, built with select_related('category') and `async for`",
    )
    page = response.content.decode()
    tools = [p async for p in Product.objects.filter(sku__startswith="TL-").order_by("sku")]
    check.that(
        page.count("<li>") == len(tools)
        and all(f"{p.sku} {p.name} (Tools)" in page for p in tools),
        f"the page lists the {len(tools)} TL- products with their category",
        "the page does not list exactly the TL- products, each with its category",
        hint="render catalog/product_list.html with {'products': [...]}",
    )
