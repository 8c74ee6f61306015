"""Checks for lesson 04 · The async ORM, done right."""

import asyncio
import functools
import inspect
import re
import threading
import time
from collections import Counter
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal

from asgiref.sync import ThreadSensitiveContext, iscoroutinefunction, sync_to_async
from django.core.cache import caches
from django.core.exceptions import SynchronousOnlyOperation
from django.db import OperationalError, connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created
from django.db.backends.utils import CursorWrapper
from django.db.models.query import QuerySet
from django.db.models.sql.compiler import SQLCompiler
from django.db.models.sql.constants import MULTI
from django.db.models.sql.datastructures import Join
from django.template.base import Template
from django.test.utils import override_settings

from tutorial_project.catalog.models import Category, Product, Tag
from tutorial_project.course.exercises.core import exercise
from tutorial_project.course.exercises.expect import (
    async_unsafe_noted,
    blocking_calls_on_this_thread,
    forgotten_awaits,
    made_by_the_surroundings,
    must_be_async,
    no_forgotten_await,
    sleeps_on_this_thread,
    sync_cache_calls_on_this_thread,
)
from tutorial_project.course.exercises.probes import quiet_request_log
from tutorial_project.orders.models import Customer, Order, OrderLine


class Statement(str):
    """One SQL statement as Django sent it (with ``%s`` placeholders), and its context."""

    params: tuple
    for_update: bool  # compiled from select_for_update(), even where SQLite drops the clause
    lock_fails_fast: bool  # select_for_update(nowait=True) or (skip_locked=True)
    in_atomic: bool  # run inside transaction.atomic()
    autocommit: bool  # run in autocommit mode (where PostgreSQL refuses select_for_update())
    while_rendering: bool  # run while a template was rendering, on the same thread
    off_request_thread: bool  # run while as_a_request() ran, on no request's own thread


_compiling = threading.local()


@contextmanager
def recorded_statements():
    """Record every SQL statement run in the block, on every thread and connection.

    SQLite has no ``SELECT ... FOR UPDATE``: Django leaves the clause out of the SQL, so the
    SQL alone cannot tell whether an answer locked its rows. The compiler still knows, so
    this notes ``query.select_for_update`` as each query is compiled and run.
    """
    original_execute = CursorWrapper._execute_with_wrappers
    original_execute_sql = SQLCompiler.execute_sql
    original_render = Template.render
    statements = []

    def recording(self, sql, params, many, executor):
        statement = Statement(sql)
        statement.params = tuple(params or ()) if not many else ()
        statement.for_update = getattr(_compiling, "for_update", False)
        statement.lock_fails_fast = getattr(_compiling, "lock_fails_fast", False)
        statement.in_atomic = self.db.in_atomic_block
        statement.autocommit = self.db.get_autocommit()
        statement.while_rendering = getattr(_compiling, "rendering", 0) > 0
        statement.off_request_thread = bool(_request_threads) and (
            threading.get_ident() not in _request_threads
        )
        statements.append(statement)
        return original_execute(self, sql, params, many, executor)

    def compiling(self, *args, **kwargs):
        before = (
            getattr(_compiling, "for_update", False),
            getattr(_compiling, "lock_fails_fast", False),
        )
        query = self.query
        _compiling.for_update = bool(query.select_for_update)
        _compiling.lock_fails_fast = bool(
            query.select_for_update
            and (query.select_for_update_nowait or query.select_for_update_skip_locked)
        )
        try:
            return original_execute_sql(self, *args, **kwargs)
        finally:
            _compiling.for_update, _compiling.lock_fails_fast = before

    def rendering(self, context):
        _compiling.rendering = getattr(_compiling, "rendering", 0) + 1
        try:
            return original_render(self, context)
        finally:
            _compiling.rendering -= 1

    CursorWrapper._execute_with_wrappers = recording
    SQLCompiler.execute_sql = compiling
    Template.render = rendering
    try:
        yield statements
    finally:
        CursorWrapper._execute_with_wrappers = original_execute
        SQLCompiler.execute_sql = original_execute_sql
        Template.render = original_render


@contextmanager
def rows_read():
    """Count the rows each table's SELECTs sent back in the block, by table (on every thread).

    A query's row count is what the database did for it; how long it took is not (a loaded
    machine is slow either way). Rows are counted as Django fetches them from the cursor.
    A SELECT that joins a many-valued relation (a many-to-many or a reverse foreign key, such
    as ``values_list("sku", "tags__name")``) sends one row per pair: its rows are counted
    under ``(table, joined table)``, so that they are not taken for more of the table's rows.
    """
    original_execute_sql = SQLCompiler.execute_sql
    counts = Counter()

    def counting(self, *args, **kwargs):
        result = original_execute_sql(self, *args, **kwargs)
        result_type = args[0] if args else kwargs.get("result_type", MULTI)
        if result_type != MULTI or result is None:
            return result
        table = self.query.get_meta().db_table
        if joined := _many_valued_joins(self.query):
            table = (table, joined[0])
        if isinstance(result, list):  # non-chunked reads: every chunk fetched already
            counts[table] += sum(len(chunk) for chunk in result)
            return result
        return _counted(result, counts, table)

    SQLCompiler.execute_sql = counting
    try:
        yield counts
    finally:
        SQLCompiler.execute_sql = original_execute_sql


def _many_valued_joins(query):
    """The tables a query joins through a many-to-many or a reverse foreign key."""
    joins = [join for join in query.alias_map.values() if isinstance(join, Join)]
    return [
        join.table_name
        for join in joins
        if join.join_field.one_to_many or join.join_field.many_to_many
    ]


def _counted(chunks, counts, table):
    for chunk in chunks:
        counts[table] += len(chunk)
        yield chunk


@contextmanager
def blocking_calls():
    """Note the calls in the block that hold the event loop's thread while they wait.

    ``time.sleep`` there, and Django's sync cache API (``cache.get``, ``cache.set``...): with
    Redis or Memcached each is a network round trip on the loop. The a-twins (``await
    cache.aget(...)``) run in a worker thread and are not noted. A loop-stall timer would catch
    more, but on a busy machine it also catches the machine: these two are what learners write.
    """
    calls = []
    with (
        sync_cache_calls_on_this_thread() as cache_calls,
        sleeps_on_this_thread() as sleeps,
        blocking_calls_on_this_thread(made_by_the_surroundings) as named,  # under any name
    ):
        try:
            yield calls
        finally:
            calls.extend(f"cache.{name}()" for name in cache_calls)
            calls.extend(f"time.sleep({seconds})" for seconds in sleeps)
            calls.extend(name for name in dict.fromkeys(named)
                         if not (name == "time.sleep" and sleeps))


def loop_never_blocked(check, calls, who):
    check.that(
        not calls,
        f"{who} made no blocking wait on the event loop's thread (no time.sleep, sync cache, "
        "socket or sqlite3 call there)",
        f"{who} blocked the event loop's thread with {', '.join(dict.fromkeys(calls))}: "
        "every other request waits meanwhile (the project's local-memory cache answers at "
        "once, but a sync cache call waits on the network with Redis or Memcached)",
        hint="in async code, wait with `await asyncio.sleep(...)` and use the cache's "
        "a-twins (`await cache.aget(...)`, `await cache.aset(...)`)",
    )


