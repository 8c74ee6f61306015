"""Middleware adaptation through ASGIHandler: µs per request (from the call to the response's
last body message), an all-async chain, one sync-only middleware in it, and the project's five
built-in (MiddlewareMixin) middleware."""

import asyncio

CHAINS = {
    "no middleware": (),
    "3 async-only": ("async", "async", "async"),
    "async, sync-only, async": ("async", "sync", "async"),
    "the project's 5 built-ins": ("settings",),
}


async def _measure():
    from django.conf import settings
    from django.http import HttpResponse

    from tutorial_project import mount
    from tutorial_project.instruments.middleware.overhead import microseconds_per_request
    from tutorial_project.instruments.middleware.passthrough import (
        async_passthrough,
        sync_passthrough,
    )

    async def ping(request):
        return HttpResponse("pong")

    mount("/bench-ping/", ping)
    kinds = {"async": async_passthrough, "sync": sync_passthrough}
    kinds["settings"] = None
    chains = {name: [kinds[k] for k in chain] for name, chain in CHAINS.items()}
    chains["the project's 5 built-ins"] = list(settings.MIDDLEWARE)  # replaces the placeholder
    return await microseconds_per_request(chains, "/bench-ping/", requests=1000, rounds=7)


def run(notebooks):
    from tutorial_project import start

    start(quiet=True)
    cost = asyncio.run(_measure())
    rows = [(f"{name}, µs/request", f"{value:.0f}") for name, value in cost.items()]
    base = cost["no middleware"]
    for name in ("async, sync-only, async", "the project's 5 built-ins"):
        rows.append((f"{name}: x no middleware", f"{cost[name] / base:.2f}x"))
    per_crossing = (cost["the project's 5 built-ins"] - base) / 10
    rows.append(("one thread crossing (10 in the built-ins), µs", f"{per_crossing:.0f}"))
    return rows
