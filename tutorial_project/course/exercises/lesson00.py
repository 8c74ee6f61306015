"""Checks for lesson 00 · Your notebook is an event loop."""

import gc
import os
import sys
import threading
import time
import weakref
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import count

from asgiref.sync import SyncToAsync, sync_to_async
from django.core.exceptions import SynchronousOnlyOperation
from django.db import OperationalError

from tutorial_project.course.exercises.attempt import Raised, attempt, fail
from tutorial_project.course.exercises.core import exercise
from tutorial_project.course.exercises.expect import (
    LoopCPU,
    blocking_calls_on_this_thread,
    file_opens_on_this_thread,
    made_by_the_surroundings,
    must_be_async,
    sleeps_on_this_thread,
    sync_cache_calls_on_this_thread,
)
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
# Shorter blocks add up: every gap of the heartbeat longer than HELD counts as time the loop was
# held, and the answer's calls may hold it LOOP_HELD_LIMIT in all. A free loop on a loaded
# 2-core machine wakes within a few ms; a 0.1 s block in each call already adds up to 0.5 s.
HELD, LOOP_HELD_LIMIT = 0.05, 0.4
# A right answer's loop was still held that long at load 8-13 now and then (5 refusals in 33
# runs): a call whose loop was held is timed again, TIMINGS calls at most.
TIMINGS = 3
# Work done on the loop (hashing a password, a long loop in Python) is judged by the loop
# thread's own CPU time in one step (time.thread_time), which a busy machine does not add to,
# so the same answer gets the same verdict under any load. Timed without the blocking-call
# watch (its profile hook slows every call). The longest step of six right answers (reference,
# gather, sync_to_async, ThreadSensitiveContext, annotate, async for), 15 runs each: 2.2 ms at
# most (Django 5.2 and 6.1, load 5 to 9 on 2 cores); a 10 ms step is refused. Windows counts
# thread time in ticks of ~15.6 ms: 35 ms there.
CPU_STEP = 0.035 if sys.platform == "win32" else 0.010
# Last, one call in which every query off the loop's thread takes SLOW_QUERY s more, as on a
# network database: an answer that waits for a worker's result on the loop (polls a Future)
# holds the loop that long, whatever the machine's load; one that awaits leaves it free.
SLOW_QUERY = 0.3
# A category the demo data lacks: its name is not slug.title() and it has 1 product (every demo
# category has 3), out of stock. The check creates it for its run and removes it afterwards.
EXTRA_SLUG, EXTRA_NAME, EXTRA_SKU = "gift-cards", "Gift cards & vouchers", "GC-001"
# Between two of its calls the check renames the extra category: an answer that keeps a Category
# row (or a whole answer) from an earlier call still gives the old name.
RENAMED = "Gift cards"
# Then once more, a few ms after a call: an answer kept for a while (a cache with a timeout)
# whose entry happened to expire just before the first rename is caught by the second.
RENAMED_AGAIN = "Gift cards and vouchers"
# With that second rename the category gets a second product: an answer that asks for the name
# every time but keeps the count (in a dict, a memo) still gives 1.
SECOND_SKU = "GC-002"
# After a probe that fails every query, probes that fail from the answer's 2nd query on, then
# its 3rd ...: a right answer makes one to three queries (an `async for` over the products, one
# more per chunk), so a failure in any of them is met.
FAIL_LATER_PROBES = 3
# And an empty category: it exists, with 0 products (an answer that decides "no such category"
# from a product count, or counts through Product, answers None for it).
EMPTY_SLUG, EMPTY_NAME = "empty-shelf", "Empty shelf"
# A category whose slug starts with EXTRA_SLUG, with 1 product: an answer that counts by
# `category__slug__startswith` (or contains) counts 2 for gift-cards. It is not asked about.
LONGER_SLUG, LONGER_NAME, LONGER_SKU = f"{EXTRA_SLUG}-corporate", "Corporate gift cards", "GC-101"
# Slugs of no category: one no category starts with, the start of "coffee" (an answer that
# matches with slug__startswith or slug__contains finds coffee for it), and "coffee" in capitals
# (a slug is compared as it is: slug__iexact finds coffee for it, and with slugs that differ
# only in case, aget() raises MultipleObjectsReturned).
ABSENT_SLUGS = ("no-such-category", "co", "COFFEE")


