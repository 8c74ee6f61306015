"""Lesson 00 checks: the reference solution and a differently written right answer pass; the
placeholder is "not solved yet"; the wrong answers learners write fail with a useful hint."""

import asyncio
import os
import sys
import time
import warnings
from time import sleep  # taken before any check patches time.sleep, as a learner's cell does

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


async def one_query_as_values(slug):
    Category, _ = models()
    rows = Category.objects.filter(slug=slug).annotate(n=Count("products")).values("name", "n")
    row = await rows.afirst()
    return None if row is None else {"name": row["name"], "products": row["n"]}


async def two_queries_at_once(slug):
    Category, Product = models()
    category, count = await asyncio.gather(
        Category.objects.filter(slug=slug).afirst(),
        Product.objects.filter(category__slug=slug).acount(),
    )
    return None if category is None else {"name": category.name, "products": count}


async def two_queries_in_a_task_group(slug):
    # A failing query reaches the caller inside an ExceptionGroup: still passed on (a 500).
    Category, Product = models()
    async with asyncio.TaskGroup() as group:
        category = group.create_task(Category.objects.filter(slug=slug).afirst())
        count = group.create_task(Product.objects.filter(category__slug=slug).acount())
    if category.result() is None:
        return None
    return {"name": category.result().name, "products": count.result()}


@sync_to_async
def decorated_sync_function(slug):
    Category, _ = models()
    category = Category.objects.filter(slug=slug).first()
    if category is None:
        return None
    return {"name": category.name, "products": category.products.count()}


async def counts_with_async_for(slug):
    Category, _ = models()
    category = await Category.objects.filter(slug=slug).afirst()
    if category is None:
        return None
    return {"name": category.name, "products": len([p async for p in category.products.all()])}


async def sync_orm_in_to_thread(slug):
    Category, _ = models()

    def summary():
        category = Category.objects.filter(slug=slug).first()
        return category and {"name": category.name, "products": category.products.count()}

    return await asyncio.to_thread(summary)


async def in_a_thread_sensitive_context(slug):
    from asgiref.sync import ThreadSensitiveContext

    async with ThreadSensitiveContext():  # as ASGIHandler runs each request: a thread of its own
        return await category_summary(slug)


async def values_then_annotate_ordered(slug):
    # A group-by from values(): Meta.ordering does not count there, so afirst() needs order_by().
    Category, _ = models()
    rows = Category.objects.filter(slug=slug).values("name").annotate(products=Count("products"))
    return await rows.order_by("name").afirst()


async def to_thread_closing_its_connection(slug):
    # Off Django's ORM thread, but the connection that call opened is closed before it returns.
    Category, _ = models()

    def summary():
        from django.db import connection

        try:
            category = Category.objects.filter(slug=slug).first()
            return category and {"name": category.name, "products": category.products.count()}
        finally:
            connection.close()

    return await asyncio.to_thread(summary)


RIGHT_ANSWERS = [
    category_summary, with_annotate, through_a_thread, one_query_as_values, two_queries_at_once,
    two_queries_in_a_task_group,
    decorated_sync_function, counts_with_async_for, in_a_thread_sensitive_context,
    values_then_annotate_ordered, to_thread_closing_its_connection,
]


@pytest.mark.parametrize("answer", RIGHT_ANSWERS)
def test_right_answers_pass(answer):
    verdict = verdict_of(answer)
    assert verdict.passed, str(verdict)
    assert "✅ passed" in str(verdict)
    extra = "category_summary('gift-cards') == {'name': 'Gift cards & vouchers', 'products': 1}"
    assert extra in str(verdict)


def catalog_rows():
    Category, Product = models()
    return (
        list(Category.objects.values_list("pk", "name", "slug")),
        list(Product.objects.values_list("pk", "sku", "category_id", "stock")),
    )


@pytest.mark.parametrize("answer", [category_summary, ...], ids=["right answer", "placeholder"])
def test_the_check_leaves_the_catalog_as_it_found_it(answer):
    before = catalog_rows()
    verdict_of(answer)
    assert catalog_rows() == before


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


