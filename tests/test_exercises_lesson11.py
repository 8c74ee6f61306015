"""Lesson 11's exercise checks: the reference answers pass; placeholders and the wrong answers
learners write fail with a hint that names the mistake; right answers written differently pass."""

import asyncio
import threading
from time import sleep

from django.http import HttpResponse, JsonResponse

REFERENCE_CHOICES = {
    "show the product's price in the page": "await",
    "send the order confirmation email": "task",
    "rebuild the sales report, which takes two minutes": "task",
    "check the customer's credit before accepting the order": "await",
    "tell the warehouse about the order, whose API is often slow": "task",
}


def run(check, answer):
    return asyncio.run(check(answer))


# --- 11.1 -------------------------------------------------------------------------------------


def paginators():
    from django.core import paginator as django_paginator

    from tutorial_project.catalog.models import Product

    return django_paginator, Product.objects.order_by("sku")


async def page_in_a_thread(number):  # the 5.2 way; runs on 6.x too
    from asgiref.sync import sync_to_async

    django_paginator, products = paginators()
    paginator = django_paginator.Paginator(products, 5)
    return await sync_to_async(lambda: [p.sku for p in paginator.get_page(number)])()


async def page_of_values_in_a_thread(number):  # right, written differently: SKUs paginated
    from asgiref.sync import sync_to_async

    django_paginator, products = paginators()
    paginator = django_paginator.Paginator(products.values_list("sku", flat=True), per_page=5)

    def skus():
        return list(paginator.get_page(number).object_list)

    return await sync_to_async(skus)()


async def page_in_two_hops(number):  # right: get_page in one hop, the (lazy) page in another
    from asgiref.sync import sync_to_async

    django_paginator, products = paginators()
    paginator = django_paginator.Paginator(products.values_list("sku", flat=True), per_page=5)
    page = await sync_to_async(paginator.get_page)(number)
    return await sync_to_async(list)(page)


async def page_then_async_for(number):  # right: get_page in a hop, its rows by the async ORM
    from asgiref.sync import sync_to_async

    django_paginator, products = paginators()
    page = await sync_to_async(django_paginator.Paginator(products, 5).get_page)(number)
    return [p.sku async for p in page.object_list]


async def ordered_by_pk(number):  # the demo rows' pk order is their SKU order: not the check's
    from asgiref.sync import sync_to_async

    from tutorial_project.catalog.models import Product

    django_paginator, _ = paginators()
    paginator = django_paginator.Paginator(Product.objects.order_by("pk"), 5)
    return await sync_to_async(lambda: [p.sku for p in paginator.get_page(number)])()


