"""Middleware adaptation: µs per request, all-async chain vs one sync-only middleware in it."""

import asyncio

CHAINS = {
    "no middleware": (),
    "3 async-only": ("async", "async", "async"),
    "async, sync-only, async": ("async", "sync", "async"),
}


async def _measure():
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
    chains = {name: [kinds[k] for k in chain] for name, chain in CHAINS.items()}
    return await microseconds_per_request(chains, "/bench-ping/", requests=1000, rounds=7)


def run(notebooks):
    from tutorial_project import start

    start(quiet=True)
    cost = asyncio.run(_measure())
    rows = [(f"{name}, µs/request", f"{value:.0f}") for name, value in cost.items()]
    slowdown = cost["async, sync-only, async"] / cost["3 async-only"]
    rows.append(
        ("one sync-only middleware: slowdown", f"{slowdown:.1f}x (lesson 05 asserts >= 1.5x)")
    )
    return rows
