"""Lesson 09's cache_per_request instrument: which cache objects requests through
ASGIHandler build, and which of them Django closes, on each version."""

import asyncio

import django
from django.http import JsonResponse

from tutorial_project.instruments.cache_per_request import cache_objects_of_requests

PATH = "/reads-the-cache/"


async def reads_the_cache(request):
    from django.core.cache import cache

    return JsonResponse({"seen": await cache.aget("seen", 0)})


def test_each_request_builds_its_own_object_and_only_6_1_closes_it(project):
    from tutorial_project.playground import mount, unmount

    mount(PATH, reads_the_cache)
    try:
        built, closed = asyncio.run(cache_objects_of_requests(PATH, requests=5))
        # 5.2 (and 6.0) run the view in a child task: the handler's request_finished cannot
        # see that task's object
        assert (built, closed) == ((5, 5) if django.VERSION >= (6, 1) else (5, 0))
        # one object made before serving is every request's, and closed after each, on both
        assert asyncio.run(cache_objects_of_requests(PATH, 5, used_before=True)) == (1, 5)
    finally:
        unmount(PATH)