@exercise("00.1", "Describe a category with the async ORM")
async def check_category_summary(check, category_summary):
    from tutorial_project.catalog.models import Category, Product  # needs the project started

    must_be_async(check, category_summary, "category_summary", "slug")
    _guard_stays_on(check, before=True)
    await _remove_extra_category(Category, Product)  # left over if an earlier run was stopped
    catalog = await _rows(Category, Product)  # the answer only reads: it must stay as it is
    try:
        await _judge(check, category_summary, Category, Product, catalog)
    finally:
        changed = await _put_back(catalog, Category, Product)
    if changed:
        fail(check, f"your function changed the catalog: {changed} (the check has put it back)",
             WRITES_HINT)


async def _judge(check, category_summary, Category, Product, catalog):
    stalls = []
    # The async ORM's queries run on asgiref's thread-sensitive thread (or, in a
    # ThreadSensitiveContext, as ASGIHandler runs a request, on that context's thread); a query
    # on any other worker thread opens a connection nobody closes.
    orm_thread = await sync_to_async(threading.get_ident)()
    summary = _Summary(check, category_summary, Category, stalls, orm_thread)
    # Asked once before the category exists: an answer that keeps "no such category" from this
    # call still says None once the check has created it.
    before_created = await summary(EXTRA_SLUG)
    if changed := await _put_back(catalog, Category, Product):  # before the check adds rows
        fail(check, f"category_summary({EXTRA_SLUG!r}) changed the catalog: {changed} (the "
                    "check has put it back)", WRITES_HINT)
    extra = await Category.objects.acreate(name=EXTRA_NAME, slug=EXTRA_SLUG)
    longer = await Category.objects.acreate(name=LONGER_NAME, slug=LONGER_SLUG)
    await Category.objects.acreate(name=EMPTY_NAME, slug=EMPTY_SLUG)
    answers = []  # (slug, expected, got), judged once the extra category is gone again
    try:
        for sku, name, category in [(EXTRA_SKU, "Gift card 25", extra),
                                    (LONGER_SKU, "Gift card 500", longer)]:
            await Product.objects.acreate(
                sku=sku, name=name, category=category, price="25.00", stock=0,
                created_at=datetime(2026, 1, 1, tzinfo=UTC),
            )
        slugs = ["books", "coffee", EXTRA_SLUG, EMPTY_SLUG]
        async for category in Category.objects.filter(slug__in=slugs).order_by("pk"):
            expected = {"name": category.name, "products": await category.products.acount()}
            got = await summary(category.slug)
            answers.append((category.slug, expected, got))
        # Asked once more just before the rename: an answer kept even for a few ms is still
        # fresh then, whatever the calls in between took.
        await attempt(check, lambda: category_summary(EXTRA_SLUG),
                      f"category_summary({EXTRA_SLUG!r})")
        await Category.objects.filter(slug=EXTRA_SLUG).aupdate(name=RENAMED)
        renamed = await summary(EXTRA_SLUG)
        await attempt(check, lambda: category_summary(EXTRA_SLUG),
                      f"category_summary({EXTRA_SLUG!r})")
        await Category.objects.filter(slug=EXTRA_SLUG).aupdate(name=RENAMED_AGAIN)
        await Product.objects.acreate(
            sku=SECOND_SKU, name="Gift card 50", category=extra, price="50.00", stock=0,
            created_at=datetime(2026, 1, 1, tzinfo=UTC),
        )
        renamed_again = await attempt(check, lambda: category_summary(EXTRA_SLUG),
                                      f"category_summary({EXTRA_SLUG!r})")
    finally:
        await _remove_extra_category(Category, Product)
    check.that(
        before_created is None,
        f"category_summary({EXTRA_SLUG!r}) is None before the check creates that category",
        f"category_summary({EXTRA_SLUG!r}) returned {before_created!r}, expected None (the check "
        "had not created that category yet)",
        hint=f"{EXTRA_SLUG!r} exists only while the check runs: an answer kept from an earlier "
        f"run is stale. {KEPT_HINT}"
        if isinstance(before_created, dict) and before_created.get("name") in (EXTRA_NAME, RENAMED)
        else MISSING_HINT,
    )
    got_right = {slug: got == expected for slug, expected, got in answers}
    for slug, expected, got in answers:
        # None for the category asked about before it existed, while the one created with it
        # (never asked about before) comes out right: the None was kept from that first call.
        kept = slug == EXTRA_SLUG and got is None and got_right.get(EMPTY_SLUG)
        check.that(
            got == expected,
            f"category_summary({slug!r}) == {expected}",
            f"category_summary({slug!r}) returned {got!r}, expected {expected}",
            hint=(f"the check asked for {slug!r} once before it created that category: a "
                  f"'no such category' kept from that call is stale now. {KEPT_HINT}")
            if kept else _hint_for(got, slug),
        )
    expected = {"name": RENAMED, "products": 1}
    earlier = next((got for slug, _, got in answers if slug == EXTRA_SLUG), None)
    check.that(
        renamed == expected,
        f"after the check renamed it, category_summary({EXTRA_SLUG!r}) == {expected}",
        f"after the check renamed {EXTRA_NAME!r} to {RENAMED!r}, category_summary({EXTRA_SLUG!r}) "
        f"returned {renamed!r}",
        hint=f"it gave what it gave before the rename: a row or an answer kept from an earlier "
        f"call is stale once the database changes. {KEPT_HINT}"
        if renamed == earlier and got_right.get(EXTRA_SLUG) else _hint_for(renamed, EXTRA_SLUG),
    )
    if renamed == expected:
        expected_again = {"name": RENAMED_AGAIN, "products": 2}
        count_kept = renamed_again == {"name": RENAMED_AGAIN, "products": 1}
        check.that(
            renamed_again == expected_again,
            f"renamed once more and given a 2nd product, category_summary({EXTRA_SLUG!r}) == "
            f"{expected_again}",
            f"renamed once more, to {RENAMED_AGAIN!r}, and given a 2nd product, "
            f"category_summary({EXTRA_SLUG!r}) returned {renamed_again!r}",
            hint=f"it gave what it gave a moment before the rename: an answer kept for a while "
            f"(a cache with a timeout) is stale once the database changes. {KEPT_HINT}"
            if renamed_again == renamed
            else f"the name is fresh but the count is the one from an earlier call: a count "
            f"kept between calls is stale once a product is added. {KEPT_HINT}"
            if count_kept else _hint_for(renamed_again, EXTRA_SLUG),
        )
    for absent in ABSENT_SLUGS:
        missing = await summary(absent)
        check.that(
            missing is None,
            f"category_summary({absent!r}) is None",
            f"category_summary({absent!r}) returned {missing!r}, expected None",
            hint=ABSENT_HINTS.get(absent, MISSING_HINT),
        )
    failed, _ = await summary("books", fail_from=1)
    check.that(
        isinstance(failed, Raised),
        "a database error in category_summary('books') reached the caller",
        f"when the database failed (the check made it raise OperationalError), "
        f"category_summary('books') returned {failed!r}",
        hint="an `except` that catches every error hides real failures as 'no such category': "
        "catch only Category.DoesNotExist; and a result kept from an earlier call (a dict or "
        "cache of answers) hides them too. " + KEPT_HINT,
    )
    # Then the database fails from the answer's 2nd query on, its 3rd ...: an `except` around
    # a later query (the count) must let the error through as well. An answer that makes fewer
    # queries than that meets no failure, and must answer right; so must one whose failed
    # query gave nothing to the answer (a stray write left running in the background).
    books = next((expected for slug, expected, _ in answers if slug == "books"), None)
    for first_failing in range(2, 2 + FAIL_LATER_PROBES):
        got, hit = await summary("books", fail_from=first_failing)
        if not hit or got == books:
            if got != books:
                fail(check, f"category_summary('books') returned {got!r}, expected {books}",
                     _hint_for(got, "books"))
            break
        check.that(
            isinstance(got, Raised),
            f"a database error in the {_nth(first_failing)} query of "
            "category_summary('books') reached the caller",
            f"when the database failed from the {_nth(first_failing)} query of your function on "
            f"(the check made it raise OperationalError), category_summary('books') returned "
            f"{got!r}",
            hint="an `except` around a later query (the count) turns a lost or locked database "
            "into a wrong answer (0 products): let database errors reach the caller, and catch "
            "only Category.DoesNotExist around the `aget`",
        )
    from django.db.backends.utils import CursorWrapper

    with _patched([(CursorWrapper, "_execute_with_wrappers", _slowed_off_the_loop)]):
        heartbeat, cpu = await summary.timed_only("books")
    if heartbeat.longest_gap >= STALL:
        # An answer that waits on the loop holds it SLOW_QUERY s longer than with fast queries;
        # one that computes holds it as long either way (a loaded machine stretches its CPU).
        usual = max((gap for gap, _, _ in stalls), default=0.0)
        if cpu >= CPU_STEP and heartbeat.longest_gap < usual + SLOW_QUERY / 2:
            _busy_on_the_loop(check, cpu)
        fail(check, f"while each query took {SLOW_QUERY} s, category_summary('books') held the "
                    f"event loop for {heartbeat.longest_gap:.1f} s: it waited for the query on "
                    "the loop", WAITED_HINT)
    stalls.append((heartbeat.longest_gap, heartbeat.held, cpu))
    held, longest = sum(held for _, held, _ in stalls), max(gap for gap, _, _ in stalls)
    if (cpu := max(cpu for _, _, cpu in stalls)) >= CPU_STEP:
        _busy_on_the_loop(check, cpu)
    check.that(
        longest < STALL and held < LOOP_HELD_LIMIT and not os.environ.get(UNSAFE),
        f"Django's guard stayed on, and the event loop was never held long (under "
        f"{CPU_STEP * 1000:.0f} ms of CPU in a step), even while each query took {SLOW_QUERY} s",
        f"your function held the event loop {held:.1f} s in all over its {len(stalls)} calls "
        f"(the longest block {longest:.2f} s): nothing else could run meanwhile",
        hint=BLOCKING_HINT,
    )