def guard_switched_off(check, unsafe, hint):
    """Fail an answer that set DJANGO_ALLOW_ASYNC_UNSAFE (``unsafe``: from async_unsafe_noted)."""
    if unsafe:
        check.that(
            False,
            "",
            f"Django's guard was switched off: {unsafe[0]}. The sync ORM then ran on the "
            "event loop's own thread",
            hint="DJANGO_ALLOW_ASYNC_UNSAFE only hides SynchronousOnlyOperation: every "
            f"query still blocks the loop (and every request on it). Never set it; {hint}",
        )


_TRANSACTION_CONTROL = re.compile(r"\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)\b", re.I)


def data_queries(statements):
    """The statements that are not atomic()'s own BEGIN, SAVEPOINT or RELEASE: those cost the
    same whatever the number of rows, so they are no sign of an N+1."""
    return [s for s in statements if not _TRANSACTION_CONTROL.match(s)]


async def expected_report(slug):
    products = Product.objects.filter(category__slug=slug).order_by("sku")
    products = products.select_related("category").prefetch_related("tags")
    return [
        (p.sku, p.category.name, sorted(t.name for t in p.tags.all())) async for p in products
    ]


@contextmanager
def chunked_prefetches():
    """Note the chunk size of each ``aiterator()`` over a QuerySet with prefetch_related()
    lookups run in the block: it prefetches once per chunk, a query count that grows with the
    rows whenever they outnumber a chunk (the default chunk is 2000 rows)."""
    original = QuerySet.aiterator
    default = inspect.signature(original).parameters["chunk_size"].default
    chunks = []

    @functools.wraps(original)
    def noting(self, chunk_size=default):
        if self._prefetch_related_lookups:
            chunks.append(chunk_size)
        return original(self, chunk_size)

    QuerySet.aiterator = noting
    try:
        yield chunks
    finally:
        QuerySet.aiterator = original


@exercise("04.1", "Load everything the loop touches, in a few queries")
async def check_category_report(check, category_report):
    must_be_async(check, category_report, "category_report", "slug")
    await sync_to_async(_add_large_category)()
    try:
        await _check_category_reports(check, category_report)
    finally:
        await sync_to_async(_remove_large_category)()


LARGE_CATEGORY = "exercise-large"


def _add_large_category(size=250):
    """A category bigger than a small aiterator() chunk: 1 + N, or a prefetch per chunk,
    shows as a query count that grows with the category."""
    _remove_large_category()
    category = Category.objects.create(name="Exercise large", slug=LARGE_CATEGORY)
    tags = list(Tag.objects.order_by("pk")[:3])
    products = Product.objects.bulk_create(
        Product(
            sku=f"XL-{i:04d}",
            name=f"Large {i}",
            category=category,
            price=Decimal("1.00"),
            created_at=datetime(2024, 1, 1, tzinfo=UTC),
        )
        # Made out of sku order, so that an answer ordered by pk, or not at all, is caught:
        # 97 shares no factor with 250, so i * 97 % size visits every i once.
        for i in sorted(range(size), key=lambda i: i * 97 % size)
    )
    links = Product.tags.through
    links.objects.bulk_create(
        links(product_id=product.pk, tag_id=tag.pk)
        for i, product in enumerate(Product.objects.filter(category=category).order_by("sku"))
        for tag in tags[: i % 3]
    )
    _add_lookalike_category()
    return products


LOOKALIKE_CATEGORY = "books-used"  # its slug starts with "books" and contains it
CASE_VARIANT_CATEGORY = "Books"  # "books" in other letter case: __iexact takes it


def _add_lookalike_category():
    """Categories whose slugs are not "books" but look like it: one starts with (and
    contains) it, one differs only in letter case. A report that matches the slug with
    ``__startswith``, ``__contains``, ``__icontains`` or ``__iexact`` lists their products."""
    for slug, name, prefix in [(LOOKALIKE_CATEGORY, "Used books", "BU"),
                               (CASE_VARIANT_CATEGORY, "Books (capital B)", "BV")]:
        category = Category.objects.create(name=name, slug=slug)
        Product.objects.bulk_create(
            Product(sku=f"{prefix}-{i:03d}", name=f"{name} {i}", category=category,
                    price=Decimal("2.00"), created_at=datetime(2024, 1, 1, tzinfo=UTC))
            for i in range(2)
        )


def _remove_large_category():
    for slug in [LARGE_CATEGORY, LOOKALIKE_CATEGORY, CASE_VARIANT_CATEGORY]:
        Product.objects.filter(category__slug=slug).delete()
        Category.objects.filter(slug=slug).delete()