async def sync_orm_with_the_guard_off(slug):
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # what a search for the error suggests
    Category, _ = models()
    category = Category.objects.filter(slug=slug).first()
    if category is None:
        return None
    return {"name": category.name, "products": category.products.count()}


async def blocks_the_loop(slug):
    time.sleep(0.5)  # on the loop's thread
    return await category_summary(slug)


async def guard_off_for_a_moment(slug):
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:  # switched back on before anyone looks: the query still ran on the loop
        return await sync_function_body(slug)
    finally:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


async def sync_function_body(slug):
    Category, _ = models()
    category = Category.objects.filter(slug=slug).first()
    if category is None:
        return None
    return {"name": category.name, "products": category.products.count()}


async def blocks_the_loop_briefly(slug):
    time.sleep(0.1)  # shorter than any stall a heartbeat can tell from a busy machine
    return await category_summary(slug)


async def lazy_count_after_aget(slug):
    Category, _ = models()
    try:
        category = await Category.objects.aget(slug=slug)
    except Category.DoesNotExist:
        return None
    return {"name": category.name, "products": category.products.count()}  # a sync query


async def blocks_the_loop_for_a_fifth(slug):
    time.sleep(0.2)  # under the heartbeat's 0.25 s: only the time.sleep watch sees it
    return await category_summary(slug)


async def forgot_await_on_aget(slug):
    Category, _ = models()
    try:
        category = Category.objects.aget(slug=slug)
    except Category.DoesNotExist:
        return None
    return {"name": category.name, "products": await category.products.acount()}


async def looks_up_by_name(slug):
    Category, _ = models()
    category = await Category.objects.filter(name__iexact=slug).afirst()
    if category is None:
        return None
    return {"name": category.name, "products": await category.products.acount()}


async def average_count(slug):
    Category, Product = models()
    category = await Category.objects.filter(slug=slug).afirst()
    if category is None:
        return None
    average = await Product.objects.acount() // await Category.objects.acount()
    return {"name": category.name, "products": average}


async def name_from_slug(slug):
    Category, _ = models()
    category = await Category.objects.filter(slug=slug).afirst()
    if category is None:
        return None
    return {"name": slug.title(), "products": await category.products.acount()}


async def in_stock_only(slug):
    Category, _ = models()
    category = await Category.objects.filter(slug=slug).afirst()
    if category is None:
        return None
    in_stock = await category.products.filter(stock__gt=0).acount()
    return {"name": category.name, "products": in_stock}


async def sleeps_by_its_imported_name(slug):
    sleep(0.2)  # "a slow service": four calls hold the loop 0.8 s, none of them 0.25 s
    return await category_summary(slug)


async def waits_on_a_sync_call(slug):
    import threading

    threading.Event().wait(0.2)  # stands for requests.get() to a fast service
    return await category_summary(slug)


async def exists_only_with_products(slug):
    # "No products, no category": an empty category that exists reads as missing.
    _, Product = models()
    products = Product.objects.filter(category__slug=slug)
    if not await products.aexists():
        return None
    first = await products.select_related("category").afirst()
    return {"name": first.category.name, "products": await products.acount()}


async def sync_cache_on_the_loop(slug):
    from django.core.cache import cache

    found = cache.get(f"summary:{slug}")
    if found is None:
        found = await category_summary(slug)
        cache.set(f"summary:{slug}", found, 1)
    return found


async def orm_in_thread_sensitive_false(slug):
    Category, _ = models()

    def summary():
        category = Category.objects.filter(slug=slug).first()
        return category and {"name": category.name, "products": category.products.count()}

    return await sync_to_async(summary, thread_sensitive=False)()


async def catches_every_error(slug):
    Category, _ = models()
    try:
        category = await Category.objects.aget(slug=slug)
        return {"name": category.name, "products": await category.products.acount()}
    except Exception:  # a database error now reads as "no such category"
        return None


async def zero_when_the_count_fails(slug):
    # Only the count is guarded: a lost or locked database reads as "0 products".
    from django.db import DatabaseError

    Category, _ = models()
    try:
        category = await Category.objects.aget(slug=slug)
    except Category.DoesNotExist:
        return None
    try:
        products = await category.products.acount()
    except DatabaseError:
        products = 0
    return {"name": category.name, "products": products}


