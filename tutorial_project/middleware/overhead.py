"""Measure the time a middleware chain adds per request, in microseconds."""

import statistics
import time

from django.core.handlers.asgi import ASGIHandler
from django.test import AsyncRequestFactory

from tutorial_project.playground import use_middleware


async def microseconds_per_request(middleware, path, *, requests=1000, rounds=5):
    """Median over ``rounds`` of the mean time of ``requests`` requests through the chain.

    A fresh ASGIHandler builds its chain (load_middleware) from ``middleware``, as a server
    would at startup; then each request goes through the chain to the view at ``path``.
    """
    with use_middleware(*middleware):
        handler = ASGIHandler()
    factory = AsyncRequestFactory()
    means = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(requests):
            await handler.get_response_async(factory.get(path))
        means.append((time.perf_counter() - started) / requests * 1e6)
    return statistics.median(means)
