"""Measure the time a middleware chain adds per request, in microseconds."""

import time

from django.core.handlers.asgi import ASGIHandler
from django.test import AsyncRequestFactory

from tutorial_project.playground import use_middleware


async def microseconds_per_request(chains, path, *, requests=300, rounds=7):
    """``{name: µs per request}`` for each chain in ``chains`` (``{name: middleware list}``).

    A fresh ASGIHandler per chain builds it (load_middleware) as a server does at startup;
    then requests go through the chain to the view at ``path``. The chains take turns, round
    after round, and each keeps its fastest round: a busy machine slows some rounds down,
    never speeds one up, so the fastest round is the closest to the chain's own cost.
    """
    handlers = {}
    for name, middleware in chains.items():
        with use_middleware(*middleware):
            handlers[name] = ASGIHandler()
    factory = AsyncRequestFactory()
    best = dict.fromkeys(chains, float("inf"))
    for _ in range(rounds):
        for name, handler in handlers.items():
            started = time.perf_counter()
            for _ in range(requests):
                await handler.get_response_async(factory.get(path))
            elapsed = (time.perf_counter() - started) / requests * 1e6
            best[name] = min(best[name], elapsed)
    return best