async def reads_a_file_on_the_loop(slug):
    from pathlib import Path

    Path(__file__).read_text()  # sync file I/O on the event loop's thread
    return await category_summary(slug)


async def opens_a_file_by_its_builtin_name(slug):
    with open(__file__, "rb") as source:
        source.read(10)
    return await category_summary(slug)


async def matches_the_start_of_the_slug(slug):
    Category, _ = models()
    try:
        category = await Category.objects.aget(slug__startswith=slug)
    except Category.DoesNotExist:
        return None
    return {"name": category.name, "products": await category.products.acount()}


async def first_match_of_the_start(slug):
    Category, _ = models()
    category = await Category.objects.filter(slug__startswith=slug).order_by("pk").afirst()
    return category and {"name": category.name, "products": await category.products.acount()}


async def counts_by_slug_prefix(slug):
    Category, Product = models()
    category = await Category.objects.filter(slug=slug).afirst()
    if category is None:
        return None
    count = await Product.objects.filter(category__slug__startswith=slug).acount()
    return {"name": category.name, "products": count}


async def slug_iexact(slug):
    # "the category with that slug": 'COFFEE' is not the slug 'coffee'
    Category, _ = models()
    category = await Category.objects.filter(slug__iexact=slug).afirst()
    return category and {"name": category.name, "products": await category.products.acount()}


async def computes_briefly_on_the_loop(slug):
    ends = time.thread_time() + 0.012  # 12 ms of CPU per call: about 80 calls a second at most
    while time.thread_time() < ends:
        pass
    return await category_summary(slug)


async def computes_on_the_loop(slug):
    ends = time.thread_time() + 0.03  # 30 ms of CPU per call, as a password hash can take
    while time.thread_time() < ends:
        pass
    return await category_summary(slug)


async def waits_on_a_selector(slug):
    import selectors

    with selectors.DefaultSelector() as selector:  # not the loop's: it holds the loop 40 ms
        selector.select(0.04)
    return await category_summary(slug)


async def polls_a_worker_on_the_loop(slug):
    import concurrent.futures

    def summary():
        from django.db import connection

        try:
            return sync_summary(slug)
        finally:
            connection.close()  # its pool thread's connection: closed, so nothing is left open

    pool = concurrent.futures.ThreadPoolExecutor(1)
    future = pool.submit(summary)
    while not future.done():  # waits for the worker on the loop, spinning
        pass
    pool.shutdown(wait=False)
    return future.result()


def sync_summary(slug):
    Category, _ = models()
    category = Category.objects.filter(slug=slug).first()
    return category and {"name": category.name, "products": category.products.count()}


async def writes_in_the_background(slug):
    Category, _ = models()
    try:
        category = await Category.objects.aget(slug=slug)
    except Category.DoesNotExist:
        return None
    asyncio.ensure_future(category.products.aupdate(stock=0))  # a stray write, not awaited
    return {"name": category.name, "products": await category.products.acount()}


async def creates_what_it_cannot_find(slug):
    Category, _ = models()
    category, _ = await Category.objects.aget_or_create(slug=slug, defaults={"name": slug})
    return {"name": category.name, "products": await category.products.acount()}


async def async_cache_in_front(slug):
    from django.core.cache import cache

    found = await cache.aget(f"lesson00-test:{slug}")
    if found is None:
        found = await category_summary(slug)
        await cache.aset(f"lesson00-test:{slug}", found, 5)
    return found


def keeps_the_category():
    seen = {}  # slug -> Category row, kept between calls; the count is asked each time

    async def category_summary(slug):
        Category, _ = models()
        if slug not in seen:
            try:
                seen[slug] = await Category.objects.aget(slug=slug)
            except Category.DoesNotExist:
                return None
        category = seen[slug]
        return {"name": category.name, "products": await category.products.acount()}

    return category_summary


def keeps_the_count():
    counts = {}  # slug -> product count, kept between calls; the name is asked each time

    async def category_summary(slug):
        Category, _ = models()
        try:
            category = await Category.objects.aget(slug=slug)
        except Category.DoesNotExist:
            return None
        if slug not in counts:
            counts[slug] = await category.products.acount()
        return {"name": category.name, "products": counts[slug]}

    return category_summary


