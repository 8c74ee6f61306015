"""Measure the time a middleware chain adds per request, in microseconds."""

import statistics
import time

from django.core.handlers.asgi import ASGIHandler
from django.test import AsyncRequestFactory

from tutorial_project.playground import use_middleware


async def microseconds_per_request(chains, path, *, requests=300, rounds=5):
    """``{name: µs per request}`` for each chain in ``chains`` (``{name: middleware list}``).

    A fresh ASGIHandler per chain builds it (load_middleware) as a server does at startup;
    then requests go through the chain to the view at ``path``, each one timed on its own.
    The chains take turns, round after round, and each reports its median request: on a
    busy machine the OS pauses a few requests for milliseconds, and the median ignores them.
    """
    handlers = {}
    for name, middleware in chains.items():
        with use_middleware(*middleware):
            handlers[name] = ASGIHandler()
    factory = AsyncRequestFactory()
    timings = {name: [] for name in chains}
    for _ in range(rounds):
        for name, handler in handlers.items():
            for _ in range(requests):
                request = factory.get(path)
                started = time.perf_counter()
                await handler.get_response_async(request)
                timings[name].append((time.perf_counter() - started) * 1e6)
    return {name: statistics.median(values) for name, values in timings.items()}
