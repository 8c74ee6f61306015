"""Endpoints for lesson 08's load comparison: the same wait, written async and sync.

``/serving/wait-async/?ms=50`` and ``/serving/wait-sync/?ms=50`` each stand for a common view:
one quick database read, then a wait on I/O (an upstream API, a slow service). The database
connection that the read opens stays open until the request ends (``CONN_MAX_AGE = 0`` closes
it then), so it is held through the wait, as in most real views. ``/serving/threads/`` reports
how many threads the serving process has had at most, so a load test can read it;
``/serving/waits/`` how many waits started, finished, and were cancelled in this process.
"""

import asyncio
import collections
import contextlib
import os
import threading
import time

from django.http import JsonResponse

from tutorial_project.catalog.models import Product

MAX_WAIT_MS = 5000

# Taken by the sync views' threads and by the async views on the event loop: there it is
# held for a few bytecodes, never across an await or I/O, so the loop waits on it no longer
# than that (a lock held across I/O or a sleep would block the loop: 08.2 refuses that).
_lock = threading.Lock()
_peak_threads = 0
_waits = collections.Counter()  # this process's waits: started, finished, cancelled


def _note_threads():
    """Remember the highest thread count this process has had while serving."""
    global _peak_threads
    with _lock:
        _peak_threads = max(_peak_threads, threading.active_count())


@contextlib.contextmanager
def _counted():
    """Count a wait as started, then as finished or as cancelled (the view's task was)."""
    with _lock:
        _waits["started"] += 1
    try:
        yield
    except asyncio.CancelledError:
        with _lock:
            _waits["cancelled"] += 1
        raise
    with _lock:
        _waits["finished"] += 1


def _wait_ms(request):
    """The ``ms`` query parameter as seconds, or a 400 JsonResponse explaining what is wrong."""
    raw = request.GET.get("ms", "50")
    try:
        ms = int(raw)
    except ValueError:
        return None, JsonResponse({"error": f"ms must be an integer, got {raw!r}"}, status=400)
    if not 0 <= ms <= MAX_WAIT_MS:
        return None, JsonResponse({"error": f"ms must be between 0 and {MAX_WAIT_MS}"}, status=400)
    return ms / 1000, None


async def wait_async(request):
    seconds, error = _wait_ms(request)
    if error:
        return error
    _note_threads()
    products = await Product.objects.acount()
    with _counted():
        await asyncio.sleep(seconds)  # the event loop serves other requests meanwhile
    return JsonResponse({"waited_ms": round(seconds * 1000), "view": "async",
                         "products": products, "pid": os.getpid()})


def wait_sync(request):
    seconds, error = _wait_ms(request)
    if error:
        return error
    _note_threads()
    products = Product.objects.count()
    with _counted():
        time.sleep(seconds)  # this request's thread is blocked meanwhile
    return JsonResponse({"waited_ms": round(seconds * 1000), "view": "sync",
                         "products": products, "pid": os.getpid()})


async def threads(request):
    """``{"peak": n, "now": m, "pid": p}``; ``?reset=1`` starts a new measurement."""
    global _peak_threads
    with _lock:
        peak = max(_peak_threads, threading.active_count())
        if request.GET.get("reset"):
            _peak_threads = 0
    return JsonResponse({"peak": peak, "now": threading.active_count(), "pid": os.getpid()})


async def waits(request):
    """``{"started": n, "finished": m, "cancelled": k}``: the views' waits in this process."""
    with _lock:
        counts = {name: _waits[name] for name in ["started", "finished", "cancelled"]}
    return JsonResponse(counts)