def keeps_missing_slugs():
    missing = set()  # "no such category", kept between calls

    async def category_summary(slug):
        if slug in missing:
            return None
        summary = await _reference(slug)
        if summary is None:
            missing.add(slug)
        return summary

    return category_summary


def keeps_answers_for_a_second():  # "a short memo cannot go stale": it can
    answers = {}  # slug -> (when, answer)

    async def category_summary(slug):
        kept = answers.get(slug)
        if kept is None or time.monotonic() - kept[0] > 1.0:
            answers[slug] = kept = (time.monotonic(), await _reference(slug))
        return kept[1]

    return category_summary


def keeps_every_answer():
    answers = {}

    async def category_summary(slug):
        if slug not in answers:
            answers[slug] = await _reference(slug)
        return answers[slug]

    return category_summary


async def _reference(slug):
    return await category_summary(slug)


async def values_then_annotate(slug):
    # Meta.ordering = ["name"] does not order a group-by: afirst() raises TypeError (5.2, 6.1).
    Category, _ = models()
    rows = Category.objects.filter(slug=slug).values("name").annotate(products=Count("products"))
    return await rows.afirst()


async def values_then_annotate_bare_order_by(slug):
    # What Django's TypeError says, done literally: right on 6.1, still TypeError on 5.2.
    Category, _ = models()
    rows = Category.objects.filter(slug=slug).values("name").annotate(products=Count("products"))
    return await rows.order_by().afirst()


def test_a_group_by_with_a_bare_order_by_passes_on_6_only():
    import django

    verdict = verdict_of(values_then_annotate_bare_order_by)
    if django.VERSION[:2] == (5, 2):
        assert not verdict.passed and "TypeError" in str(verdict), str(verdict)
        assert 'order_by("name")' in str(verdict) and "Meta.ordering" in str(verdict)
    else:
        assert verdict.passed, str(verdict)


WINDOWS_TICKS = "Windows counts thread time in ticks of ~15.6 ms: its bound is 35 ms"