def _slowed_off_the_loop(real):
    loop_thread = threading.get_ident()

    def execute(self, sql, params, many, executor):
        if threading.get_ident() != loop_thread:
            time.sleep(SLOW_QUERY)
        return real(self, sql, params, many, executor)
    return execute


def _nth(n):
    return {2: "2nd", 3: "3rd"}.get(n, f"{n}th")


def _busy_on_the_loop(check, cpu):
    fail(check, f"your function kept the event loop's thread busy for {cpu * 1000:.0f} ms of CPU "
                "in one step: nothing else could run meanwhile", CPU_HINT)


async def _rows(Category, Product):
    """Every Category and Product row, as {model: {pk: {field: value}}}."""
    return {model: {row["id"]: row async for row in model.objects.order_by("pk").values()}
            for model in (Category, Product)}


async def _put_back(before, Category, Product):
    """Put back the rows that differ from ``before`` (an answer wrote), and say which, or ""."""
    now, said = await _rows(Category, Product), []

    def name(model, row):
        return f"{model.__name__} {row.get('sku') or row.get('slug')!r}"

    for model in (Category, Product):  # changed or deleted rows: saved as they were
        for pk, row in before[model].items():
            if now[model].get(pk) != row:
                fields = [f"{field} {value!r} -> {now[model][pk][field]!r}"
                          for field, value in row.items() if pk in now[model]
                          and now[model][pk][field] != value]
                said.append(f"{name(model, row)} {', '.join(fields) or 'deleted'}")
                await model(**row).asave()
    for model in (Product, Category):  # added rows: deleted (a product before its category)
        added = [pk for pk in now[model] if pk not in before[model]]
        said += [f"a new {name(model, now[model][pk])}" for pk in added]
        await model.objects.filter(pk__in=added).adelete()
    return "; ".join(said[:3]) + (f" and {len(said) - 3} more" if len(said) > 3 else "")


