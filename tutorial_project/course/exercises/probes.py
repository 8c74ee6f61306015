"""Helpers that checks use to exercise a learner's view through the real project."""

import itertools

from django.test import AsyncClient

from tutorial_project.playground import mount, unmount

_routes = itertools.count(1)


async def call_view(view, *, method="get", suffix="", **request):
    """Mount ``view`` at a private route, request it with AsyncClient, unmount it.

    ``suffix`` is appended to the route (for query strings); ``request`` goes to the
    client call (``data=``, ``content_type=``, ``headers=``...). Returns the response.
    """
    route = f"exercise-probe-{next(_routes)}/"
    mount(route, view)
    try:
        client = AsyncClient(raise_request_exception=False)
        return await getattr(client, method)(f"/{route}{suffix}", **request)
    finally:
        unmount(route)