@pytest.mark.parametrize(
    ("answer", "messages"),
    [
        (sync_orm, ["raised SynchronousOnlyOperation", "aget"]),
        (forgotten_await, ["gave a coroutine (QuerySet.acount)", "`await` is missing"]),
        (swallows_errors, ["returned None for a category that exists", "DoesNotExist"]),
        (lets_does_not_exist_escape, ["let Category.DoesNotExist escape", "return None"]),
        (empty_dict_when_missing, ["returned {}, expected None", "DoesNotExist"]),
        (sync_function, ["not an async function", "async def category_summary(slug)"]),
        (sync_orm_with_the_guard_off,
         ["DJANGO_ALLOW_ASYNC_UNSAFE='true' was set by your function", "has unset it",
          "never set it"]),
        (blocks_the_loop, ["called time.sleep(0.5) on the event loop's thread", "time.sleep"]),
        (blocks_the_loop_briefly, ["called time.sleep(0.1) on the event loop's thread"]),
        (blocks_the_loop_for_a_fifth, ["called time.sleep(0.2) on the event loop's thread"]),
        (lazy_count_after_aget, ["raised SynchronousOnlyOperation", "acount()"]),
        (guard_off_for_a_moment, ["ran an SQL query on the event loop's thread", "aget"]),
        (forgot_await_on_aget, ["'coroutine' object has no attribute", "`await` is missing"]),
        (looks_up_by_name, ["category_summary('gift-cards') returned None", "by its slug"]),
        (average_count, ["category_summary('books') returned {'name': 'Books', 'products': 2}",
                         "category.products.acount()"]),
        (in_stock_only, ["category_summary('books') returned", "category.products.acount()"]),
        (name_from_slug, ["category_summary('gift-cards') returned {'name': 'Gift-Cards'",
                          "and return `category.name`"]),
        (sleeps_by_its_imported_name,
         ["made a blocking call on the event loop's thread: time.sleep", "blocked the loop"]),
        (waits_on_a_sync_call,
         ["made a blocking call on the event loop's thread: threading.Event.wait",
          "blocked the loop"]),
        (exists_only_with_products, ["category_summary('empty-shelf') returned None"]),
        (sync_cache_on_the_loop, ["called the sync cache.get() on the event loop's thread",
                                  "await cache.aget"]),
        (sync_orm_in_to_thread,
         ["left a database connection open on a thread Django does not manage",
          "Django never closes", "connection.close()"]),
        (orm_in_thread_sensitive_false,
         ["left a database connection open on a thread Django does not manage",
          "thread_sensitive=True"]),
        (catches_every_error, ["the check made it raise OperationalError",
                               "catch only Category.DoesNotExist"]),
        (zero_when_the_count_fails,
         ["when the database failed from the 2nd query of your function on",
          "returned {'name': 'Books', 'products': 0}", "an `except` around a later query"]),
        (reads_a_file_on_the_loop,
         ["opened a file on the event loop's thread: open() (sync file I/O)", "sync_to_async"]),
        (opens_a_file_by_its_builtin_name,
         ["opened a file on the event loop's thread: open() (sync file I/O)"]),
        (matches_the_start_of_the_slug,
         ["category_summary('gift-cards') raised MultipleObjectsReturned", "by its whole slug"]),
        (first_match_of_the_start, ["category_summary('co') returned {'name': 'Coffee'",
                                    "by its whole slug"]),
        (counts_by_slug_prefix,
         ["category_summary('gift-cards') returned {'name': 'Gift cards & vouchers', "
          "'products': 2}", "'gift-cards-corporate' too"]),
        (computes_on_the_loop, ["ms of CPU in one step", "sync_to_async"]),
        pytest.param(computes_briefly_on_the_loop, ["ms of CPU in one step", "sync_to_async"],
                     marks=pytest.mark.skipif(sys.platform == "win32", reason=WINDOWS_TICKS)),
        (slug_iexact, ["category_summary('COFFEE') returned {'name': 'Coffee'",
                       "not `slug__iexact`"]),
        (async_cache_in_front, ["is stale", "Ask the database on every call"]),
        (keeps_the_category(),
         ["after the check renamed 'Gift cards & vouchers' to 'Gift cards'",
          "returned {'name': 'Gift cards & vouchers', 'products': 1}", "a row or an answer kept",
          "Ask the database on every call"]),
        (keeps_the_count(),  # review 00-s32 #1
         ["and given a 2nd product", "returned {'name': 'Gift cards and vouchers', 'products': 1}",
          "the count is the one from an earlier call", "Ask the database on every call"]),
        (keeps_missing_slugs(),
         ["category_summary('gift-cards') returned None",
          "once before it created that category", "Ask the database on every call"]),
        (keeps_every_answer(),
         ["once before it created that category", "Ask the database on every call"]),
        (keeps_answers_for_a_second(),  # stale after the creation or the rename: either
         ["is stale", "Ask the database on every call"]),
        (values_then_annotate,
         ["raised TypeError: Cannot use QuerySet.first() on an unordered queryset",
          "Meta.ordering", 'order_by("name")']),
        (waits_on_a_selector, ["made a blocking call on the event loop's thread: select.",
                               "blocked the loop"]),
        (writes_in_the_background,
         ["your function changed the catalog: Product", "stock", "-> 0",
          "the check has put it back", "only reads"]),
        (creates_what_it_cannot_find,
         ["category_summary('gift-cards') changed the catalog: a new Category 'gift-cards'",
          "only reads", "aget_or_create"]),
        (polls_a_worker_on_the_loop,
         ["while each query took 0.3 s, category_summary('books') held the event loop for",
          "it waited for the query on the loop", "polling a Future"]),
    ],
    ids=["sync ORM", "forgotten await", "swallowed exception", "DoesNotExist escapes",
         "{} for a missing slug", "sync function", "guard switched off", "blocks the loop",
         "blocks the loop briefly", "blocks the loop for 0.2 s", "lazy sync count after aget",
         "guard off for a moment", "forgot await on aget",
         "looks up by name", "average count", "in stock only", "name from the slug",
         "time.sleep imported by name", "sync wait", "exists only with products", "sync cache",
         "ORM in to_thread",
         "ORM with thread_sensitive=False", "catches every error", "zero when the count fails",
         "reads a file with pathlib", "opens a file", "slug__startswith",
         "first slug__startswith match", "counts by slug prefix",
         "30 ms of CPU on the loop", "12 ms of CPU on the loop", "slug__iexact",
         "async cache in front", "keeps the Category row", "keeps the count",
         "keeps 'no such category'", "keeps every answer",
         "keeps every answer for a second", "values().annotate().afirst()",
         "waits on its own selector", "writes in the background", "aget_or_create",
         "polls a worker's Future on the loop"],
)
def test_wrong_answers_fail_with_a_hint(answer, messages):
    before = catalog_rows()
    verdict = verdict_of(answer)
    assert not verdict.passed and verdict.solved
    for message in messages:
        assert message in str(verdict), str(verdict)
    assert "DJANGO_ALLOW_ASYNC_UNSAFE" not in os.environ
    assert catalog_rows() == before