async def _remove_extra_category(Category, Product):
    await Product.objects.filter(sku__in=[EXTRA_SKU, SECOND_SKU, LONGER_SKU]).adelete()
    await Category.objects.filter(slug__in=[EXTRA_SLUG, LONGER_SLUG, EMPTY_SLUG]).adelete()


def _only_operational_errors(error):
    """The check's OperationalError, bare or inside a TaskGroup's ExceptionGroup (passed on
    either way: the view answers 500)."""
    if isinstance(error, BaseExceptionGroup):
        return error.split(OperationalError)[1] is None
    return isinstance(error, OperationalError)


class _Summary:
    """Await the answer with what it calls watched and Django's guard checked after it; then,
    unless the database is made to fail, once more with the loop timed (the watch's profile
    hook slows the loop, so the two are never run together)."""

    def __init__(self, check, category_summary, Category, stalls, orm_thread):
        self.check, self.answer, self.Category = check, category_summary, Category
        self.stalls, self.orm_thread = stalls, orm_thread

    async def __call__(self, slug, *, fail_from=None):
        """The answer's outcome; with ``fail_from`` (the database fails from the answer's
        ``fail_from``-th query on), (outcome, whether a query failed)."""
        check, what = self.check, f"category_summary({slug!r})"
        database_fails = fail_from is not None
        try:
            with _blocking_on_the_loop(self.orm_thread, fail_from) as blocked:
                # attempt() spots a forgotten await and drops the answer's frames, so its
                # coroutine is reported now, not blamed on the next run of this check.
                outcome = await attempt(check, lambda: self.answer(slug), what)
        finally:
            _guard_stays_on(check, before=False)
        for found, hint in blocked.found:
            check.that(False, "", f"{what} {found}", hint=hint)
        if isinstance(outcome, Raised):
            error = outcome.error
            if database_fails and blocked.failed and _only_operational_errors(error):
                return outcome, True  # the failure the check caused, passed on: right
            if isinstance(error, SynchronousOnlyOperation):
                check.that(False, "", f"{what} raised SynchronousOnlyOperation",
                           hint=SYNC_QUERY_HINT)
            if isinstance(error, self.Category.DoesNotExist):
                check.that(False, "", f"{what} let Category.DoesNotExist escape",
                           hint="catch Category.DoesNotExist (around the `aget`) and return None")
            if isinstance(error, self.Category.MultipleObjectsReturned):
                check.that(False, "", f"{what} raised {outcome}",
                           hint="look the category up by its whole slug (`slug=slug`): "
                           f"{EXTRA_SLUG!r} also starts {LONGER_SLUG!r}")
            if isinstance(error, TypeError) and "performing aggregation" in str(error):
                check.that(False, "", f"{what} raised {outcome}", hint=GROUP_BY_HINT)
            check.that(False, "", f"{what} raised {outcome}")
        if not database_fails:
            heartbeat, cpu = await self._timed(slug, what)
            self.stalls.append((heartbeat.longest_gap, heartbeat.held, cpu))
            if heartbeat.longest_gap >= STALL and cpu >= CPU_STEP:  # a busy machine stretched it
                _busy_on_the_loop(check, cpu)
            if heartbeat.longest_gap >= STALL:
                fail(check, f"{what} held the event loop for {heartbeat.longest_gap:.1f} s: "
                            "nothing else could run meanwhile", BLOCKING_HINT)
            return outcome
        return outcome, bool(blocked.failed)

    async def timed_only(self, slug):
        """The answer's call timed, not watched: (heartbeat, longest CPU step)."""
        return await self._timed(slug, f"category_summary({slug!r})")

    async def _timed(self, slug, what):
        """(heartbeat, longest CPU step) of the least held of up to TIMINGS timed calls: one
        in which the loop was held is timed again, since a busy machine now and then holds a
        loop that the answer left free, while an answer that blocks holds it every time."""
        best = None
        for _ in range(TIMINGS):
            gc.collect()  # a full collection now is not the answer's stall later
            try:
                async with _LoopHeld(every=0.005) as heartbeat, LoopCPU() as cpu:
                    await attempt(self.check, lambda: self.answer(slug), what)
            finally:
                _guard_stays_on(self.check, before=False)
            if best is None or (heartbeat.held, heartbeat.longest_gap) < (
                    best[0].held, best[0].longest_gap):
                best = heartbeat, cpu.longest
            if heartbeat.longest_gap < HELD:
                break
        return best