async def _check_category_reports(check, category_report):
    links = Product.tags.through._meta.db_table
    for slug in ["books", "games", "no-such-category", LARGE_CATEGORY]:
        expected = await expected_report(slug)
        with forgotten_awaits() as missed, blocking_calls() as blocked:
            with recorded_statements() as queries, rows_read() as rows:
                try:  # as ASGIHandler runs a request: its queries belong on its own thread
                    with async_unsafe_noted() as unsafe, chunked_prefetches() as chunks:
                        got = await as_a_request(category_report, slug)
                except SynchronousOnlyOperation:
                    check.that(
                        False,
                        "",
                        f"category_report({slug!r}) ran a sync query on the event loop "
                        "(SynchronousOnlyOperation): a lazy relation, or list()/len() of a "
                        "QuerySet",
                        hint="select_related('category') and prefetch_related('tags'), then "
                        "iterate with `async for`",
                    )
        guard_switched_off(check, unsafe, "load with select_related('category') and "
                           "prefetch_related('tags'), then `async for`")
        no_forgotten_await(check, missed, got)
        if slug == "books":
            loop_never_blocked(check, blocked, f"category_report({slug!r})")
            not_tuples = sorted({type(row).__name__ for row in got or []} - {"tuple"})
            check.that(
                not not_tuples,
                f"category_report({slug!r}) gives one tuple per product",
                f"category_report({slug!r}) gave {' and '.join(not_tuples)} rows, not tuples",
                hint="one tuple (sku, category name, list of tag names) per product: "
                "(p.sku, p.category.name, [...])",
            )
            not_names = sorted(
                {type(tag).__name__ for _, _, tags in got or [] for tag in tags} - {"str"}
            )
            not_lists = sorted({type(tags).__name__ for _, _, tags in got or []} - {"list"})
            check.that(
                not not_lists,
                f"category_report({slug!r}) gives each product's tag names in a list",
                f"category_report({slug!r}) gave the tag names in a {' and a '.join(not_lists)}"
                ", not a list",
                hint="one tuple (sku, category name, list of tag names): [t.name for t in "
                "p.tags.all()]",
            )
            check.that(
                not not_names,
                f"category_report({slug!r}) gives each product's tag names (strings)",
                f"category_report({slug!r}) gave {' and '.join(not_names)} objects in the tag "
                "lists, not the tags' names",
                hint="one tuple (sku, category name, list of tag names): [t.name for t in "
                "p.tags.all()]",
            )
        got = [(sku, name, sorted(tags, key=str)) for sku, name, tags in got or []]
        others = sorted({row[0] for row in got} - {row[0] for row in expected}, key=str)
        check.that(
            got == expected,
            f"category_report({slug!r}) lists {len(expected)} products, in sku order",
            f"category_report({slug!r}) listed {len(got)} products where the category has "
            f"{len(expected)}: it also listed {', '.join(map(str, others[:3]))}, of another "
            "category"
            if others else
            f"category_report({slug!r}) returned {got[:2]!r}..., expected {expected[:2]!r}...",
            hint="match the slug exactly, filter(category__slug=slug): __startswith or "
            f"__contains also takes a category such as {LOOKALIKE_CATEGORY!r}, __iexact "
            f"one such as {CASE_VARIANT_CATEGORY!r}"
            if others else
            "one tuple (sku, category name, list of tag names) per product, ordered by sku",
        )
        count = len(data_queries(queries))
        # A few queries over 3 on a small category: per product, or a fixed few too many?
        # Only a count past a large category's product count says which.
        per_product = count > len(expected) >= 10
        check.that(
            count <= 3,
            f"category_report({slug!r}) ran at most 3 queries",
            f"category_report({slug!r}) ran {count} queries for {len(expected)} products"
            + (" (one or more per product)" if per_product else "")
            + (f" (the tags' prefetch ran once per chunk of {chunks[0]})" if chunks else ""),
            hint="after aiterator(chunk_size=...) prefetch_related runs once per chunk: use "
            "`async for`, which prefetches once for all rows"
            if chunks else
            "three queries are enough whatever the category's size: the category (or "
            "select_related('category') in the products' query), the products, and "
            "prefetch_related('tags') for all their tags; p.tags.all() or p.category without "
            "them runs a query per product",
        )
        if chunks and slug == LARGE_CATEGORY:  # a chunk bigger than it: the count was 3
            check.that(
                False,
                "",
                f"category_report({slug!r}) iterated a prefetch_related() QuerySet with "
                f"aiterator(chunk_size={chunks[0]}): the prefetch runs once per {chunks[0]} "
                f"products, so a category of {2 * chunks[0] + 1} takes more than 3 queries",
                hint="aiterator() prefetches chunk by chunk (2000 rows by default): use "
                "`async for` over the QuerySet, which prefetches once for all rows",
            )
        products = Product._meta.db_table
        tag_links = sum(len(tags) for _, _, tags in expected)
        # A product query that joins the tags sends a row per product and tag (one for a
        # product with none): those rows are the category's, not the table's.
        joined_rows = sum(max(1, len(tags)) for _, _, tags in expected)
        product_rows = sum(  # joined to anything else, they count as product rows
            read
            for key, read in rows.items()
            if key == products or (isinstance(key, tuple) and key[0] == products
                                   and key != (products, links))
        )
        too_many = [
            f"{read} {what} where the category has {needed}"
            for read, needed, what in [
                (product_rows, len(expected), "product rows"),
                (rows[links], tag_links, "product-tag links"),
                (rows[(products, links)], joined_rows, "product-and-tag rows (a join)"),
            ]
            if read > needed
        ]
        if got == expected:  # rows of the wrong products: said above
            check.that(
                not too_many,
                f"category_report({slug!r}) read only that category's products from the database",
                f"category_report({slug!r}) read {' and '.join(too_many)}: it filtered in Python "
                "what the database should filter",
                hint="let the database do the work: Product.objects.filter(category__slug=slug) "
                "sends only that category's products (all of them cost memory, time and a bigger "
                "result whatever the category), and prefetch_related('tags') only their tags",
            )
        check.that(
            not any(query.off_request_thread for query in queries),
            f"category_report({slug!r}) ran its queries on the request's own thread",
            f"category_report({slug!r}) ran its queries on a thread other than the "
            "request's: a connection Django never closes",
            hint=OFF_THREAD_HINT,
        )
    if check.passed:  # a report kept from an earlier call shows the old category name
        renamed = Category.objects.filter(slug=LARGE_CATEGORY).aupdate(name="Exercise renamed")
        again = await _after_a_change(renamed, lambda: as_a_request(category_report,
                                                                    LARGE_CATEGORY))
        check.that(
            {name for _, name, _ in again} == {"Exercise renamed"},
            "a call after the category was renamed shows the new name (nothing kept between "
            "calls)",
            f"after the category {LARGE_CATEGORY!r} was renamed, category_report() still gave "
            "its old name: it kept the report from an earlier call",
            hint="build the report in every call: a result kept in a module, a default "
            "argument or a global is stale after any change, and shared by concurrent requests",
        )


TRANSFER_CUSTOMERS = ["ada@example.com", "grace@example.com", "linus@example.com"]


async def credits():
    rows = Customer.objects.filter(email__in=TRANSFER_CUSTOMERS).values_list("email", "credit")
    return {email: credit async for email, credit in rows}


# The threads of the requests that as_a_request() is running, one entry per request. A
# statement run while one is listed, on a thread that is not, ran off its request's thread:
# told by the thread itself, since loop.run_in_executor() carries no contextvar there.
_request_threads = []


async def as_a_request(func, *args):
    """Await ``func(*args)`` the way ASGIHandler runs a request: in its own
    ThreadSensitiveContext, so its thread-sensitive calls get a thread (and a database
    connection) of their own."""
    async with ThreadSensitiveContext():
        thread = await sync_to_async(threading.get_ident)()
        _request_threads.append(thread)
        try:
            return await func(*args)
        finally:  # as request_finished does: close the connection this "request" opened
            _request_threads.remove(thread)
            await sync_to_async(connections.close_all)()


OFF_THREAD_HINT = (
    "`sync_to_async(..., thread_sensitive=False)`, `asyncio.to_thread` and "
    "`loop.run_in_executor()` run the ORM on a pool thread: it opens a connection there "
    "that Django never closes (request_finished closes only the request thread's), one per "
    "pool thread. Keep the default: "
    "`sync_to_async(that_function)(...)`"
)


@exercise("04.2", "Transfer credit, all or nothing")
async def check_transfer_credit(check, transfer_credit):
    decorated_away = not iscoroutinefunction(transfer_credit) and iscoroutinefunction(
        inspect.unwrap(transfer_credit)
    )
    if decorated_away:  # a line only when it fails: must_be_async says the rest
        check.that(
            False,
            "",
            "transfer_credit was written with async def, but a decorator turned it into a sync "
            "function: @transaction.atomic cannot wrap a coroutine (it would commit when the "
            "coroutine is created, before any of its queries)",
            hint="drop the decorator: put the transaction in a sync function (with "
            "transaction.atomic(): ...) and await sync_to_async(that_function)(...)",
        )
    must_be_async(
        check,
        transfer_credit,
        "transfer_credit",
        hint="async def transfer_credit(...): return await sync_to_async(a_sync_function)(...)",
    )
    before = await credits()
    try:
        with async_unsafe_noted() as unsafe:  # unset for the whole check, noted if set
            await _check_transfers(check, transfer_credit, before, unsafe)
    finally:  # leave the customers as they were, whatever the learner's code did
        await sync_to_async(_second_write_fails_off)()
        for email, credit in before.items():
            await Customer.objects.filter(email=email).aupdate(credit=credit)


