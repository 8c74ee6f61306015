"""What ``DJANGO_ALLOW_ASYNC_UNSAFE`` lets happen. Lesson 00 runs this in a throwaway process:

    python -m tutorial_project.instruments.async_unsafe

Two coroutines share one event loop: a checkout that holds a transaction open while a payment
service answers, then rolls back, and a restock that arrives meanwhile. The same race runs
three times (SQLite file, lock wait lowered to 1 s, one process):

1. guard off, sync ORM on the loop, each coroutine on its own connection (on a loop's thread
   Django keeps the connection object in the task's context, and a task starts with its
   creator's only if the creator touched ``connection``; ``main`` set Django up before the
   loop ran, as uvicorn's command line does): the restock's query waits for the checkout's lock
   on the loop's own thread, so the checkout can never get on to release it: the loop stands
   still for the whole lock wait, then the restock fails;
2. guard off, both coroutines on one connection (they inherit it because the code that starts
   them read ``connection.vendor``: any use of ``connection``, or ``django.setup()`` run on the
   loop's thread, as in a notebook, does the same): the restock's UPDATE runs inside the
   checkout's transaction, returns normally, and is rolled back with it: lost, silently;
3. guard on, written the supported way: the transaction in a sync function run through
   ``sync_to_async``, the restock with ``aupdate()``, each coroutine in its own
   ``ThreadSensitiveContext`` as ``ASGIHandler`` runs each request: each gets a thread of its
   own, the restock waits for the lock in its thread, the loop stays free, the restock lands.
   (Without those contexts, both would queue on asgiref's one shared thread, a path no
   server takes.)
"""

import asyncio
import os
import threading
import time

from asgiref.sync import ThreadSensitiveContext, sync_to_async

from tutorial_project.instruments.heartbeat import Heartbeat

LOCK_WAIT = 1  # seconds SQLite waits for a lock here (the project's settings say 20)


class PaymentDeclined(Exception):
    pass


async def checkout(Product, transaction):
    with transaction.atomic():  # all or nothing; BEGIN IMMEDIATE takes SQLite's write lock
        Product.objects.filter(sku="CF-001").update(stock=0)
        await asyncio.sleep(0.2)  # ...while a payment service answers
        raise PaymentDeclined("card declined")  # so the transaction rolls back


async def restock(Product):
    await asyncio.sleep(0.05)  # arrives while the checkout waits
    Product.objects.filter(sku="BK-001").update(stock=99)  # a sync query, on the loop


def checkout_in_a_thread(Product, transaction):
    with transaction.atomic():  # Django has no async atomic(): a sync function holds it
        Product.objects.filter(sku="CF-001").update(stock=0)
        # The payment call blocks this worker thread, not the loop. It sits inside atomic()
        # only to make the race; real code calls outside services outside a transaction.
        time.sleep(0.2)
        raise PaymentDeclined("card declined")


async def restock_async(Product):
    await asyncio.sleep(0.05)
    await Product.objects.filter(sku="BK-001").aupdate(stock=99)


async def as_a_request(name, work, threads, queries):
    """Await ``work`` in a context of its own, as ``ASGIHandler`` runs each request; note the
    thread that runs this request's sync work (its ORM queries included), and in
    ``queries[name]`` when each of its queries was sent and when it returned."""
    async with ThreadSensitiveContext():
        threads.append(await sync_to_async(_note_queries)(queries.setdefault(name, [])))
        try:
            return await work
        finally:
            await sync_to_async(_note_queries)(None)


def _note_queries(spans):
    """From now on (until called with None), this thread's connection appends (sent, returned)
    to ``spans`` for each query it runs. Returns this thread's id."""
    from django.db import connections

    wrappers = connections["default"].execute_wrappers
    if spans is None:
        wrappers.clear()
        return threading.get_ident()

    def note(execute, sql, params, many, context):
        sent = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            spans.append((sent, time.perf_counter()))

    wrappers.append(note)
    return threading.get_ident()


def _noting_the_end(function, marks):
    """``function``, noting in ``marks["ended"]`` when it returned or raised, in its thread."""
    def run(*args):
        try:
            return function(*args)
        finally:
            marks["ended"] = time.perf_counter()
    return run


async def race(title, checkout_call, restock_call, *, share_a_connection=False):
    from tutorial_project.catalog.models import Product

    print(title)
    if share_a_connection:
        from django.db import connection

        assert connection.vendor  # no query: still, both tasks inherit this context's connection
    async with Heartbeat() as heartbeat:
        outcomes = await asyncio.gather(checkout_call, restock_call, return_exceptions=True)
    for name, outcome in zip(["checkout", "restock"], outcomes, strict=True):
        said = "returned normally" if outcome is None else f"{type(outcome).__name__}: {outcome}"
        print(f"  {name}: {said}")
    print(f"  the event loop stood still for the lock wait ({LOCK_WAIT} s):",
          heartbeat.longest_gap >= 0.9 * LOCK_WAIT)
    stock = await Product.objects.filter(sku="BK-001").values_list("stock", flat=True).aget()
    if stock == 99:
        fate = "applied"
    elif isinstance(outcomes[1], BaseException):
        fate = "not applied (it raised)"
    else:
        fate = "lost (it returned normally)"
    print(f"  BK-001 stock now: {stock}; the restock's 99: {fate}")
    await Product.objects.filter(sku="BK-001").aupdate(stock=12)  # as the demo data has it


def main():
    from tutorial_project import start

    start(quiet=True)
    from django.db import connections, transaction

    from tutorial_project.catalog.models import Product

    connections.settings["default"]["OPTIONS"]["timeout"] = LOCK_WAIT
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # only in this throwaway process
    asyncio.run(race("1. guard off, one connection per coroutine:",
                     checkout(Product, transaction), restock(Product)))
    asyncio.run(race("2. guard off, one shared connection:",
                     checkout(Product, transaction), restock(Product), share_a_connection=True))
    del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
    asyncio.run(supported_race(Product, transaction))


async def supported_race(Product, transaction):
    threads, queries, checkout_marks = [], {}, {}
    checkout_call = sync_to_async(_noting_the_end(checkout_in_a_thread, checkout_marks))
    await race("3. guard on, one context per request (as ASGIHandler), atomic() in "
               "sync_to_async, aupdate():",
               as_a_request("checkout", checkout_call(Product, transaction), threads, queries),
               as_a_request("restock", restock_async(Product), threads, queries))
    print("  each request's queries ran on a thread of its own:",
          len(set(threads)) == 2 and threading.get_ident() not in threads)
    # The checkout holds SQLite's write lock from its first query (BEGIN IMMEDIATE) until its
    # function has rolled back and returned. The restock's UPDATE waited for it if it was sent
    # while the lock was held and returned only after it was released.
    (_, locked), *_ = queries["checkout"]  # BEGIN IMMEDIATE returned: the lock is taken
    sent, returned = queries["restock"][-1]
    released = checkout_marks["ended"]
    print("  the restock waited for the checkout's lock, in its own thread:",
          locked < sent < released < returned)


if __name__ == "__main__":
    main()