class _LoopHeld(Heartbeat):
    """A heartbeat that also adds up its gaps longer than HELD: how long the loop was held."""

    held = 0.0

    def _record_gap(self):
        gap = time.perf_counter() - self._last
        if gap >= HELD:
            self.held += gap
        super()._record_gap()


class _Watched:
    """What `_blocking_on_the_loop` saw: ``found``, (what, hint) pairs; ``failed``, the
    queries it made fail."""

    def __init__(self):
        self.found, self.failed = [], []


@contextmanager
def _blocking_on_the_loop(orm_thread, fail_from=None):
    """Note, as (what, hint) pairs, what the block ran that an async function must not.

    A time.sleep, a sync cache call or a file opened on this (the event loop's) thread holds the
    loop, however short. The async ORM runs its queries on `orm_thread`, or in a
    ThreadSensitiveContext on that context's one thread, with that thread's connection: a
    query on this thread means the sync ORM ran on the loop (the guard switched off, even for
    a moment); one on another thread (`asyncio.to_thread`, `thread_sensitive=False`) opens a
    connection of that thread's own, which Django never closes: still open when the block ends,
    it is noted. With `fail_from`, the block's queries from the `fail_from`-th on raise
    OperationalError, as a locked or lost database would.
    """
    from django.db.backends.utils import CursorWrapper

    loop_thread, watched, off_thread, queries = threading.get_ident(), _Watched(), [], count(1)
    found = watched.found

    def note(what, hint):
        if (what, hint) not in found:
            found.append((what, hint))

    def noted_query(real):
        def execute(self, sql, params, many, executor):
            if threading.get_ident() == loop_thread:
                note("ran an SQL query on the event loop's thread", SYNC_QUERY_HINT)
            elif not _thread_sensitive(orm_thread) and self.db not in off_thread:
                off_thread.append(self.db)  # this call's own connection: closed by the end?
            if fail_from is not None and next(queries) >= fail_from:
                watched.failed.append(sql)
                raise OperationalError("database is locked (a failure the check caused)")
            return real(self, sql, params, many, executor)
        return execute

    patches = [(CursorWrapper, "_execute_with_wrappers", noted_query)]
    with sleeps_on_this_thread() as sleeps, sync_cache_calls_on_this_thread() as cache_calls, \
            blocking_calls_on_this_thread(made_by_the_surroundings) as named, \
            file_opens_on_this_thread() as file_opens, _patched(patches):
        yield watched
    for name in dict.fromkeys(file_opens):
        note(f"opened a file on the event loop's thread: {name}", FILE_HINT)
    if any(db.connection is not None for db in off_thread):
        note("left a database connection open on a thread Django does not manage",
             OFF_THREAD_HINT)
    for name in cache_calls:
        note(f"called the sync cache.{name}() on the event loop's thread", CACHE_HINT)
    for name in dict.fromkeys(named):  # under any name (from time import sleep)
        if not (name == "time.sleep" and sleeps):
            note(f"made a blocking call on the event loop's thread: {name}", BLOCKING_HINT)
    found[:0] = [(f"called time.sleep({seconds}) on the event loop's thread", BLOCKING_HINT)
                 for seconds in sleeps]


