"""The capstone's pieces; each one is an exercise of lesson 12 (this is the reference)."""

import asyncio
import contextvars

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core.cache import cache
from django.db import connections

from tutorial_project.catalog.models import Category, Product
from tutorial_project.dashboard.sources import SOURCES, SourceError, fetch_source
from tutorial_project.instruments.streaming import sse_event

CACHE_SECONDS = 30


async def catalog_summary():
    """Step 1: what the catalog holds, read with the async ORM.

    Each ``acount()`` is ``sync_to_async(count)``: the query runs in a worker thread (the
    request's thread under ASGIHandler) while the event loop serves other requests.
    """
    return {
        "products": await Product.objects.acount(),
        "in_stock": await Product.objects.filter(stock__gt=0).acount(),
        "categories": await Category.objects.acount(),
    }


async def gather_sources(client, modes=None):
    """Step 2: every source at once; ``(data, errors)``, a failed source is None in ``data``.

    A bug (any exception but ``SourceError``) cancels the other fetches, and leaves as itself.
    """
    modes = modes or {}
    data, errors = {}, {}

    async def one(name):
        try:
            data[name] = await fetch_source(client, name, mode=modes.get(name, "ok"))
        except SourceError as error:  # one failure must not cancel or hide the others
            data[name], errors[name] = None, error.as_json()

    try:
        async with asyncio.TaskGroup() as group:  # one bug cancels the others; gather does not
            for name in SOURCES:
                group.create_task(one(name))
    except ExceptionGroup as bugs:  # the TaskGroup wraps it: Django gets the bug itself
        raise bugs.exceptions[0] from None
    return {name: data[name] for name in SOURCES}, errors  # SOURCES' order, not arrival's


_computing = {}  # (event loop, key) -> the task computing that key, shared by its callers


async def cached(key, compute, seconds=CACHE_SECONDS):
    """Step 3: the cached value for ``key``, or ``await compute()`` stored for ``seconds``.

    Callers that find the key missing while it is being computed wait for that computation
    instead of starting their own (no stampede on a cold cache). If ``compute()`` raises,
    nothing is stored and every waiting caller gets the error. A caller that is cancelled
    (its client left) stops waiting; the shared task goes on for the others.

    Once per event loop, for the callers that arrive while it runs: under an ASGI server one
    loop per worker process; under WSGI each request's async view has a loop of its own, so
    requests share nothing. A caller whose ``aget`` read "missing" just before the value was
    stored, and returned just after the task ended, computes again.
    """
    value = await cache.aget(key)
    if value is not None:
        return value
    slot = (asyncio.get_running_loop(), key)
    task = _computing.get(slot)
    if task is None:  # the first caller starts the computation; the others join it
        task = _computing[slot] = _start(_compute_and_store(key, compute, seconds))
        task.add_done_callback(lambda done: _forget(slot, done))
    # shield: a caller that leaves (a client that disconnects) does not cancel it for the rest
    return await asyncio.shield(task)


def _forget(slot, task):
    """Free the slot; read an error that no caller stayed to await (every client left), or
    asyncio logs "Task exception was never retrieved" when the task is collected."""
    _computing.pop(slot, None)
    if not task.cancelled():
        task.exception()


def _start(computation):
    """A task for the shared computation, in a context of its own under ASGI.

    A task starts with a copy of its creator's contextvars: the first caller's request's
    ``ThreadSensitiveContext`` too (a ``ThreadSensitiveContext()`` entered in the task would
    keep it). If that client leaves, Django ends that context, and the task's next
    ``sync_to_async`` gets a new thread whose DB connection nobody closes. So it starts in an
    empty context, where it opens a ``ThreadSensitiveContext`` of its own and closes its
    connections at the end. Under a sync caller too (WSGI's ``async_to_sync``, Django's
    ``TestCase``), so it does not see rows the caller has not committed yet.
    """
    return asyncio.create_task(_on_its_own(computation), context=contextvars.Context())


async def _on_its_own(computation):
    async with ThreadSensitiveContext():
        try:
            return await computation
        finally:  # what request_finished does for a request's thread
            await sync_to_async(connections.close_all)()


async def _compute_and_store(key, compute, seconds):
    value = await compute()
    await cache.aset(key, value, seconds)
    return value


async def dashboard_events(client):
    """Step 4: one SSE event per source as soon as it arrives, then a ``done`` event.

    If the client leaves before the end, Django closes this generator (``CancelledError``
    at the ``await``, or ``aclose()``): the ``finally`` cancels the fetches still running.
    """

    async def one(name):
        try:
            return name, await fetch_source(client, name)
        except SourceError as error:
            return name, error.as_json()

    tasks = [asyncio.create_task(one(name)) for name in SOURCES]
    try:
        arrived = []
        for next_done in asyncio.as_completed(tasks):
            name, data = await next_done
            arrived.append(name)
            yield sse_event({"source": name, "data": data}, event="source")
        yield sse_event({"arrived": arrived}, event="done")
    finally:
        for task in tasks:
            task.cancel()  # as_completed never cancels what it waits for: we do