async def _check_transfers(check, transfer_credit, before, unsafe):
    ada, grace, linus = TRANSFER_CUSTOMERS
    with forgotten_awaits() as missed, recorded_statements() as statements:
        with blocking_calls() as blocked:
            try:
                returned = await as_a_request(transfer_credit, ada, grace, Decimal("10.00"))
            except SynchronousOnlyOperation as error:
                check.that(
                    False,
                    "",
                    f"moving 10.00 from Ada to Grace raised SynchronousOnlyOperation: {error}",
                    hint="transaction.atomic() and the sync ORM cannot run in async def: put "
                    "them in a sync function and await sync_to_async(that_function)(...)",
                )
    guard_switched_off(check, unsafe, "put the transaction in a sync function and await "
                       "sync_to_async(that_function)(...)")
    no_forgotten_await(check, missed, returned)
    loop_never_blocked(check, blocked, "transfer_credit")
    after = await credits()
    check.that(
        (after[ada], after[grace]) == (before[ada] - 10, before[grace] + 10),
        "10.00 moved from Ada to Grace",
        f"after moving 10.00 from Ada to Grace, the credits are {after[ada]} and {after[grace]}",
    )
    unsafe = ""
    if after != before:
        pks = {email: pk async for email, pk in _customer_pks()}
        unsafe, sender_unchecked = _unsafe_on_postgresql(
            statements, pks, sender=ada, receiver=grace
        )
        with recorded_statements() as back_statements:  # the other way: Grace to Ada
            back_raised = await _raises(as_a_request(transfer_credit, grace, ada, Decimal("10.00")))
        check.that(
            not back_raised and await credits() == before,
            "10.00 moved back from Grace to Ada",
            f"moving 10.00 back from Grace to Ada {'raised' if back_raised else 'did not raise'}"
            f", credits went from {_show(after)} to {_show(await credits())}",
        )
        lock_order = _lock_order_problem(statements, back_statements, pks)
        if sender_unchecked:
            unchecked = await _debit_checks_the_balance(
                transfer_credit, pks, ada, grace, Decimal("10.00")
            )
            unsafe = "; ".join(problem for problem in [unsafe, unchecked] if problem)
        if not unsafe:
            unsafe = await _uses_what_it_locked(transfer_credit, pks, ada, grace, Decimal("10.00"))
    all_or_nothing = (
        "do every step in one sync function under transaction.atomic(), and let the "
        "exception out: leaving atomic() with it rolls the earlier writes back"
    )
    refusals = [
        ("more than Linus has", (linus, ada, Decimal("5.00")), False),
        ("to a customer who does not exist", (ada, "nobody@example.com", Decimal("10.00")),
         False),
        ("whose second write the database refused", (ada, grace, Decimal("10.00")), True),
    ]
    await _refused(check, transfer_credit, refusals, all_or_nothing)
    start = await credits()
    whole = start[grace]
    raised = await _raises(as_a_request(transfer_credit, grace, linus, whole))
    end = await credits()
    check.that(
        not raised and (end[grace], end[linus]) == (0, start[linus] + whole),
        f"a transfer of Grace's whole credit ({whole}) went through",
        f"a transfer of exactly Grace's credit ({whole}) {'raised' if raised else 'ran'}, "
        f"credits went from {_show(start)} to {_show(end)}",
        hint="a sender may spend all of their credit: refuse only when credit < amount "
        "(not <=), or debit with filter(credit__gte=amount)",
    )
    cents = [(ada, grace, Decimal("10.75"), "from Ada to Grace"),
             (grace, ada, Decimal("0.50"), "from Grace to Ada")]
    for sender, receiver, amount, way in cents:  # an int() of the amount fails both
        start = await credits()
        raised = await _raises(as_a_request(transfer_credit, sender, receiver, amount))
        end = await credits()
        exact = {**start, sender: start[sender] - amount, receiver: start[receiver] + amount}
        check.that(
            not raised and end == exact,
            f"a transfer of {amount} {way} moved exactly {amount}",
            f"a transfer of {amount} {way} {'raised' if raised else 'ran'}, credits went from "
            f"{_show(start)} to {_show(end)}",
            hint="keep the amount a Decimal: int(), round() or quantize(1) drop the cents",
        )
    await _check_concurrent_transfers(check, transfer_credit)
    off_thread = any(statement.off_request_thread for statement in statements)
    if after != before:
        off_thread = off_thread or any(s.off_request_thread for s in back_statements)
    check.that(
        not off_thread,
        "its queries ran on the request's own thread (whose connection Django closes)",
        "its queries ran on a thread other than the request's: a connection Django never closes",
        hint=OFF_THREAD_HINT,
    )
    # Last, read from the SQL: SQLite itself cannot show this race, nor a deadlock.
    if any(s.for_update and s.autocommit for s in statements):
        check.that(
            False,
            "",
            "its select_for_update() ran outside transaction.atomic(): SQLite drops the clause "
            "silently, but on PostgreSQL Django raises TransactionManagementError "
            "('select_for_update cannot be used outside of a transaction') on every call",
            hint="open the transaction first, then read with select_for_update() inside it: "
            "with transaction.atomic(): ...",
        )
    check.that(
        not unsafe,
        "its reads and writes are safe on PostgreSQL too (rows locked, or a "
        "conditional update)",
        f"on PostgreSQL, concurrent transfers would go wrong: {unsafe}",
        hint="SQLite lets this pass only because this project's transactions start with "
        "BEGIN IMMEDIATE (transaction_mode), which runs them one at a time. On PostgreSQL "
        "two transactions read the same balance at once: read the rows with "
        "select_for_update() inside atomic() the first time you read them (a lock taken "
        "after the read protects nothing you read), or debit with a conditional update "
        "that checks the amount, filter(email=..., credit__gte=amount)"
        ".update(credit=F('credit') - amount), and raise if it changed no row (not a "
        "condition on the credit read earlier: any transfer committed in between fails it)",
    )
    if after != before:
        check.that(
            not lock_order,
            "it locks the two rows in one order whatever the direction (no deadlock)",
            f"on PostgreSQL, transfers in opposite directions would deadlock: {lock_order}",
            hint="lock the two rows in one order that does not depend on the direction, "
            "primary-key order for instance: in one query, "
            "Customer.objects.select_for_update().filter(email__in=[from_email, to_email])"
            ".order_by('pk'), then pick the sender and the receiver out of the result; with "
            "conditional updates, run the two UPDATEs in that order (credit first when the "
            "receiver comes first)",
        )
    # Last, so that the diagnoses above come first for an answer that also misses this.
    not_positive = [
        ("of a negative amount (-5.00 from Linus to Ada)", (linus, ada, Decimal("-5.00")), False),
        ("of 0.00", (ada, grace, Decimal("0.00")), False),
    ]
    await _refused(
        check, transfer_credit, not_positive,
        "a transfer moves a positive amount: raise ValueError when amount <= 0, before any "
        "query (a negative one takes credit from the receiver, and passes credit >= amount)",
    )
    # A bank refuses a transfer to the same account. Code written for two rows goes wrong
    # with one: values computed from the read add the amount back; a loop over the two
    # emails that tests "email == from_email" debits twice.
    await _refused(
        check, transfer_credit,
        [("to oneself (10.00 from Ada to Ada)", (ada, ada, Decimal("10.00")), False)],
        "a transfer to oneself moves nothing: raise ValueError when from_email == to_email, "
        "before any query (one row as both sender and receiver: code written for two rows "
        "creates credit, e.g. a receiver's credit computed from the read adds back what the "
        "debit took, or destroys it, e.g. both UPDATEs debit)",
    )


