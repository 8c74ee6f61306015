"""Helpers that checks use to exercise a learner's view through the real project."""

import itertools
import logging
import traceback
from contextlib import contextmanager

from django.test import AsyncClient

from tutorial_project.playground import mount, unmount

_routes = itertools.count(1)


async def call_view(view, *, method="get", suffix="", cookies=None, **request):
    """Mount ``view`` at a private route, request it with AsyncClient, unmount it.

    ``suffix`` is appended to the route (for query strings); ``cookies`` ({name: value}) are
    sent with the request, as a browser sends its own; ``request`` goes to the client call
    (``data=``, ``content_type=``, ``headers=``...). Returns the response, with
    ``response.view_error``: what the view raised ("TypeError: ..."), or None.
    Django's log lines for the probe's 4xx/5xx are kept out of the cell: the verdict
    reports what matters.
    """
    route = f"exercise-probe-{next(_routes)}/"
    mount(route, view)
    try:
        client = AsyncClient(raise_request_exception=False)
        for name, value in (cookies or {}).items():
            client.cookies[name] = value
        with _request_log_held(f"/{route}") as records:
            response = await getattr(client, method)(f"/{route}{suffix}", **request)
    finally:
        unmount(route)
    response.view_error = next(
        (f"{type(r.exc_info[1]).__name__}: {r.exc_info[1]}" for r in records if r.exc_info),
        None,
    )
    # A traceback keeps its frames' locals alive, a coroutine the view forgot to await among
    # them: it would warn "never awaited" later, in whatever check collects it. Drop them now.
    for exc_info in [response.exc_info, *(r.exc_info for r in records)]:
        if exc_info:
            traceback.clear_frames(exc_info[2])
    return response


class _Holder(logging.Filter):
    """Holds back the log records of requests to one path (probes may run side by side)."""

    def __init__(self, path):
        super().__init__()
        self.path = path
        self.records = []

    def filter(self, record):
        request = getattr(record, "request", None)
        if getattr(request, "path", "") != self.path:
            return True  # not this probe's: let it through
        self.records.append(record)
        return False  # held, not written


@contextmanager
def _request_log_held(path):
    logger = logging.getLogger("django.request")
    holder = _Holder(path)
    logger.addFilter(holder)
    try:
        yield holder.records
    finally:
        logger.removeFilter(holder)


@contextmanager
def quiet_request_log():
    """A check's own probe requests (its 4xx, a learner's 500) log nothing above the verdict."""
    logger = logging.getLogger("django.request")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


@contextmanager
def default_executor(loop, executor):
    """``executor`` is ``loop``'s default executor during the block (asyncio.to_thread,
    run_in_executor(None, ...) and sync_to_async(thread_sensitive=False) run there); then
    the one before comes back and ``executor`` is shut down."""
    previous = getattr(loop, "_default_executor", None)
    loop.set_default_executor(executor)
    try:
        yield executor
    finally:
        loop._default_executor = previous  # None: the loop makes a new one when next needed
        executor.shutdown(wait=False)