async def page_by_hand(number):  # no paginator at all
    from tutorial_project.catalog.models import Product

    skus = [sku async for sku in Product.objects.order_by("sku").values_list("sku", flat=True)]
    pages = max(1, (len(skus) + 4) // 5)
    try:
        number = min(max(int(number), 1), pages)
    except ValueError:
        number = 1
    return skus[(number - 1) * 5 : number * 5]


async def page_by_hand_like_django(number):  # right numbers, but no paginator at all
    from tutorial_project.catalog.models import Product

    skus = [sku async for sku in Product.objects.order_by("sku").values_list("sku", flat=True)]
    pages = max(1, (len(skus) + 4) // 5)
    try:
        number = int(number)
    except ValueError:
        number = 1
    if not 1 <= number <= pages:
        number = pages
    return skus[(number - 1) * 5 : number * 5]


async def whole_table_in_memory(number):  # right SKUs, but every row loaded for one page
    django_paginator, products = paginators()
    everything = [product async for product in products]
    page = django_paginator.Paginator(everything, 5).get_page(number)
    return [product.sku for product in page]


async def fetched_queryset(number):  # the QuerySet evaluated first: the same whole table
    from asgiref.sync import sync_to_async

    django_paginator, products = paginators()
    [product async for product in products]  # fills the QuerySet's cache
    paginator = django_paginator.Paginator(products, 5)
    return await sync_to_async(lambda: [p.sku for p in paginator.get_page(number)])()


async def page_on_a_pool_thread(number):  # thread_sensitive=False: a connection never closed
    from asgiref.sync import sync_to_async

    django_paginator, products = paginators()
    paginator = django_paginator.Paginator(products, 5)
    skus = sync_to_async(lambda: [p.sku for p in paginator.get_page(number)],
                         thread_sensitive=False)
    return await skus()


async def sleeps_on_the_loop(number):  # time.sleep in async code holds the event loop
    import time

    time.sleep(0.05)
    return await page_in_a_thread(number)


async def sleep_imported_by_name(number):  # `from time import sleep`: still blocking
    sleep(0.001)
    return await page_in_a_thread(number)


async def waits_on_an_event(number):  # Event.wait on the loop: blocking, however short
    threading.Event().wait(0.05)
    return await page_in_a_thread(number)


async def strict_page(number):  # page() instead of get_page(): raises out of range
    from asgiref.sync import sync_to_async

    django_paginator, products = paginators()
    paginator = django_paginator.Paginator(products, 5)
    return await sync_to_async(lambda: [p.sku for p in paginator.page(number)])()


async def unordered(number):
    from tutorial_project.catalog.models import Product

    newest_first = Product.objects.order_by("-sku").values_list("sku", flat=True)
    return [sku async for sku in newest_first][:5]


async def sync_paginator_on_the_loop(number):  # sync ORM in async code
    django_paginator, products = paginators()
    return [p.sku for p in django_paginator.Paginator(products, 5).get_page(number)]


async def forgotten_await(number):
    from asgiref.sync import sync_to_async

    django_paginator, products = paginators()
    paginator = django_paginator.Paginator(products, 5)
    return sync_to_async(lambda: [p.sku for p in paginator.get_page(number)])()


async def page_object_list(number):  # a lazy QuerySet slice: it would query on the loop
    from asgiref.sync import sync_to_async

    django_paginator, products = paginators()
    paginator = django_paginator.Paginator(products, 5)
    page = await sync_to_async(paginator.get_page)(number)
    return page.object_list.values_list("sku", flat=True)


_KEPT = {}


async def paginator_kept_across_calls(number):  # one Paginator for the module: a stale count
    from asgiref.sync import sync_to_async

    if "paginator" not in _KEPT:
        django_paginator, products = paginators()
        _KEPT["paginator"] = django_paginator.Paginator(products, 5)
    paginator = _KEPT["paginator"]
    return await sync_to_async(lambda: [p.sku for p in paginator.get_page(number)])()


async def with_orphans(number):  # orphans=2: a last page of one product merged into page 3
    from asgiref.sync import sync_to_async

    django_paginator, products = paginators()
    paginator = django_paginator.Paginator(products, 5, orphans=2)
    return await sync_to_async(lambda: [p.sku for p in paginator.get_page(number)])()


async def with_no_orphans_spelled_out(number):  # right, written differently: orphans=0
    from asgiref.sync import sync_to_async

    django_paginator, products = paginators()
    paginator = django_paginator.Paginator(products, per_page=5, orphans=0)
    return await sync_to_async(lambda: [p.sku for p in paginator.get_page(number)])()


async def page_and_whole_table(number):  # right page, but list(qs) reads every row too
    from asgiref.sync import sync_to_async

    django_paginator, products = paginators()

    def skus():
        page = django_paginator.Paginator(products, 5).get_page(number)
        list(products)
        return [p.sku for p in page]

    return await sync_to_async(skus)()


async def page_and_own_count(number):  # a COUNT of its own beside the paginator's: 3 queries
    from asgiref.sync import sync_to_async

    django_paginator, products = paginators()
    await products.all().acount()
    paginator = django_paginator.Paginator(products, 5)
    return await sync_to_async(lambda: [p.sku for p in paginator.get_page(number)])()


async def sync_cache_on_the_loop(number):  # cache.set on the loop: a round trip with Redis
    from django.core.cache import cache

    cache.set("last_page_asked", number)
    return await page_in_a_thread(number)


async def async_cache_twins(number):  # right: aget/aset run off the loop
    from django.core.cache import cache

    asked = await cache.aget("pages_asked", 0)
    await cache.aset("pages_asked", asked + 1)
    return await page_in_a_thread(number)


def _skus_of_page(number):
    django_paginator, products = paginators()
    return [p.sku for p in django_paginator.Paginator(products, 5).get_page(number)]


def test_page_skus(project):
    from tutorial_project.course.exercises.lesson11 import check_page_skus
    from tutorial_project.instruments.paging import HAS_ASYNC_PAGINATOR

    assert run(check_page_skus, page_in_a_thread)
    assert run(check_page_skus, page_of_values_in_a_thread)
    from asgiref.sync import sync_to_async  # right, written differently: a wrapped sync function

    assert run(check_page_skus, sync_to_async(_skus_of_page))
    assert run(check_page_skus, with_no_orphans_spelled_out)
    verdict = run(check_page_skus, with_orphans)
    assert not verdict and "no `orphans`" in str(verdict) and "ZZ-999" in str(verdict), str(verdict)
    for two_hops in (page_in_two_hops, page_then_async_for):  # COUNT, then LIMIT: no wait
        assert run(check_page_skus, two_hops), two_hops.__name__
    verdict = run(check_page_skus, ordered_by_pk)
    assert not verdict and "AA-000" in str(verdict) and "not by pk" in str(verdict), str(verdict)
    _KEPT.clear()
    verdict = run(check_page_skus, paginator_kept_across_calls)
    assert not verdict and "three products added" in str(verdict), str(verdict)
    assert "once per call" in str(verdict) and "orphans" not in str(verdict)
    verdict = run(check_page_skus, page_by_hand)
    assert not verdict and "no page with a paginator" in str(verdict)
    verdict = run(check_page_skus, page_by_hand_like_django)
    assert not verdict and "no page with a paginator" in str(verdict)
    for in_memory in (whole_table_in_memory, fetched_queryset):
        verdict = run(check_page_skus, in_memory)
        assert not verdict and "rows already in memory" in str(verdict), in_memory.__name__
        assert "LIMIT" in str(verdict)
    verdict = run(check_page_skus, page_and_whole_table)
    assert not verdict and "with no LIMIT" in str(verdict), str(verdict)
    assert "a COUNT and one LIMIT query" in str(verdict)
    verdict = run(check_page_skus, page_and_own_count)
    assert not verdict and "ran 3 SELECT(s)" in str(verdict), str(verdict)
    verdict = run(check_page_skus, page_on_a_pool_thread)
    assert not verdict and "thread other than the request's" in str(verdict)
    assert "thread_sensitive=False" in str(verdict)
    verdict = run(check_page_skus, sleeps_on_the_loop)
    assert not verdict and "time.sleep" in str(verdict) and "asyncio.sleep" in str(verdict)
    verdict = run(check_page_skus, sleep_imported_by_name)
    assert not verdict and "blocking calls on the event loop's thread: time.sleep" in str(verdict)
    verdict = run(check_page_skus, waits_on_an_event)
    assert not verdict and "Event.wait" in str(verdict), str(verdict)
    verdict = run(check_page_skus, sync_cache_on_the_loop)
    assert not verdict and "sync cache on the event loop: cache.set()" in str(verdict)
    assert "cache.aset" in str(verdict)
    assert run(check_page_skus, async_cache_twins)
    if HAS_ASYNC_PAGINATOR:  # Django 6.0+: the AsyncPaginator answer
        async def with_async_paginator(number):
            django_paginator, products = paginators()
            page = await django_paginator.AsyncPaginator(products, 5).aget_page(number)
            return [p.sku for p in await page.aget_object_list()]

        assert run(check_page_skus, with_async_paginator)

        async def async_paginator_counting_hits_in_sync_cache(number):
            from django.core.cache import cache

            cache.set("page_hits", cache.get("page_hits", 0) + 1)
            return await with_async_paginator(number)

        verdict = run(check_page_skus, async_paginator_counting_hits_in_sync_cache)
        assert not verdict and "cache.get(), cache.set()" in str(verdict), str(verdict)

        async def async_paginator_with_orphans(number):
            django_paginator, products = paginators()
            page = await django_paginator.AsyncPaginator(products, 5, orphans=2).aget_page(number)
            return [p.sku async for p in page]

        verdict = run(check_page_skus, async_paginator_with_orphans)
        assert not verdict and "no `orphans`" in str(verdict), str(verdict)

        async def with_apage(number):  # apage(): raises for 0, 99 and "x"
            django_paginator, products = paginators()
            page = await django_paginator.AsyncPaginator(products, 5).apage(number)
            return [p.sku async for p in page]

        verdict = run(check_page_skus, with_apage)
        assert not verdict and "aget_page()" in str(verdict)

        async def returns_the_page(number):
            django_paginator, products = paginators()
            return await django_paginator.AsyncPaginator(products, 5).aget_page(number)

        verdict = run(check_page_skus, returns_the_page)
        assert not verdict and "return the SKUs" in str(verdict)

        async def plain_for_over_an_asyncpage(number):  # len()/indexing need aget_object_list
            django_paginator, products = paginators()
            page = await django_paginator.AsyncPaginator(products, 5).aget_page(number)
            return [p.sku for p in page]

        async def async_paginator_by_pk(number):
            from tutorial_project.catalog.models import Product

            django_paginator, _ = paginators()
            paginator = django_paginator.AsyncPaginator(Product.objects.order_by("pk"), 5)
            return [p.sku async for p in await paginator.aget_page(number)]

        verdict = run(check_page_skus, async_paginator_by_pk)
        assert not verdict and "not by pk" in str(verdict), str(verdict)

        async def plain_for_over_object_list(number):  # the page's QuerySet read on the loop
            django_paginator, products = paginators()
            page = await django_paginator.AsyncPaginator(products, 5).aget_page(number)
            return [p.sku for p in page.object_list]

        verdict = run(check_page_skus, plain_for_over_object_list)
        assert not verdict and "on the event loop" in str(verdict), str(verdict)
        assert "object_list" in str(verdict) and "async for" in str(verdict)

        verdict = run(check_page_skus, plain_for_over_an_asyncpage)
        assert not verdict and "aget_object_list()" in str(verdict), str(verdict)
        assert "async for" in str(verdict)
    assert not run(check_page_skus, ...).solved
    verdict = run(check_page_skus, strict_page)
    assert not verdict and "PageNotAnInteger" in str(verdict) and "get_page()" in str(verdict)
    verdict = run(check_page_skus, unordered)
    assert not verdict and "order by sku" in str(verdict)
    verdict = run(check_page_skus, sync_paginator_on_the_loop)
    assert not verdict and "one sync_to_async call" in str(verdict)
    verdict = run(check_page_skus, forgotten_await)
    assert not verdict and "`await` is missing" in str(verdict)
    verdict = run(check_page_skus, page_object_list)
    assert not verdict and "QuerySet" in str(verdict)


# --- 11.2 -------------------------------------------------------------------------------------


def test_task_or_await(project):
    from tutorial_project.course.exercises.lesson11 import JOBS, check_task_or_await

    assert JOBS == list(REFERENCE_CHOICES)
    assert run(check_task_or_await, REFERENCE_CHOICES)
    assert run(check_task_or_await, dict(reversed(REFERENCE_CHOICES.items())))  # any order
    assert not run(check_task_or_await, ...).solved
    assert not run(check_task_or_await, dict.fromkeys(REFERENCE_CHOICES, ...)).solved
    everything_a_task = dict.fromkeys(REFERENCE_CHOICES, "task")
    verdict = run(check_task_or_await, everything_a_task)
    assert not verdict and 'it is "await"' in str(verdict)
    everything_awaited = dict.fromkeys(REFERENCE_CHOICES, "await")
    verdict = run(check_task_or_await, everything_awaited)
    assert not verdict and 'it is "task"' in str(verdict)
    typo = {**REFERENCE_CHOICES, "send the order confirmation email": "background"}
    verdict = run(check_task_or_await, typo)
    assert not verdict and 'answer "task" or "await"' in str(verdict)
    verdict = run(check_task_or_await, {})
    assert not verdict and verdict.solved and "no answer for" in str(verdict)
    four_of_five = dict(list(REFERENCE_CHOICES.items())[:4])
    verdict = run(check_task_or_await, four_of_five)
    assert not verdict and "no answer for" in str(verdict)


# --- 11.3 -------------------------------------------------------------------------------------


def report_task():
    from tutorial_project.instruments.stock_report import build_stock_report

    return build_stock_report


async def start_report_reference(request):
    category = request.GET.get("category", "").strip()
    if not category:
        return JsonResponse({"error": "give ?category=<slug>"}, status=400)
    result = await report_task().aenqueue(category)
    return JsonResponse({"id": result.id, "status": result.status}, status=202)


async def start_report_differently(request):  # right: .using(), HTTPStatus, str(status)
    from http import HTTPStatus

    if "category" not in request.GET or not request.GET["category"].strip():
        return JsonResponse({"error": "category is required"}, status=HTTPStatus.BAD_REQUEST)
    task = report_task().using(priority=0)
    result = await task.aenqueue(category_slug=request.GET["category"].strip())
    return JsonResponse({"status": str(result.status), "id": result.id},
                        status=HTTPStatus.ACCEPTED)


async def enqueues_in_gather(request):  # right: the enqueue runs in a child asyncio task
    category = request.GET.get("category", "").strip()
    if not category:
        return JsonResponse({"error": "give ?category=<slug>"}, status=400)
    (result,) = await asyncio.gather(report_task().aenqueue(category))
    return JsonResponse({"id": result.id, "status": result.status}, status=202)


async def enqueues_in_create_task(request):  # right: a child task again
    category = request.GET.get("category", "").strip()
    if not category:
        return JsonResponse({"error": "give ?category=<slug>"}, status=400)
    result = await asyncio.create_task(report_task().aenqueue(category))
    return JsonResponse({"id": result.id, "status": result.status}, status=202)


async def enqueues_with_a_deadline(request):  # right: wait_for (a child task on 3.11)
    category = request.GET.get("category", "").strip()
    if not category:
        return JsonResponse({"error": "give ?category=<slug>"}, status=400)
    result = await asyncio.wait_for(report_task().aenqueue(category), timeout=5)
    return JsonResponse({"id": result.id, "status": result.status}, status=202)


async def runs_it_and_enqueues(request):  # acall() first: the client still waits for it
    category = request.GET.get("category", "").strip()
    if not category:
        return JsonResponse({"error": "give ?category=<slug>"}, status=400)
    await report_task().acall(category)
    result = await report_task().aenqueue(category)
    return JsonResponse({"id": result.id, "status": result.status}, status=202)


async def waits_after_enqueueing(request):  # aenqueue, then waits (in a thread): late
    category = request.GET.get("category", "").strip()
    if not category:
        return JsonResponse({"error": "give ?category=<slug>"}, status=400)
    result = await report_task().aenqueue(category)
    await asyncio.to_thread(sleep, 2)
    return JsonResponse({"id": result.id, "status": result.status}, status=202)


async def event_wait_in_a_thread_after_enqueueing(request):  # no sleep to see: the clock's case
    result = await start_report_reference(request)
    await asyncio.to_thread(threading.Event().wait, 0.5)
    return result


async def waits_a_little_after_enqueueing(request):  # a sync helper in a thread: 0.3 s late
    from asgiref.sync import sync_to_async

    category = request.GET.get("category", "").strip()
    if not category:
        return JsonResponse({"error": "give ?category=<slug>"}, status=400)
    result = await report_task().aenqueue(category)
    await sync_to_async(sleep)(0.3)  # off the loop: only the clock sees it
    return JsonResponse({"id": result.id, "status": result.status}, status=202)


async def to_thread_after_enqueueing(request):  # 0.45 s in asyncio.to_thread: late
    category = request.GET.get("category", "").strip()
    if not category:
        return JsonResponse({"error": "give ?category=<slug>"}, status=400)
    result = await report_task().aenqueue(category)
    await asyncio.to_thread(sleep, 0.45)
    return JsonResponse({"id": result.id, "status": result.status}, status=202)


async def with_a_status_url(request):  # right, written differently: more keys, a Location
    category = request.GET.get("category", "").strip()
    if not category:
        return JsonResponse({"error": "give ?category=<slug>"}, status=400)
    result = await report_task().aenqueue(category)
    url = f"/reports/{result.id}/"
    response = JsonResponse({"id": result.id, "status": result.status, "status_url": url},
                            status=202)
    response["Location"] = url
    return response


async def sleeps_briefly(request):  # well under the timing bound, but a wait all the same
    category = request.GET.get("category", "").strip()
    if not category:
        return JsonResponse({"error": "give ?category=<slug>"}, status=400)
    result = await report_task().aenqueue(category)
    await asyncio.sleep(0.4)
    return JsonResponse({"id": result.id, "status": result.status}, status=202)


async def polls_briefly(request):  # three quick polls: the client waits for them
    category = request.GET.get("category", "").strip()
    if not category:
        return JsonResponse({"error": "give ?category=<slug>"}, status=400)
    result = await report_task().aenqueue(category)
    for _ in range(3):
        await result.arefresh()
    return JsonResponse({"id": result.id, "status": result.status}, status=202)


async def enqueues_in_an_executor(request):  # run_in_executor: the ORM off the request's thread
    from functools import partial

    category = request.GET.get("category", "").strip()
    if not category:
        return JsonResponse({"error": "give ?category=<slug>"}, status=400)
    enqueue = partial(report_task().enqueue, category)
    result = await asyncio.get_running_loop().run_in_executor(None, enqueue)
    return JsonResponse({"id": result.id, "status": result.status}, status=202)


async def forgot_await(request):
    category = request.GET.get("category", "").strip()
    if not category:
        return JsonResponse({"error": "give ?category=<slug>"}, status=400)
    result = report_task().aenqueue(category)
    return JsonResponse({"id": result.id, "status": result.status}, status=202)


async def sync_enqueue(request):  # sync enqueue() in async code
    category = request.GET.get("category", "").strip()
    if not category:
        return JsonResponse({"error": "give ?category=<slug>"}, status=400)
    result = report_task().enqueue(category)
    return JsonResponse({"id": result.id, "status": result.status}, status=202)


async def swallowed(request):  # hides the failed enqueue and claims success
    category = request.GET.get("category", "").strip()
    if not category:
        return JsonResponse({"error": "give ?category=<slug>"}, status=400)
    try:
        result = report_task().enqueue(category)
    except Exception:
        return JsonResponse({"id": None, "status": "READY"}, status=202)
    return JsonResponse({"id": result.id, "status": result.status}, status=202)


async def runs_it_inline(request):  # acall(): the report runs inside the request
    category = request.GET.get("category", "").strip()
    if not category:
        return JsonResponse({"error": "give ?category=<slug>"}, status=400)
    return JsonResponse(await report_task().acall(category), status=202)


async def answers_200(request):
    category = request.GET.get("category", "").strip()
    if not category:
        return JsonResponse({"error": "give ?category=<slug>"}, status=400)
    result = await report_task().aenqueue(category)
    return JsonResponse({"id": result.id, "status": result.status})


async def no_400(request):
    result = await report_task().aenqueue(request.GET.get("category", ""))
    return JsonResponse({"id": result.id, "status": result.status}, status=202)


async def enqueues_for_the_bad_request_too(request):  # a job for "" before the 400
    category = request.GET.get("category", "")
    result = await report_task().aenqueue(category)
    if not category:
        return JsonResponse({"error": "give ?category=<slug>"}, status=400)
    return JsonResponse({"id": result.id, "status": result.status}, status=202)


async def accepts_an_empty_category(request):  # `is None`: ?category= enqueues a report for ""
    category = request.GET.get("category")
    if category is None:
        return JsonResponse({"error": "give ?category=<slug>"}, status=400)
    result = await report_task().aenqueue(category)
    return JsonResponse({"id": result.id, "status": result.status}, status=202)


async def accepts_a_blank_category(request):  # ?category=%20%20 enqueues a report for "  "
    category = request.GET.get("category")
    if not category:
        return JsonResponse({"error": "give ?category=<slug>"}, status=400)
    result = await report_task().aenqueue(category)
    return JsonResponse({"id": result.id, "status": result.status}, status=202)


async def sleeps_in_the_view(request):  # time.sleep in an async view holds the event loop
    import time

    time.sleep(0.05)
    return await start_report_reference(request)


async def view_sleep_imported_by_name(request):  # `from time import sleep`: still blocking
    sleep(0.001)
    return await start_report_reference(request)


async def view_waits_on_an_event(request):  # Event.wait on the loop: blocking, however short
    threading.Event().wait(0.05)
    return await start_report_reference(request)


async def waits_for_the_job(request):  # polls until finished: on a queue, never
    category = request.GET.get("category", "").strip()
    if not category:
        return JsonResponse({"error": "give ?category=<slug>"}, status=400)
    result = await report_task().aenqueue(category)
    while not result.is_finished:
        await asyncio.sleep(0.05)
        await result.arefresh()
    return JsonResponse({"id": result.id, "status": result.status}, status=202)


async def enqueues_on_a_pool_thread(request):  # thread_sensitive=False: the ORM off-thread
    from asgiref.sync import sync_to_async

    category = request.GET.get("category", "").strip()
    if not category:
        return JsonResponse({"error": "give ?category=<slug>"}, status=400)
    result = await sync_to_async(report_task().enqueue, thread_sensitive=False)(category)
    return JsonResponse({"id": result.id, "status": result.status}, status=202)


async def sync_enqueue_in_a_thread(request):  # right: the sync enqueue, thread-sensitive
    from asgiref.sync import sync_to_async

    category = (request.GET.get("category") or "").strip()
    if not category:
        return JsonResponse({"error": "give ?category=<slug>"}, status=400)
    result = await sync_to_async(report_task().enqueue)(category_slug=category)
    return JsonResponse({"id": result.id, "status": result.status}, status=202)


async def swallows_a_failed_aenqueue(request):  # the queue is down: 202 for a lost job
    category = request.GET.get("category", "").strip()
    if not category:
        return JsonResponse({"error": "give ?category=<slug>"}, status=400)
    try:
        result = await report_task().aenqueue(category)
    except Exception:
        return JsonResponse({"id": None, "status": "READY"}, status=202)
    return JsonResponse({"id": result.id, "status": result.status}, status=202)


async def answers_503_when_the_queue_is_down(request):  # right, written differently
    category = request.GET.get("category", "").strip()
    if not category:
        return JsonResponse({"error": "give ?category=<slug>"}, status=400)
    try:
        result = await report_task().aenqueue(category)
    except ConnectionError:
        return JsonResponse({"error": "the report queue is unavailable"}, status=503)
    return JsonResponse({"id": result.id, "status": result.status}, status=202)


async def answers_400_when_the_queue_is_down(request):  # the client's fault? no: a 5xx
    category = request.GET.get("category", "").strip()
    if not category:
        return JsonResponse({"error": "give ?category=<slug>"}, status=400)
    try:
        result = await report_task().aenqueue(category)
    except Exception as error:
        return JsonResponse({"error": str(error)}, status=400)
    return JsonResponse({"id": result.id, "status": result.status}, status=202)


async def leaks_the_error_in_a_503(request):  # the right status, the server's details leaked
    category = request.GET.get("category", "").strip()
    if not category:
        return JsonResponse({"error": "give ?category=<slug>"}, status=400)
    try:
        result = await report_task().aenqueue(category)
    except ConnectionError as error:
        return JsonResponse({"error": f"queue unavailable: {error}"}, status=503)
    return JsonResponse({"id": result.id, "status": result.status}, status=202)


async def answers_502_in_its_own_words(request):  # right, written differently: 502, a kind
    # of its own (not the exception's class: that names your code; s31b review)
    category = request.GET.get("category", "").strip()
    if not category:
        return JsonResponse({"error": "give ?category=<slug>"}, status=400)
    try:
        result = await report_task().aenqueue(category)
    except Exception:
        return JsonResponse({"error": "the report queue did not answer",
                             "kind": "queue_unavailable"}, status=502)
    return JsonResponse({"id": result.id, "status": result.status}, status=202)


async def hard_coded_ready(request):  # "READY" written, not read from the result
    category = request.GET.get("category", "").strip()
    if not category:
        return JsonResponse({"error": "give ?category=<slug>"}, status=400)
    result = await report_task().aenqueue(category)
    return JsonResponse({"id": result.id, "status": "READY"}, status=202)


async def status_value(request):  # right, written differently: the enum's .value
    category = request.GET.get("category", "").strip()
    if not category:
        return JsonResponse({"error": "give ?category=<slug>"}, status=400)
    result = await report_task().aenqueue(category_slug=category)
    return JsonResponse({"id": str(result.id), "status": result.status.value}, status=202)


async def enqueues_the_unstripped_slug(request):  # tests the stripped value, enqueues the raw
    raw = request.GET.get("category", "")
    if not raw.strip():
        return JsonResponse({"error": "give ?category=<slug>"}, status=400)
    result = await report_task().aenqueue(raw)
    return JsonResponse({"id": result.id, "status": result.status}, status=202)


async def html_400(request):
    category = request.GET.get("category", "").strip()
    if not category:
        return HttpResponse("missing category", status=400)
    result = await report_task().aenqueue(category)
    return JsonResponse({"id": result.id, "status": result.status}, status=202)


async def executor_sleep_after_enqueueing(request):  # 0.15 s in a thread: under the clock's bound
    result = await start_report_reference(request)
    await asyncio.get_running_loop().run_in_executor(None, sleep, 0.15)
    return result


async def waits_out_a_timeout_after_enqueueing(request):  # 0.15 s for an Event never set
    result = await start_report_reference(request)
    try:
        await asyncio.wait_for(asyncio.Event().wait(), 0.15)
    except TimeoutError:
        pass
    return result


async def sync_cache_in_the_view(request):  # cache.get/set on the loop: a round trip with Redis
    from django.core.cache import cache

    cache.set("last-report", request.GET.get("category", ""))
    return await start_report_reference(request)


async def async_cache_in_the_view(request):  # right: the async twins run off the loop
    from django.core.cache import cache

    await cache.aset("last-report", request.GET.get("category", ""))
    return await start_report_reference(request)


async def post_only(request):  # right: the POST the lesson recommends, require_POST's 405
    from django.views.decorators.http import require_POST

    @require_POST
    async def view(request):
        category = request.POST.get("category", "").strip()
        if not category:
            return JsonResponse({"error": "give a category"}, status=400)
        result = await report_task().aenqueue(category)
        return JsonResponse({"id": result.id, "status": result.status}, status=202)

    return await view(request)


async def post_only_by_hand(request):  # right, written differently: its own 405 in JSON
    if request.method != "POST":
        return JsonResponse({"error": "POST only"}, status=405)
    category = request.POST.get("category", "").strip()
    if not category:
        return JsonResponse({"error": "category is required"}, status=400)
    result = await report_task().aenqueue(category_slug=category)
    return JsonResponse({"id": result.id, "status": result.status}, status=202)


async def post_only_reads_get(request):  # POST-only, but the category read from the URL
    if request.method != "POST":
        return JsonResponse({"error": "POST only"}, status=405)
    return await start_report_reference(request)


async def post_only_unstripped(request):  # POST-only, tests the stripped value, enqueues the raw
    if request.method != "POST":
        return JsonResponse({"error": "POST only"}, status=405)
    if not request.POST.get("category", "").strip():
        return JsonResponse({"error": "category is required"}, status=400)
    result = await report_task().aenqueue(request.POST["category"])
    return JsonResponse({"id": result.id, "status": result.status}, status=202)


async def enqueues_again_unless_ready(request):  # a "retry" when the backend already ran it
    category = request.GET.get("category", "").strip()
    if not category:
        return JsonResponse({"error": "give ?category=<slug>"}, status=400)
    result = await report_task().aenqueue(category)
    if result.status != "READY":
        result = await report_task().aenqueue(category)
    return JsonResponse({"id": result.id, "status": result.status}, status=202)


async def retries_a_failed_enqueue(request):  # right: one retry of an error before the store
    category = request.GET.get("category", "").strip()
    if not category:
        return JsonResponse({"error": "give ?category=<slug>"}, status=400)
    try:
        result = await report_task().aenqueue(category)
    except ConnectionError:
        try:
            result = await report_task().aenqueue(category)
        except ConnectionError:
            return JsonResponse({"error": "the report queue is unavailable"}, status=503)
    return JsonResponse({"id": result.id, "status": result.status}, status=202)


async def retries_with_backoff(request):  # right: 3 tries on ConnectionError, short backoff
    category = request.GET.get("category", "").strip()
    if not category:
        return JsonResponse({"error": "give ?category=<slug>"}, status=400)
    for attempt in range(3):
        try:
            result = await report_task().aenqueue(category)
            break
        except ConnectionError:
            if attempt == 2:
                return JsonResponse({"error": "the report queue is unavailable"}, status=503)
            await asyncio.sleep(0.01 * 2 ** attempt)
    return JsonResponse({"id": result.id, "status": result.status}, status=202)


async def retries_any_error(request):  # a job stored before the error is queued twice
    category = request.GET.get("category", "").strip()
    if not category:
        return JsonResponse({"error": "give ?category=<slug>"}, status=400)
    try:
        result = await report_task().aenqueue(category)
    except Exception:
        try:
            result = await report_task().aenqueue(category)
        except Exception:
            return JsonResponse({"error": "the report queue is unavailable"}, status=503)
    return JsonResponse({"id": result.id, "status": result.status}, status=202)


async def retries_ten_times(request):  # unbounded in spirit: the client waits on a dead queue
    category = request.GET.get("category", "").strip()
    if not category:
        return JsonResponse({"error": "give ?category=<slug>"}, status=400)
    for attempt in range(10):
        try:
            result = await report_task().aenqueue(category)
            break
        except ConnectionError:
            if attempt == 9:
                return JsonResponse({"error": "the report queue is unavailable"}, status=503)
    return JsonResponse({"id": result.id, "status": result.status}, status=202)


async def post_only_reads_json(request):  # a JSON API: the check posts form fields
    import json

    if request.method != "POST":
        return JsonResponse({"error": "POST only"}, status=405)
    try:
        category = str(json.loads(request.body).get("category", "")).strip()
    except ValueError:
        return JsonResponse({"error": "send a JSON body"}, status=400)
    if not category:
        return JsonResponse({"error": "category is required"}, status=400)
    result = await report_task().aenqueue(category)
    return JsonResponse({"id": result.id, "status": result.status}, status=202)


async def enqueues_through_the_backend(request):  # right: the backend's aenqueue, once
    category = request.GET.get("category", "").strip()
    if not category:
        return JsonResponse({"error": "give ?category=<slug>"}, status=400)
    task = report_task()
    result = await task.get_backend().aenqueue(task, [category], {})
    finished = result.is_finished  # read, not acted on: one enqueue whatever the status
    return JsonResponse({"id": result.id, "status": result.status, "finished": finished},
                        status=202)


def test_start_report_view_enqueues_once_on_every_backend(project):
    from tutorial_project.course.exercises.lesson11 import check_start_report_view

    assert run(check_start_report_view, enqueues_through_the_backend)
    verdict = run(check_start_report_view, enqueues_again_unless_ready)
    assert not verdict and "2 enqueues on a backend that runs the task at once" in str(
        verdict), str(verdict)
    assert "aenqueue() once" in str(verdict)
    for right in (retries_a_failed_enqueue, retries_with_backoff):
        assert run(check_start_report_view, right), right.__name__
    verdict = run(check_start_report_view, retries_any_error)
    assert not verdict and "2 enqueues after an error raised once the job was stored" in str(
        verdict), str(verdict)
    assert "idempotency key" in str(verdict)
    verdict = run(check_start_report_view, retries_ten_times)
    assert not verdict and "kept retrying: 10 tries" in str(verdict), str(verdict)


def test_start_report_view_post(project):
    from tutorial_project.course.exercises.lesson11 import check_start_report_view

    for right in (post_only, post_only_by_hand):
        assert run(check_start_report_view, right), right.__name__
    for wrong in (post_only_reads_get, post_only_reads_json):
        verdict = run(check_start_report_view, wrong)
        assert not verdict and "answered 400 to a POST with `category=coffee` as a form " \
            "field (request.POST), not a JSON body" in str(verdict), (wrong.__name__, str(verdict))
    verdict = run(check_start_report_view, post_only_unstripped)
    assert not verdict and "' coffee '" in str(verdict), str(verdict)
    assert 'request.POST.get("category", "").strip()' in str(verdict), str(verdict)


def test_start_report_view(project, recwarn, monkeypatch):
    from tutorial_project.course.exercises import lesson11
    from tutorial_project.course.exercises.lesson11 import check_start_report_view

    assert run(check_start_report_view, start_report_reference)
    assert run(check_start_report_view, start_report_differently)
    assert run(check_start_report_view, sync_enqueue_in_a_thread)
    assert run(check_start_report_view, answers_503_when_the_queue_is_down)
    verdict = run(check_start_report_view, swallows_a_failed_aenqueue)
    assert not verdict and "still answered 202" in str(verdict) and "503" in str(verdict)
    for off_thread in (enqueues_on_a_pool_thread, enqueues_in_an_executor):
        verdict = run(check_start_report_view, off_thread)
        assert not verdict and "thread other than the request's" in str(verdict), str(verdict)
        assert "aenqueue" in str(verdict)
    monkeypatch.setattr(lesson11, "NO_ANSWER_SECONDS", 2)  # the same verdict, sooner
    verdict = run(check_start_report_view, waits_for_the_job)
    assert not verdict and "no answer within 2 s" in str(verdict) and "202" in str(verdict)
    monkeypatch.undo()
    for child_task in (enqueues_in_gather, enqueues_in_create_task, enqueues_with_a_deadline):
        assert run(check_start_report_view, child_task), child_task.__name__
    for in_request in (runs_it_inline, runs_it_and_enqueues):
        verdict = run(check_start_report_view, in_request)
        assert not verdict and "ran in the web server's process" in str(verdict)
        assert "acall()" in str(verdict) and "aenqueue" in str(verdict)
    verdict = run(check_start_report_view, waits_after_enqueueing)
    assert not verdict and "time.sleep in a thread" in str(verdict), str(verdict)
    assert "202 at once" in str(verdict)
    verdict = run(check_start_report_view, event_wait_in_a_thread_after_enqueueing)
    assert not verdict and "answered after" in str(verdict) and "202 at once" in str(verdict)
    for late in (waits_a_little_after_enqueueing, to_thread_after_enqueueing,
                 executor_sleep_after_enqueueing):
        verdict = run(check_start_report_view, late)
        assert not verdict and "waited before answering: time.sleep in a thread" in str(
            verdict), (late.__name__, str(verdict))
    verdict = run(check_start_report_view, waits_out_a_timeout_after_enqueueing)
    assert not verdict and "0.15 s timeout that ran out" in str(verdict), str(verdict)
    verdict = run(check_start_report_view, sync_cache_in_the_view)
    assert not verdict and "sync cache on the event loop: cache.set()" in str(verdict)
    assert "cache.aset" in str(verdict)
    assert run(check_start_report_view, async_cache_in_the_view)
    assert run(check_start_report_view, with_a_status_url)
    verdict = run(check_start_report_view, sleeps_briefly)
    assert not verdict and "waited before answering: asyncio.sleep(0.4)" in str(verdict)
    assert "202 at once" in str(verdict)
    verdict = run(check_start_report_view, polls_briefly)
    assert not verdict and "3 lookup(s) of the job" in str(verdict), str(verdict)
    assert not run(check_start_report_view, ...).solved
    verdict = run(check_start_report_view, forgot_await)
    assert not verdict and "never awaited" in str(verdict) and "await" in str(verdict)
    for wrong in (sync_enqueue,):
        verdict = run(check_start_report_view, wrong)
        assert not verdict and "aenqueue" in str(verdict) and "event loop" in str(verdict)
    verdict = run(check_start_report_view, swallowed)
    assert not verdict and "0 tasks enqueued" in str(verdict) and "except" in str(verdict)
    verdict = run(check_start_report_view, answers_200)
    assert not verdict and "status=202" in str(verdict)
    verdict = run(check_start_report_view, no_400)
    assert not verdict and "400" in str(verdict)
    verdict = run(check_start_report_view, enqueues_for_the_bad_request_too)
    assert not verdict and "enqueued for the bad request" in str(verdict)
    verdict = run(check_start_report_view, accepts_an_empty_category)
    assert not verdict and "?category= (empty)" in str(verdict)
    assert "if not category" in str(verdict)
    verdict = run(check_start_report_view, accepts_a_blank_category)
    assert not verdict and "(only spaces)" in str(verdict) and ".strip()" in str(verdict)
    verdict = run(check_start_report_view, sleeps_in_the_view)
    assert not verdict and "time.sleep" in str(verdict)
    verdict = run(check_start_report_view, view_sleep_imported_by_name)
    assert not verdict and "blocking calls on the event loop's thread: time.sleep" in str(verdict)
    verdict = run(check_start_report_view, view_waits_on_an_event)
    assert not verdict and "Event.wait" in str(verdict), str(verdict)
    for right in (answers_502_in_its_own_words, status_value):
        assert run(check_start_report_view, right), right.__name__
    verdict = run(check_start_report_view, answers_400_when_the_queue_is_down)
    assert not verdict and "the view answered 400" in str(verdict), str(verdict)
    assert "a 5xx" in str(verdict) and "503" in str(verdict)
    verdict = run(check_start_report_view, leaks_the_error_in_a_503)
    assert not verdict and "your own words" in str(verdict), str(verdict)
    assert "queue-db.internal" in str(verdict) and "logger.exception" in str(verdict)
    verdict = run(check_start_report_view, hard_coded_ready)
    assert not verdict and "runs the task at once" in str(verdict), str(verdict)
    assert "result.status" in str(verdict)
    verdict = run(check_start_report_view, enqueues_the_unstripped_slug)
    assert not verdict and "' coffee '" in str(verdict) and ".strip()" in str(verdict), \
        str(verdict)
    verdict = run(check_start_report_view, html_400)
    assert not verdict and "JSON error" in str(verdict)
    # The check keeps a never-awaited coroutine's warning to itself.
    assert not [w for w in recwarn if "never awaited" in str(w.message)]


async def iterates_a_coroutine(number):  # no await on sync_to_async(...)(): not iterable
    from asgiref.sync import sync_to_async

    skus = sync_to_async(_skus_of_page)(number)
    return [sku for sku in skus]


def test_page_skus_forgotten_await_then_fixed(project):
    """A forgotten await gets its hint, and the corrected answer, checked next in the same
    process, passes: the wrong run's coroutine is not blamed on it (s31 review, finding 1)."""
    from tutorial_project.course.exercises.lesson11 import check_page_skus
    from tutorial_project.instruments.paging import HAS_ASYNC_PAGINATOR

    wrong = [iterates_a_coroutine]
    if HAS_ASYNC_PAGINATOR:  # Django 6.0+: `async for` over aget_page(...), no await
        async def page_in_a_variable(number):
            django_paginator, products = paginators()
            page = django_paginator.AsyncPaginator(products, 5).aget_page(number)
            return [p.sku async for p in page]

        async def page_inline(number):
            django_paginator, products = paginators()
            return [p.sku async for p in django_paginator.AsyncPaginator(products, 5)
                    .aget_page(number)]

        async def object_list_of_a_coroutine(number):
            django_paginator, products = paginators()
            page = django_paginator.AsyncPaginator(products, 5).aget_page(number)
            return [p.sku for p in await page.aget_object_list()]

        wrong += [page_in_a_variable, page_inline, object_list_of_a_coroutine]
    for answer in wrong:
        verdict = run(check_page_skus, answer)
        assert not verdict and "`await` is missing" in str(verdict), (answer.__name__, verdict)
        assert "coroutine" in str(verdict)
        verdict = run(check_page_skus, page_in_a_thread)  # the learner adds the await
        assert verdict and "never awaited" not in str(verdict), (answer.__name__, verdict)


# --- s31b review: a long backoff, the report's query inline, the exception's class named,
# hints that name the real mistake ---------------------------------------------------------


async def long_backoff(request):  # 4 tries, 1 + 2 + 4 s of backoff: the client waits 7 s
    category = request.GET.get("category", "").strip()
    if not category:
        return JsonResponse({"error": "give ?category=<slug>"}, status=400)
    for attempt in range(4):
        try:
            result = await report_task().aenqueue(category)
            break
        except ConnectionError:
            if attempt == 3:
                return JsonResponse({"error": "the report queue is unavailable"}, status=503)
            await asyncio.sleep(2 ** attempt)
    return JsonResponse({"id": result.id, "status": result.status}, status=202)


async def backoff_just_over_a_second(request):  # 0.4 + 0.8 s: answers in time, backs off long
    category = request.GET.get("category", "").strip()
    if not category:
        return JsonResponse({"error": "give ?category=<slug>"}, status=400)
    for attempt in range(3):
        try:
            result = await report_task().aenqueue(category)
            break
        except ConnectionError:
            if attempt == 2:
                return JsonResponse({"error": "the report queue is unavailable"}, status=503)
            await asyncio.sleep(0.4 * 2 ** attempt)
    return JsonResponse({"id": result.id, "status": result.status}, status=202)


async def backoff_in_a_thread(request):  # time.sleep(2) per retry in a thread: no answer in 3 s
    from asgiref.sync import sync_to_async

    category = request.GET.get("category", "").strip()
    if not category:
        return JsonResponse({"error": "give ?category=<slug>"}, status=400)
    for attempt in range(3):
        try:
            result = await report_task().aenqueue(category)
            break
        except ConnectionError:
            if attempt == 2:
                return JsonResponse({"error": "the report queue is unavailable"}, status=503)
            await sync_to_async(sleep)(2)
    return JsonResponse({"id": result.id, "status": result.status}, status=202)


async def report_inline_too(request):  # the report's SUM in the view, then the task as well
    from django.db.models import F, Sum

    from tutorial_project.catalog.models import Product

    category = request.GET.get("category", "").strip()
    if not category:
        return JsonResponse({"error": "give ?category=<slug>"}, status=400)
    totals = await Product.objects.filter(category__slug=category).aaggregate(
        units=Sum("stock"), value=Sum(F("stock") * F("price")))
    result = await report_task().aenqueue(category)
    return JsonResponse({"id": result.id, "status": result.status,
                         "units": totals["units"]}, status=202)


async def names_the_exception_class(request):  # no host or port, but the class's name
    category = request.GET.get("category", "").strip()
    if not category:
        return JsonResponse({"error": "give ?category=<slug>"}, status=400)
    try:
        result = await report_task().aenqueue(category)
    except Exception as error:
        return JsonResponse({"error": f"builtins.{type(error).__name__}"}, status=503)
    return JsonResponse({"id": result.id, "status": result.status}, status=202)


async def validates_with_aexists(request):  # right: the slug checked by the async ORM
    from tutorial_project.catalog.models import Category

    category = request.GET.get("category", "").strip()
    if not category or not await Category.objects.filter(slug=category).aexists():
        return JsonResponse({"error": "unknown category"}, status=400)
    result = await report_task().aenqueue(category)
    return JsonResponse({"id": result.id, "status": result.status}, status=202)


async def validates_with_sync_exists(request):  # sync ORM on the loop; the enqueue is async
    from tutorial_project.catalog.models import Category

    category = request.GET.get("category", "").strip()
    if not category or not Category.objects.filter(slug=category).exists():
        return JsonResponse({"error": "unknown category"}, status=400)
    result = await report_task().aenqueue(category)
    return JsonResponse({"id": result.id, "status": result.status}, status=202)


def test_start_report_view_down_queue_and_inline_report(project):
    from tutorial_project.course.exercises.lesson11 import check_start_report_view

    verdict = run(check_start_report_view, long_backoff)
    assert not verdict and "kept retrying" in str(verdict), str(verdict)
    assert "asyncio.sleep() for" in str(verdict) and "short backoff" in str(verdict)
    verdict = run(check_start_report_view, backoff_just_over_a_second)
    assert not verdict and "asyncio.sleep() for 1.2 s in all" in str(verdict), str(verdict)
    verdict = run(check_start_report_view, backoff_in_a_thread)
    assert not verdict and "no answer within 3 s" in str(verdict), str(verdict)
    verdict = run(check_start_report_view, report_inline_too)
    assert not verdict and "its SUM query on catalog_product" in str(verdict), str(verdict)
    assert "aaggregate" in str(verdict) and "aenqueue" in str(verdict)
    verdict = run(check_start_report_view, names_the_exception_class)
    assert not verdict and "builtins.ConnectionError" in str(verdict), str(verdict)
    assert "its class names your code" in str(verdict)
    assert run(check_start_report_view, validates_with_aexists)
    verdict = run(check_start_report_view, validates_with_sync_exists)
    assert not verdict and "sync ORM call" in str(verdict) and "aexists()" in str(verdict)
    assert "sync enqueue()" not in str(verdict), str(verdict)
    verdict = run(check_start_report_view, sync_enqueue)
    assert not verdict and "sync enqueue() ran on the event loop" in str(verdict), str(verdict)


_MEMO = {}


async def memoizes_its_pages(number):  # right pages, kept per number: stale once rows change
    if number not in _MEMO:
        _MEMO[number] = await page_in_a_thread(number)
    return _MEMO[number]


async def guard_switched_off_on_the_loop(number):  # DJANGO_ALLOW_ASYNC_UNSAFE, sync ORM on the loop
    import os

    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    django_paginator, products = paginators()
    return [p.sku for p in django_paginator.Paginator(products, 5).get_page(number)]


def test_page_skus_hints_name_the_mistake(project):
    import os

    from tutorial_project.course.exercises.lesson11 import check_page_skus

    _MEMO.clear()
    verdict = run(check_page_skus, memoizes_its_pages)
    assert not verdict and "ran no query" in str(verdict), str(verdict)
    assert "kept from an earlier call" in str(verdict) and "cached_property" not in str(verdict)
    verdict = run(check_page_skus, memoizes_its_pages)  # run again: the memo is full already
    assert not verdict and "page_skus(1) ran no query" in str(verdict), str(verdict)
    _MEMO.clear()
    verdict = run(check_page_skus, guard_switched_off_on_the_loop)
    assert not verdict and "guard was switched off" in str(verdict), str(verdict)
    assert "DJANGO_ALLOW_ASYNC_UNSAFE" in str(verdict) and "pool thread" not in str(verdict)
    assert "DJANGO_ALLOW_ASYNC_UNSAFE" not in os.environ


def _enqueue_into(results, slug):
    results.append(report_task().enqueue(slug))


def _enqueue_after_commit(slug):
    from functools import partial

    from django.db import transaction

    results = []
    with transaction.atomic():
        transaction.on_commit(partial(_enqueue_into, results, slug), robust=True)
    return results[0]  # IndexError when the robust callback failed: a 500


async def on_commit_partial_robust(request):  # passes (a 500 when down); on 5.2 with a note
    from asgiref.sync import sync_to_async

    category = request.GET.get("category", "").strip()
    if not category:
        return JsonResponse({"error": "give ?category=<slug>"}, status=400)
    result = await sync_to_async(_enqueue_after_commit)(category)
    return JsonResponse({"id": result.id, "status": result.status}, status=202)


async def runs_it_after_enqueueing(request):  # the report in an asyncio task, after the answer
    category = request.GET.get("category", "").strip()
    if not category:
        return JsonResponse({"error": "give ?category=<slug>"}, status=400)
    result = await report_task().aenqueue(category)
    asyncio.get_running_loop().create_task(report_task().acall(category))
    return JsonResponse({"id": result.id, "status": result.status}, status=202)


def test_start_report_view_on_commit_partial_and_background_run(project):
    import django

    from tutorial_project.course.exercises.lesson11 import check_start_report_view

    verdict = run(check_start_report_view, on_commit_partial_robust)
    assert verdict, str(verdict)
    noted = "partial has none (fixed in Django 6.1, ticket #36487)" in str(verdict)
    assert noted == (django.VERSION < (6, 1)), str(verdict)
    assert "note:" not in str(run(check_start_report_view, start_report_reference))
    verdict = run(check_start_report_view, runs_it_after_enqueueing)
    assert not verdict and "ran in the web server's process, not on a worker" in str(verdict)
    assert "an asyncio task the server's loop runs after it" in str(verdict), str(verdict)


def _category_exists(slug):
    from tutorial_project.catalog.models import Category

    return Category.objects.filter(slug=slug).exists()


async def checks_the_category_in_to_thread(request):  # review 11-s32c: a pool thread's query
    category = request.GET.get("category", "").strip()
    if not category or not await asyncio.to_thread(_category_exists, category):
        return JsonResponse({"error": "give ?category=<slug>"}, status=400)
    result = await report_task().aenqueue(category)
    return JsonResponse({"id": result.id, "status": result.status}, status=202)


async def checks_the_category_in_the_request_thread(request):  # right, written differently
    from asgiref.sync import sync_to_async

    category = request.GET.get("category", "").strip()
    if not category or not await sync_to_async(_category_exists)(category):
        return JsonResponse({"error": "give ?category=<slug>"}, status=400)
    result = await report_task().aenqueue(category)
    return JsonResponse({"id": result.id, "status": result.status}, status=202)


def test_start_report_view_refuses_queries_on_a_pool_thread(project):
    from tutorial_project.course.exercises.lesson11 import check_start_report_view

    verdict = run(check_start_report_view, checks_the_category_in_to_thread)
    text = str(verdict)
    assert not verdict and "ran queries on a thread other than the request's" in text, text
    assert "Django never closes" in text, text
    verdict = run(check_start_report_view, checks_the_category_in_the_request_thread)
    assert verdict, str(verdict)


async def accepted_after_a_failed_store(request):  # review 11-s32d: 202 with no id
    category = request.GET.get("category", "").strip()
    if not category:
        return JsonResponse({"error": "give ?category=<slug>"}, status=400)
    try:
        result = await report_task().aenqueue(category)
    except ConnectionError:
        return JsonResponse({"error": "the report queue is unavailable"}, status=503)
    except Exception:  # noqa: BLE001 (the wrong answer: "it was probably stored")
        return JsonResponse({"id": None, "status": "READY"}, status=202)
    return JsonResponse({"id": result.id, "status": result.status}, status=202)


def test_start_report_view_refuses_a_2xx_after_a_failed_store(project):
    from tutorial_project.course.exercises.lesson11 import check_start_report_view

    verdict = run(check_start_report_view, accepted_after_a_failed_store)
    text = str(verdict)
    assert not verdict and "after the job was stored, the view answered 202" in text, text