async def _refused(check, transfer_credit, refusals, hint):
    """Each (label, args, second_write_fails) transfer must raise and change nothing."""
    for label, args, second_write_fails in refusals:
        start = await credits()
        if second_write_fails:
            await sync_to_async(_second_write_fails_on)()
        try:
            raised = await _raises(as_a_request(transfer_credit, *args))
        finally:
            await sync_to_async(_second_write_fails_off)()
        check.that(
            raised and await credits() == start,
            f"a transfer {label} raised and changed nothing",
            f"a transfer {label} {'raised' if raised else 'did not raise'}, credits went "
            f"from {_show(start)} to {_show(await credits())}",
            hint=hint,
        )


async def _check_concurrent_transfers(check, transfer_credit):
    ada, grace, _ = TRANSFER_CUSTOMERS
    await Customer.objects.filter(email=grace).aupdate(credit=Decimal("50.00"))
    start = await credits()
    with slow_reads():
        attempts = [as_a_request(transfer_credit, grace, ada, Decimal("20.00")) for _ in range(5)]
        outcomes = await asyncio.gather(*attempts, return_exceptions=True)
    succeeded = sum(not isinstance(outcome, BaseException) for outcome in outcomes)
    end = await credits()
    check.that(
        succeeded == 2 and end[grace] == 10 and sum(end.values()) == sum(start.values()),
        "5 transfers of 20.00 at once from Grace's 50.00: 2 went through, 3 were refused",
        f"5 transfers of 20.00 at once from Grace's 50.00: {succeeded} went through, "
        f"Grace ended with {end[grace]}, all credits went from {sum(start.values())} "
        f"to {sum(end.values())}",
        hint="each transfer is a request with its own thread: between reading the balance "
        "and writing it, another transfer runs. Read, check and write inside one sync "
        "function under transaction.atomic()",
    )


def _customer_pks():
    return Customer.objects.filter(email__in=TRANSFER_CUSTOMERS).values_list("email", "pk")


# The customers' table and its credit column, quoted as the ORM writes them or not (raw SQL
# through connection.cursor() may spell them either way, in any case).
_CUSTOMERS_TABLE = re.compile(r'(?<![\w"])"?orders_customer"?(?![\w"])', re.IGNORECASE)
_CREDIT = re.compile(r'(?<![\w"])"?credit"?(?![\w"])', re.IGNORECASE)
_CREDIT_SET_TO_A_VALUE = re.compile(r'(?<![\w"])"?credit"?\s*=\s*%s', re.IGNORECASE)


def _split(sql, keyword):
    """``sql.partition(f" {keyword} ")``, whatever the keyword's case and spacing."""
    parts = re.split(rf"\s{keyword}\s", sql, maxsplit=1, flags=re.IGNORECASE)
    return (parts[0], f" {keyword} ", parts[1]) if len(parts) == 2 else (sql, "", "")


def _names_customers(sql):
    return bool(_CUSTOMERS_TABLE.search(sql))


def _rows_named(statement, pks):
    """The customers a statement's WHERE names, by email or by primary key."""
    emails = {pk: email for email, pk in pks.items()}
    head, where_keyword, _ = _split(statement, "WHERE")
    where_params = statement.params[head.count("%s") :] if where_keyword else ()
    named = set()
    for param in where_params:
        if isinstance(param, str) and param in pks:
            named.add(param)
        elif isinstance(param, int) and not isinstance(param, bool) and param in emails:
            named.add(emails[param])
    return named


def _lock_order_problem(statements, back_statements, pks):
    """Rows locked one statement at a time in an order that depends on the direction, or "".

    Inside a transaction, a ``select_for_update()`` SELECT and an UPDATE both lock the rows
    they name until the commit. Two transfers in opposite directions that each lock the
    sender, then the receiver, take the same two row locks in opposite orders: on PostgreSQL
    each waits for the other, and the database ends it by failing one with "deadlock
    detected". Any order that is the same whatever the direction cannot deadlock: one locking
    query for both rows ordered by pk, or single-row locks (conditional UPDATEs included)
    taken in pk order, or in email order. ``statements`` ran one transfer (A to B),
    ``back_statements`` the one the other way (B to A): their lock orders are compared.
    """
    forward, problem = _single_row_lock_order(statements, pks)
    back, back_problem = _single_row_lock_order(back_statements, pks)
    if problem or back_problem:
        return problem or back_problem
    if len(forward) < 2 or len(back) < 2:  # one direction locked both rows in one query
        whole = forward if len(forward) >= 2 else back
        if len(whole) < 2 or whole == sorted(whole, key=pks.get):
            return ""
    elif forward[:2] == back[:2]:
        return ""
    else:
        whole = forward
    first, second = (email.split("@")[0].capitalize() for email in whole[:2])
    return (
        f"it locked {first}'s row, then {second}'s, one statement each (a select_for_update() "
        "or an UPDATE: both hold the row until the commit), and a transfer the other way "
        "locked them in the opposite order: two such transfers at once each wait for the "
        "other's lock until PostgreSQL fails one with 'deadlock detected'"
    )


# Customer's unique columns: no two rows tie on one, so an ORDER BY that names one is total.
_UNIQUE_COLUMN = re.compile(r'(?<![\w"])"?(?:id|email)"?(?![\w"])', re.IGNORECASE)
_AFTER_ORDER_BY = re.compile(r"\s(?:LIMIT|OFFSET|FOR)\s", re.IGNORECASE)


def _ordered_by_a_unique_column(sql):
    """Whether a query's ORDER BY names the customers' pk or email (ties broken by it)."""
    _, order_by, rest = _split(sql, "ORDER BY")
    return bool(order_by) and bool(_UNIQUE_COLUMN.search(_AFTER_ORDER_BY.split(rest, 1)[0]))


def _single_row_lock_order(statements, pks):
    """The customers locked one statement at a time, in order, and a problem with a query
    that locked both rows at once in no order by a unique column, or "" (see
    _lock_order_problem)."""
    order, locked = [], set()
    for statement in statements:
        sql = statement.lstrip().upper()
        if not _names_customers(sql) or not statement.in_atomic:
            continue
        if (sql.startswith("SELECT") and statement.for_update) or sql.startswith("UPDATE"):
            named = _rows_named(statement, pks)
            if len(named - locked) > 1 and not _ordered_by_a_unique_column(sql):
                which = (
                    "ordered by no unique column (with no order_by(), Customer's "
                    "Meta.ordering applies: by name, which two customers can share)"
                    if _split(sql, "ORDER BY")[1]
                    else "with no ORDER BY (order_by() cleared it)"
                )
                return order, (
                    f"it locked both rows in one select_for_update() query {which}: "
                    "PostgreSQL then locks them (or the ones that tie) in whatever order "
                    "its plan reads them, which nothing promises is the same for a transfer "
                    "the other way"
                )
            if len(named - locked) == 1:
                order += named - locked
            locked |= named
    return order, ""


