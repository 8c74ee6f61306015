"""Send N requests at once and record what the views did: lesson 02's measurement.

    @traced
    def blocking_view(request): ...            # or an async def view

    mount("/blocking/", blocking_view)
    burst = await send_burst(AsyncClient(), "/blocking/", 20)
    burst.seconds, burst.view_threads, burst.peak_threads
    burst.timeline.plot("...")                 # one bar per request, as the view ran it

``send_burst`` works with any client whose ``get(url)`` is awaitable: Django's
``AsyncClient``, or ``asgi_client()`` (httpx over the real ``ASGIHandler``).
"""

import asyncio
import functools
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from asgiref.sync import iscoroutinefunction

from tutorial_project.instruments.timeline import Timeline


@dataclass
class Burst:
    requests: int
    seconds: float = 0.0  # from the first request sent to the last response received
    statuses: Counter = field(default_factory=Counter)
    timeline: Timeline = field(default_factory=Timeline)  # one span per request, in the view
    threads_before: int = 0  # threading.active_count() just before the burst
    peak_threads: int = 0  # its highest value seen by a view while the burst ran

    @property
    def view_threads(self):
        """How many distinct threads the views ran on."""
        return self.timeline.threads()

    @property
    def extra_threads(self):
        """How many more threads the process had at the peak than before the burst."""
        return self.peak_threads - self.threads_before

    def _enter_view(self):
        count = threading.active_count()
        with _lock:
            self.peak_threads = max(self.peak_threads, count)


_lock = threading.Lock()
_current = None  # the Burst in flight; traced views record into it


def traced(view):
    """Wrap a sync or async view so that, during a burst, it records when and where it ran.

    The wrapper keeps the view's kind: Django must still see a sync view as sync (and run
    it in a thread) and an async view as async (and await it on the event loop).
    """
    if iscoroutinefunction(view):

        @functools.wraps(view)
        async def traced_async_view(request, *args, **kwargs):
            with _recording(request):
                return await view(request, *args, **kwargs)

        return traced_async_view

    @functools.wraps(view)
    def traced_sync_view(request, *args, **kwargs):
        with _recording(request):
            return view(request, *args, **kwargs)

    return traced_sync_view


async def send_burst(client, path, requests):
    """Send ``requests`` GETs to ``path`` at the same time; return the ``Burst``."""
    global _current
    if _current is not None:
        raise RuntimeError("one burst at a time: the views record into the burst in flight")
    burst = _current = Burst(requests, threads_before=threading.active_count())
    separator = "&" if "?" in path else "?"
    try:
        started = time.perf_counter()
        responses = await asyncio.gather(
            *(client.get(f"{path}{separator}request={i}") for i in range(requests))
        )
        burst.seconds = time.perf_counter() - started
    finally:
        _current = None
    burst.statuses.update(response.status_code for response in responses)
    return burst


def asgi_client():
    """An ``httpx.AsyncClient`` that calls the project's real ``ASGIHandler``, as a server would.

    Use it as ``async with asgi_client() as client:``. No socket is opened: httpx hands each
    request to the ASGI application in this process, on this event loop.
    """
    import httpx
    from django.core.asgi import get_asgi_application

    transport = httpx.ASGITransport(app=get_asgi_application())
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


class _recording:
    def __init__(self, request):
        self.burst = _current
        self.label = f"request {request.GET.get('request', '?')}"

    def __enter__(self):
        if self.burst is not None:
            self.burst._enter_view()
            self.span = self.burst.timeline.span(self.label)
            self.span.__enter__()

    def __exit__(self, *exc):
        if self.burst is not None:
            self.span.__exit__(*exc)
