"""Expectations that several lessons' checks share."""

import gc
import inspect
import threading
import time
import warnings
from contextlib import contextmanager

from asgiref.sync import iscoroutinefunction


def must_be_async(check, function, name, params="...", *, kind="function", hint=None):
    """Stop the check with a hint unless ``function`` is an async function (or marked as one).

    ``kind`` names what it is in the passing line ("function", "view"); ``hint`` replaces the
    default "define it with `async def name(params):`".
    """
    check.that(
        iscoroutinefunction(function),
        f"{name} is an async {kind}",
        f"{name} is not an async function",
        hint=hint or f"define it with `async def {name}({params}):`",
    )


@contextmanager
def forgotten_awaits():
    """Collect the "coroutine ... was never awaited" warnings of the block instead of printing.

    A forgotten ``await`` drops a coroutine; Python then prints a RuntimeWarning that points
    into the checker. Inside this block such warnings are gathered in the list it yields
    (as their messages), so the check can say "you forgot an await" with a hint instead.
    Other warnings are shown as usual. Coroutines dropped before the block are collected
    (silently) on entry, so only the block's own count.
    """
    found = []
    # Coroutines dropped before the block (an earlier attempt's, kept in a reference cycle)
    # would warn at the collection below and be blamed on this answer: collect them now.
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        gc.collect()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield found
        finally:
            gc.collect()  # a dropped coroutine in a reference cycle warns only when collected
    for warning in caught:
        if "was never awaited" in str(warning.message):
            found.append(str(warning.message))
        else:
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )


def no_forgotten_await(check, found, value=None):
    """Stop the check with a hint if ``found`` (from ``forgotten_awaits``) holds a warning, or
    ``value`` is, or directly holds, an awaitable nobody awaited. Coroutines are closed first,
    so that Python does not print its own warning about them."""
    items = list(value.values()) if isinstance(value, dict) else value
    items = list(items) if isinstance(items, list | tuple) else [value]
    unawaited = [item for item in items if inspect.isawaitable(item)]
    for item in unawaited:
        if inspect.iscoroutine(item):
            item.close()
    if unawaited:
        found = [*found, f"the answer holds {type(unawaited[0]).__name__} objects, not results"]
    if found:
        check.that(
            False,
            "",
            f"an `await` is missing: {found[0]}",
            hint="calling an async function (or a sync_to_async wrapper) only creates a "
            "coroutine; `await` it to run it and get its result",
        )


@contextmanager
def sleeps_on_this_thread():
    """The seconds of each ``time.sleep`` called on this (the event loop's) thread in the block.

    However short, each one holds the loop. Calls from other threads (``to_thread``,
    ``sync_to_async``) are not counted; the real ``time.sleep`` is back when the block ends.
    """
    loop_thread, real_sleep, sleeps = threading.get_ident(), time.sleep, []

    def noted_sleep(seconds):
        if threading.get_ident() == loop_thread:
            sleeps.append(seconds)
        real_sleep(seconds)

    time.sleep = noted_sleep
    try:
        yield sleeps
    finally:
        time.sleep = real_sleep


# Django's sync cache API: with Redis or Memcached each call is a network round trip.
SYNC_CACHE_CALLS = ("get", "set", "add", "delete", "get_many", "set_many", "delete_many",
                    "has_key", "incr", "decr", "get_or_set", "touch", "clear")


@contextmanager
def sync_cache_calls_on_this_thread():
    """The names of the sync cache methods (``"get"``, ``"set"``...) called on this (the event
    loop's) thread in the block, in order.

    However fast the project's local-memory cache answers, with Redis or Memcached each one
    waits on the network and holds the loop. The a-twins (``await cache.aget(...)``) run in a
    worker thread and are not counted; neither are calls from other threads. Every configured
    backend's methods are back as they were when the block ends.
    """
    from django.core.cache import caches

    loop_thread, calls = threading.get_ident(), []

    def noted(name, real):
        def call(*args, **kwargs):
            if threading.get_ident() == loop_thread:
                calls.append(name)
            return real(*args, **kwargs)
        return call

    backends = {type(caches[alias]) for alias in caches}
    saved = [(backend, name, backend.__dict__.get(name))
             for backend in backends for name in SYNC_CACHE_CALLS]
    for backend, name, _ in saved:
        setattr(backend, name, noted(name, getattr(backend, name)))
    try:
        yield calls
    finally:
        for backend, name, own in saved:
            if own is None:
                delattr(backend, name)
            else:
                setattr(backend, name, own)