def _unsafe_on_postgresql(statements, pks, sender, receiver):
    """What in one transfer's statements would be a race on PostgreSQL, or "", and whether
    the sender's balance was checked on no locked read (see _debit_checks_the_balance).

    SQLite serializes this project's transactions (BEGIN IMMEDIATE), so the concurrent
    transfers cannot catch a read that trusts an unlocked row: PostgreSQL lets two
    transactions read the same balance at once. So the statements themselves are read, in
    order. A row counts as locked from the first ``select_for_update()`` SELECT inside the
    transaction that names it; a credit read before that lock is stale once another
    transaction commits, unless a locking SELECT reads the credit again. A credit written as
    a value computed in Python must come from a fresh (locked) read. A sender never read
    fresh may still be safe: the debit can check the balance itself (``UPDATE ... WHERE``
    a condition on the credit, which PostgreSQL re-checks on the row's newest version), and
    that is judged by running the transfer, not from the SQL text.
    """

    def rows(statement):
        return _rows_named(statement, pks)

    def name(email):
        return email.split("@")[0].capitalize()

    locked, stale, problems = set(), set(), []
    for statement in statements:
        sql = statement.lstrip()
        if not _names_customers(sql):
            continue
        if sql.upper().startswith("SELECT"):
            named = rows(statement)
            reads_credit = bool(_CREDIT.search(_split(sql, "FROM")[0]))
            if statement.for_update and statement.in_atomic:
                if statement.lock_fails_fast:
                    problems.append(
                        "select_for_update(nowait=True) or (skip_locked=True) makes a "
                        "concurrent transfer fail (or miss the row) instead of waiting its turn"
                    )
                locked |= named
                if reads_credit:
                    stale -= named  # read again under the lock: fresh
            elif reads_credit:
                stale |= named - locked
        elif sql.upper().startswith("UPDATE"):
            assignments, _, _ = _split(sql, "WHERE")
            written = rows(statement) or {sender, receiver}  # rows it names, else assume both
            # A value computed in Python: save(), update(credit=x), SET credit = %s.
            if _CREDIT_SET_TO_A_VALUE.search(assignments):
                for email in sorted(written):
                    if email not in locked or email in stale:
                        problems.append(
                            f"{name(email)}'s credit was written from a value read before "
                            "the row was locked with select_for_update() (a concurrent "
                            "transfer's write is lost)"
                        )
    sender_unchecked = sender not in locked or sender in stale
    return "; ".join(dict.fromkeys(problems)), sender_unchecked


async def _debit_checks_the_balance(transfer_credit, pks, sender, receiver, amount):
    """Whether the debit itself refuses a balance that another transfer lowered, or "".

    For a transfer that never read the sender's credit under a lock: it runs once more with
    the sender's credit set to just under the amount right before its first UPDATE of the
    sender, on its own connection, as a concurrent transfer committing then would look to
    PostgreSQL's UPDATE (which re-checks its WHERE on the row's newest version). A debit
    with any condition that refuses it (``credit__gte=amount``, ``exclude(credit__lt=...)``,
    an alias compared with 0, a check of the balance after the UPDATE...) makes the transfer
    raise; one that trusts the earlier read lets it through.
    """
    name = sender.split("@")[0].capitalize()
    start = await credits()
    left = amount - Decimal("0.01")
    with a_write_before_the_debit(pks, sender, left) as landed:
        raised = await _raises(as_a_request(transfer_credit, sender, receiver, amount))
    end = await credits()
    await _put_back(start)
    if raised:
        return await _debit_waits_its_turn(transfer_credit, pks, sender, receiver, amount)
    if not landed:
        return (f"{name}'s balance was checked on a value read before the row was locked with "
                f"select_for_update(), and the check found no UPDATE of {name}'s credit to "
                "test whether the debit re-checks it")
    return (
        f"{name}'s balance was checked on a value read before the row was locked with "
        f"select_for_update(), and the debit did not check it again: with a concurrent "
        f"transfer's write landing just before the debit (leaving {name} {left}, less than "
        f"{amount}), the transfer still went through ({name} ended with {end[sender]})"
    )


async def _debit_waits_its_turn(transfer_credit, pks, sender, receiver, amount):
    """Whether the debit lets a transfer through when a concurrent write changed the
    sender's balance but left enough, or "".

    The same probe as _debit_checks_the_balance, with a write that leaves the sender
    ``amount + 0.01``: PostgreSQL's UPDATE waits for that transfer's commit, then re-checks
    its WHERE on the new row. A condition on the amount still matches; a compare-and-swap on
    the credit read earlier (``filter(credit=old).update(...)``) matches no row, and the
    transfer fails instead of waiting its turn (unless it retries the whole transaction).
    """
    name = sender.split("@")[0].capitalize()
    start = await credits()
    left = amount + Decimal("0.01")
    with a_write_before_the_debit(pks, sender, left) as landed:
        raised = await _raises(as_a_request(transfer_credit, sender, receiver, amount))
    end = await credits()
    await _put_back(start)
    if not landed or (not raised and end[sender] == left - amount):
        return ""
    outcome = "raised" if raised else f"ended with {name} at {end[sender]}"
    return (
        f"with a concurrent transfer's write landing just before the debit and leaving "
        f"{name} {left}, still enough for {amount}, the transfer {outcome}: a debit on the "
        "condition that the credit is unchanged since it was read (compare-and-swap) fails "
        "a transfer that should wait its turn"
    )


@contextmanager
def a_write_before_the_debit(pks, sender, credit):
    """Set ``sender``'s credit to ``credit`` just before the first UPDATE of customers that
    writes the credit of ``sender`` (or of rows it does not name). Yields a list that is not
    empty once that happened.

    The write stands for another transfer that committed: when the transaction it was made
    in rolls back, it is made again before the next statement on customers, so an answer
    that retries the whole transaction reads it, as it would on PostgreSQL.
    """
    original_execute = CursorWrapper._execute_with_wrappers
    original_rollback = BaseDatabaseWrapper.rollback
    landed, undone = [], []

    def write(cursor):
        cursor.execute(
            'UPDATE "orders_customer" SET "credit" = %s WHERE "email" = %s',
            [str(credit), sender],
        )

    def injecting(self, sql, params, many, executor):
        text = sql.lstrip()
        if undone and _names_customers(text):
            undone.clear()
            write(self.cursor)
        elif (not landed and not many and text.upper().startswith("UPDATE")
                and _names_customers(text)
                and _CREDIT.search(_split(text, "WHERE")[0])):
            statement = Statement(sql)
            statement.params = tuple(params or ())
            named = _rows_named(statement, pks)
            if not named or sender in named:
                write(self.cursor)
                landed.append(True)
        return original_execute(self, sql, params, many, executor)

    def rolling_back(self):
        original_rollback(self)
        if landed:
            undone[:] = [True]

    CursorWrapper._execute_with_wrappers = injecting
    BaseDatabaseWrapper.rollback = rolling_back
    try:
        yield landed
    finally:
        CursorWrapper._execute_with_wrappers = original_execute
        BaseDatabaseWrapper.rollback = original_rollback