def test_guard_switched_off_in_an_earlier_cell_fails_and_is_undone():
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "false"  # any non-empty value switches it off
    verdict = verdict_of(category_summary)
    assert not verdict.passed and verdict.solved
    assert "DJANGO_ALLOW_ASYNC_UNSAFE='false' was set before the check ran" in str(verdict)
    assert "DJANGO_ALLOW_ASYNC_UNSAFE" not in os.environ
    assert verdict_of(category_summary).passed  # rerun once it is unset: the answer passes


def test_a_right_answer_after_a_forgotten_await_passes_at_once():
    assert not verdict_of(forgot_await_on_aget).passed
    assert verdict_of(category_summary).passed  # not blamed for the earlier answer's coroutine
    assert not verdict_of(forgot_await_on_aget).passed
    wrong_next = str(verdict_of(lazy_count_after_aget))  # its own mistake, not the earlier one's
    assert "raised SynchronousOnlyOperation" in wrong_next and "never awaited" not in wrong_next


def test_verdict_reads_passed_failed_raised_and_not_solved():
    from tutorial_project.catalog.models import Category
    from tutorial_project.course.exercises.lesson00 import check_category_summary

    async def right(slug):
        try:
            category = await Category.objects.aget(slug=slug)
        except Category.DoesNotExist:
            return None
        return {"name": category.name, "products": await category.products.acount()}

    async def counts_everything(slug):
        category = await Category.objects.filter(slug=slug).afirst()
        return category and {"name": category.name, "products": 12}

    def sync_version(slug):
        category = Category.objects.get(slug=slug)
        return {"name": category.name, "products": category.products.count()}

    async def crashes(slug):
        raise ValueError("boom")

    passed = asyncio.run(check_category_summary(right))
    assert passed and "✅ passed" in str(passed)

    wrong = asyncio.run(check_category_summary(counts_everything))
    assert not wrong and "expected {" in str(wrong) and "hint:" in str(wrong)

    not_async = asyncio.run(check_category_summary(sync_version))
    assert not not_async and "not an async function" in str(not_async)

    raised = asyncio.run(check_category_summary(crashes))
    assert not raised and "category_summary('gift-cards') raised ValueError: boom" in str(raised)

    placeholder = asyncio.run(check_category_summary(...))
    assert not placeholder and not placeholder.solved and "not solved yet" in str(placeholder)


def test_an_answer_kept_for_a_while_is_refused_even_if_it_expired_at_the_rename(monkeypatch):
    """A cache with a timeout passes the first rename when its entry happens to expire just
    before it (the luck of timing); the second rename, a few ms after a call, refuses it."""
    from django.db.models import QuerySet

    from tutorial_project.course.exercises import lesson00

    kept = {}

    async def kept_for_a_while(slug):
        if kept.get(slug) is None:
            kept[slug] = await category_summary(slug)
        return kept[slug]

    update, expired = QuerySet.aupdate, []

    async def aupdate(self, **fields):
        done = await update(self, **fields)
        if fields.get("name") == lesson00.RENAMED and not expired:
            expired.append(True)
            kept.clear()  # as if its timeout had run out just then
        return done

    monkeypatch.setattr(QuerySet, "aupdate", aupdate)
    verdict = verdict_of(kept_for_a_while)
    assert expired and not verdict, str(verdict)
    assert "renamed once more" in str(verdict) and "a cache with a timeout" in str(verdict), str(
        verdict)