def _thread_sensitive(orm_thread):
    """Whether this thread is one that sync_to_async's thread_sensitive=True sends work to:
    `orm_thread`, or the one thread of a ThreadSensitiveContext's executor."""
    if threading.get_ident() == orm_thread:
        return True
    # A ThreadPoolExecutor's worker thread holds a weak reference to its executor as its first
    # argument (CPython 3.11 to 3.14); the executor's own `_threads` set gets the thread only
    # after the thread has started, so it can miss the first query.
    first = (getattr(threading.current_thread(), "_args", None) or (None,))[0]
    executor = first() if isinstance(first, weakref.ref) else None
    return executor is not None and any(
        executor is own for own in list(SyncToAsync.context_to_thread_executor.values())
    )


@contextmanager
def _patched(patches):
    """Replace each (owner, name, make) attribute with make(original) for the block."""
    saved = [(owner, name, owner.__dict__.get(name)) for owner, name, _ in patches]
    for owner, name, make in patches:
        setattr(owner, name, make(getattr(owner, name)))
    try:
        yield
    finally:
        for owner, name, own in saved:
            if own is None:
                delattr(owner, name)
            else:
                setattr(owner, name, own)


ABSENT_HINTS = {
    "co": "look the category up by its whole slug (`slug=slug`): 'co' only starts 'coffee'",
    "COFFEE": "a slug is compared as it is (`slug=slug`, not `slug__iexact`): 'COFFEE' is not "
    "the slug 'coffee'",
}
MISSING_HINT = "`aget()` raises Category.DoesNotExist like `get()`: catch it and return None"
KEPT_HINT = "Ask the database on every call (keep nothing between calls)."
GROUP_BY_HINT = (
    "`values(...).annotate(...)` groups the rows, and Django leaves the model's Meta.ordering "
    "out of a group-by, so `afirst()` has no order to take the first row by: give one, "
    '`.order_by("name")` (on Django 6.1 a bare `.order_by()` also stops the error, with no '
    "ORDER BY at all: any row, fine for the one row a slug finds; 5.2 and 6.0 still raise)"
)
WRITES_HINT = (
    "describing a category only reads: no `aupdate()`, `asave()`, `acreate()` or "
    "`aget_or_create()`, and no task started to write in the background"
)
OFF_THREAD_HINT = (
    "`asyncio.to_thread` and `sync_to_async(..., thread_sensitive=False)` run the ORM on a "
    "pool thread, which opens a connection of its own that Django never closes (its request "
    "cycle closes only its own threads' connections): one left open per pool thread, as long as "
    "the thread lives. Use the a-methods, or `sync_to_async(fn)` with its default "
    "thread_sensitive=True (Django's one ORM thread and its connection); or close it yourself, "
    "`connection.close()` in a `finally`"
)
FILE_HINT = (
    "reading a file waits for the disk on the loop (slow on a network drive or a busy disk), "
    "and nothing warns you: read it in a thread, `await sync_to_async(path.read_text)()`, or "
    "better, ask the database for what you need"
)
CACHE_HINT = (
    "the sync cache API waits on the loop (a network round trip with Redis or Memcached): "
    "`await cache.aget(...)`, `await cache.aset(...)` (with Django's backends, the sync call "
    "run in the thread the ORM's a-methods use)"
)
CPU_HINT = (
    "work that computes (hashing a password, a long Python loop) holds the loop too: run it in "
    "a thread, `await sync_to_async(fn)()`"
)
WAITED_HINT = (
    "waiting for a worker thread's result on the loop (polling a Future's done(), a "
    "`.result()`) holds the loop for the whole query: `await` it, `await sync_to_async(fn)()` "
    "or the a-methods"
)
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
    if slug == EXTRA_SLUG and isinstance(got, dict) and got.get("products") == 2:
        return (
            f"the check added {LONGER_SLUG!r} too (1 product, {LONGER_NAME!r}): count this "
            "category's products, `await category.products.acount()`, not those of every "
            "category your filter matches (a slug or a name it starts with or contains)"
        )
    if slug == EXTRA_SLUG:
        return (
            f"the check added {slug!r} for this run ({EXTRA_NAME!r}, 1 product, out of stock): "
            "count all of this category's products, `await category.products.acount()`, "
            "and return `category.name`"
        )
    return "return {'name': category.name, 'products': await category.products.acount()}"