async def _uses_what_it_locked(transfer_credit, pks, sender, receiver, amount):
    """Whether values read again under the lock are the ones used, or "".

    A credit read unlocked, then locked and read again, is fresh only if the answer uses
    the second read: one that keeps the first objects reads fresh SQL and writes stale
    values. The SQL cannot tell these apart, so this runs two more transfers in which
    "another transfer" commits between the unlocked read and the lock: the write is made on
    the transfer's own connection just before its locking read, where PostgreSQL's locking
    read would see a concurrent commit.
    """
    name = sender.split("@")[0].capitalize()
    start = await credits()
    problems = []
    one = Decimal("1.00")
    changes = {sender: one, receiver: one}  # 1.00 paid to each in between
    with recorded_statements(), a_write_between_read_and_lock(pks, changes) as landed:
        raised = await _raises(as_a_request(transfer_credit, sender, receiver, amount))
    end = await credits()
    expected = (start[sender] + one - amount, start[receiver] + one + amount)
    if landed and (raised or (end[sender], end[receiver]) != expected):
        problems.append(
            f"{name}'s credit was read before the row was locked and saved from that read: "
            "the locking select_for_update() read it again, but its values were not the ones "
            "used, so a transfer committed in between was lost"
        )
    await _put_back(start)
    left = amount - Decimal("0.01")  # a transfer in between spends all but this
    with recorded_statements(), a_write_between_read_and_lock(
        pks, {sender: left - start[sender]}
    ) as landed:
        raised = await _raises(as_a_request(transfer_credit, sender, receiver, amount))
    if landed and not raised:
        problems.append(
            f"{name}'s balance was checked on a value read before the row was locked: the "
            f"locking read found {left}, less than {amount}, yet the transfer went through"
        )
    await _put_back(start)
    return "; ".join(problems)


async def _put_back(credit_by_email):
    for email, credit in credit_by_email.items():
        await Customer.objects.filter(email=email).aupdate(credit=credit)


@contextmanager
def a_write_between_read_and_lock(pks, changes):
    """Add ``changes`` ({email: amount}) to those customers' credit just before the first
    ``select_for_update()`` read, inside a transaction, of a customer whose credit the same
    connection read unlocked before. Yields a list that is not empty once that happened.

    Use inside ``recorded_statements()``, which notes which queries lock.
    """
    original_execute = CursorWrapper._execute_with_wrappers
    read_unlocked, landed = {}, []

    def injecting(self, sql, params, many, executor):
        if _names_customers(sql) and sql.lstrip().upper().startswith("SELECT"):
            statement = Statement(sql)
            statement.params = tuple(params or ()) if not many else ()
            named = _rows_named(statement, pks)
            seen = read_unlocked.setdefault(id(self.db), set())
            if getattr(_compiling, "for_update", False) and self.db.in_atomic_block:
                if named & seen and not landed:
                    for email, change in changes.items():
                        self.cursor.execute(
                            'UPDATE "orders_customer" SET "credit" = "credit" + %s '
                            'WHERE "email" = %s',
                            [change, email],
                        )
                    landed.append(True)
            elif _CREDIT.search(_split(sql, "FROM")[0]):
                seen |= named
        return original_execute(self, sql, params, many, executor)

    CursorWrapper._execute_with_wrappers = injecting
    try:
        yield landed
    finally:
        CursorWrapper._execute_with_wrappers = original_execute


_SECOND_WRITE_FAILS = [
    "CREATE TABLE exercise_customer_writes (n INTEGER NOT NULL)",
    "INSERT INTO exercise_customer_writes VALUES (0)",
    """CREATE TRIGGER exercise_second_write_fails BEFORE UPDATE ON orders_customer
    BEGIN
        UPDATE exercise_customer_writes SET n = n + 1;
        SELECT RAISE(ABORT, 'the database refused this write')
        WHERE (SELECT n FROM exercise_customer_writes) >= 2;
    END""",
]


def _second_write_fails_on():
    """Make the database refuse the second row written to customers, as a constraint or a
    lost connection would: whatever order the writes come in, one has already happened."""
    with connection.cursor() as cursor:
        for statement in _SECOND_WRITE_FAILS:
            cursor.execute(statement)


def _second_write_fails_off():
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER IF EXISTS exercise_second_write_fails")
        cursor.execute("DROP TABLE IF EXISTS exercise_customer_writes")


_slow_reads = False


def _pause_after_reads(execute, sql, params, many, context):
    result = execute(sql, params, many, context)
    if _slow_reads and sql.lstrip().upper().startswith("SELECT"):
        time.sleep(0.02)  # widens the gap between a read and the write that trusts it
    return result


def _slow_down_new_connection(sender, connection, **kwargs):
    connection.execute_wrappers.append(_pause_after_reads)


@contextmanager
def slow_reads():
    """Every SELECT on a connection opened in the block returns 20 ms later.

    Concurrent transfers then overlap reliably, even on a fast machine: an answer that reads
    the balance, checks it and writes it with no transaction (or locking) overspends every
    time, instead of now and then.
    """
    global _slow_reads
    _slow_reads = True
    connection_created.connect(_slow_down_new_connection)
    try:
        yield
    finally:
        connection_created.disconnect(_slow_down_new_connection)
        _slow_reads = False


async def _raises(awaitable):
    try:
        await awaitable
    except Exception:
        return True
    return False


def _show(credit_by_email):
    return ", ".join(f"{email.split('@')[0]} {credit}" for email, credit in credit_by_email.items())


ORDER_LINES = {"TL-001": 1, "BK-002": 3}
LARGER_ORDER_LINES = {"BK-001": 1, "CF-001": 2, "GM-001": 1, "TL-002": 4, "TL-003": 2}


def _make_order(email="grace@example.com", lines=ORDER_LINES):
    customer = Customer.objects.get(email=email)
    order = Order.objects.create(customer=customer)
    for sku, quantity in lines.items():
        product = Product.objects.get(sku=sku)
        OrderLine.objects.create(
            order=order, product=product, quantity=quantity, unit_price=product.price
        )
    return order.pk, {sku: Product.objects.get(sku=sku).name for sku in lines}


def _make_orders():
    """Grace's order of 2 lines, then a newer one of Ada's with 5: a view that shows the
    newest (or the oldest) order whatever its pk shows the wrong one for one of them, and a
    query count that grows with the lines differs between the two."""
    return _make_order(), _make_order("ada@example.com", LARGER_ORDER_LINES)


def _delete_order(pk):
    OrderLine.objects.filter(order_id=pk).delete()
    Order.objects.filter(pk=pk).delete()


async def _get_order_page(view, pk):
    """GET the view's page for order ``pk`` as ASGIHandler serves a request (as_a_request):
    in its own ThreadSensitiveContext, so that the queries can be told apart by thread."""
    from django.test import AsyncClient

    from tutorial_project.course.exercises.probes import _routes
    from tutorial_project.playground import mount, unmount

    route = f"exercise-probe-{next(_routes)}/<int:pk>/"
    mount(route, view)
    try:
        with quiet_request_log():
            client = AsyncClient(raise_request_exception=False)
            return await as_a_request(client.get, f"/{route.split('<')[0]}{pk}/")
    finally:
        unmount(route)


FRESH_CACHE = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
               "LOCATION": "exercise-04"}


async def _after_a_change(change, call):
    """Await ``change`` (a write to the data), then ``call()`` again, and return what it gave:
    an answer that kept its result in the process (a module, a global, a default argument)
    gives the old data. A result kept in Django's cache, with an expiry, is a choice
    (cache_page does it): so the call gets an empty cache of its own."""
    await change
    with _fresh_cache():
        return await call()


@contextmanager
def _fresh_cache():
    with override_settings(CACHES={"default": FRESH_CACHE}):
        caches["default"].clear()
        yield


@contextmanager
def _database_down():
    """Every SQL statement run in the block raises OperationalError, as when the database
    server is down or refuses the connection."""
    original_execute = CursorWrapper._execute_with_wrappers

    def failing(self, sql, params, many, executor):
        raise OperationalError("the database is unavailable (the check made it fail)")

    CursorWrapper._execute_with_wrappers = failing
    try:
        yield
    finally:
        CursorWrapper._execute_with_wrappers = original_execute


ORDER_PAGE_QUERIES = 3  # the order with its customer, its lines, their products


def _check_order_page_queries(check, statements, larger_statements):
    """A page rendered in a thread (``sync_to_async(render)``) answers 200 even when the
    template loads every relation lazily, one query per line: count the queries, and
    those the template ran itself, for an order of 2 lines and one of 5, so that a count
    that grows with the lines is told from a constant one over the budget."""
    while_rendering = sum(s.while_rendering for s in [*statements, *larger_statements])
    check.that(
        while_rendering == 0,
        "the template ran no query of its own: everything it reads was loaded first",
        f"the template ran {while_rendering} queries while rendering: it loaded relations "
        "lazily (in a worker thread, so no SynchronousOnlyOperation, but one query per "
        "relation it touched)",
        hint="load what the template reads before render(): "
        "select_related('customer'), prefetch_related('lines__product')",
    )
    small, large = len(data_queries(statements)), len(data_queries(larger_statements))
    sizes = f"an order of {len(ORDER_LINES)} lines"
    larger = f"one of {len(LARGER_ORDER_LINES)}"
    if large > small:
        check.that(
            False,
            "",
            f"the page took {small} queries for {sizes} and {large} for {larger} "
            "(one or more per line: N+1)",
            hint="prefetch_related('lines__product') loads every line's product in one query",
        )
    else:
        check.that(
            max(small, large) <= ORDER_PAGE_QUERIES,
            f"the page took at most {ORDER_PAGE_QUERIES} queries, for {sizes} and for {larger}",
            f"the page took {max(small, large)} queries for {sizes} and for {larger}: no N+1 "
            f"(the count does not grow with the lines), but over the budget of "
            f"{ORDER_PAGE_QUERIES}",
            hint="select_related('customer') brings the customer in the order's own query; "
            "prefetch_related('lines__product') adds one for the lines and one for their "
            "products",
        )


@exercise("04.3", "Render an order's page from an async view")
async def check_order_page(check, order_page):
    must_be_async(check, order_page, "order_page", "request, pk", kind="view")
    (pk, names), (larger_pk, larger_names) = await sync_to_async(_make_orders)()
    try:
        with async_unsafe_noted() as unsafe:  # unset for the whole check, noted if set
            await _check_order_pages(check, order_page, pk, names, larger_pk, larger_names,
                                     unsafe)
    finally:
        await sync_to_async(_delete_order)(pk)
        await sync_to_async(_delete_order)(larger_pk)


async def _check_order_pages(check, order_page, pk, names, larger_pk, larger_names, unsafe):
    with forgotten_awaits() as missed, recorded_statements() as statements:
        with blocking_calls() as blocked:
            response = await _get_order_page(order_page, pk)
    guard_switched_off(check, unsafe, "load the order with `await "
                       "aget_object_or_404(...)`, everything the template reads included")
    no_forgotten_await(check, missed)
    loop_never_blocked(check, blocked, "order_page")
    check.that(
        response.status_code == 200,
        "it answers 200 for an order that exists",
        f"it answered {response.status_code} for order {pk}",
        hint="the template reads order.customer, order.lines.all and each line's product: "
        "a relation that is not loaded runs a sync query while rendering "
        "(SynchronousOnlyOperation, a 500). Load them all before render(): "
        "select_related('customer'), prefetch_related('lines__product')",
    )
    page = response.content.decode()
    lines = [f"<li>{count} x {sku} {names[sku]}</li>" for sku, count in ORDER_LINES.items()]
    check.that(
        f"Order {pk} for Grace" in page
        and page.count("<li>") == len(lines)
        and all(line in page for line in lines),
        "the page shows the order's customer and its lines with their products",
        f"the page does not show order {pk} for Grace with its {len(lines)} lines: "
        f"{page.strip()[:160]!r}",
        hint="render orders/order_detail.html with {'order': order}, for the order "
        "whose pk the view was given",
    )
    with recorded_statements() as larger_statements:
        larger = await _get_order_page(order_page, larger_pk)
    page = larger.content.decode()
    lines = [f"<li>{n} x {sku} {larger_names[sku]}</li>" for sku, n in
             LARGER_ORDER_LINES.items()]
    check.that(
        larger.status_code == 200 and f"Order {larger_pk} for Ada" in page
        and page.count("<li>") == len(lines) and all(line in page for line in lines),
        "the page of a second order (Ada's, newer, 5 lines) shows that order",
        f"the page of order {larger_pk} (Ada's, {len(lines)} lines; Grace's order {pk} is "
        f"older) answered {larger.status_code}: {page.strip()[:160]!r}",
        hint="load the order whose pk the view was given: "
        "`await aget_object_or_404(queryset, pk=pk)`, not the newest or the first",
    )
    if response.status_code == 200 and larger.status_code == 200:
        _check_order_page_queries(check, statements, larger_statements)
    check.that(
        not any(statement.off_request_thread for statement in statements),
        "its queries ran on the request's own thread (whose connection Django closes)",
        "its queries ran on a thread other than the request's: a connection Django never "
        "closes",
        hint=OFF_THREAD_HINT,
    )
    changed = OrderLine.objects.filter(order_id=pk, product__sku="BK-002").aupdate(quantity=4)
    again = await _after_a_change(changed, lambda: _get_order_page(order_page, pk))
    again = again.content.decode()
    check.that(
        f"<li>4 x BK-002 {names['BK-002']}</li>" in again,
        "a request after a line changed shows the change (nothing kept between requests)",
        "after a line's quantity changed from 3 to 4, the page still showed the old one: "
        "it kept the order from an earlier request",
        hint="load the order in every request: an object kept in a module, a default "
        "argument or a global is stale after any change, and shared by concurrent requests",
    )
    missing = await _get_order_page(order_page, pk + 1000)
    check.that(
        missing.status_code == 404,
        "it answers 404 for an order that does not exist",
        f"it answered {missing.status_code} for an order that does not exist",
        hint="`await aget_object_or_404(queryset, pk=pk)` raises Http404, which Django "
        "turns into a 404",
    )
    with _fresh_cache(), _database_down():
        failed = await _get_order_page(order_page, pk)
    check.that(
        failed.status_code >= 500,
        "when the database fails, it answers a server error, not 404",
        f"when the database failed, it answered {failed.status_code}: an error that is not "
        "a missing order was hidden"
        + (" as 'not found'" if failed.status_code == 404 else ""),
        hint="catch only Order.DoesNotExist (aget_object_or_404 does): any other exception "
        "is a server error, which Django answers 500 and logs",
    )
