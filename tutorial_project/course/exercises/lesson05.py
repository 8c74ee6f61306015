"""Checks for lesson 05 · Async middleware."""

import asyncio
import secrets

from asgiref.sync import iscoroutinefunction
from django.core.cache import cache
from django.core.cache.backends.locmem import LocMemCache
from django.http import HttpResponse, JsonResponse
from django.test import AsyncClient, override_settings

from tutorial_project.course.exercises.core import exercise
from tutorial_project.course.exercises.quiet import quiet_probe
from tutorial_project.instruments.middleware.overhead import thread_hops_per_request
from tutorial_project.instruments.middleware.passthrough import sync_passthrough
from tutorial_project.playground import mount, unmount, use_middleware

PROBE = "exercise-05-probe/"
DJANGO_OUTER = "django.middleware.security.SecurityMiddleware"  # a MiddlewareMixin built-in


async def _get(middleware, view, **request):
    """GET a view through exactly ``middleware``; a raw exception is returned, not raised."""
    mount(PROBE, view)
    try:
        with use_middleware(*middleware):
            response = await AsyncClient(raise_request_exception=False).get(
                f"/{PROBE}", **request
            )
    except Exception as error:  # escaped Django's handling: that is what the check reports
        return error.with_traceback(None)  # the traceback would keep the learner's frames alive
    finally:
        unmount(PROBE)
    if response.exc_info:  # Django turned an exception into this 500: name it, drop its frames
        response.error = response.exc_info[1].with_traceback(None)
        response.exc_info = None
    return response


def _status(response):
    return getattr(response, "status_code", response)


def _failure(response):
    """How a probe's request went wrong, for a verdict."""
    if isinstance(response, Exception):
        return f"{type(response).__name__} escaped Django: {response}"
    error = getattr(response, "error", None)
    cause = f" ({type(error).__name__}: {error})" if error is not None else ""
    return f"it answered {response.status_code}{cause}"


async def _ok_view(request):
    return HttpResponse("ok")


async def _failing_view(request):
    raise RuntimeError("the view failed")


@exercise("05.1", "A middleware for both stacks")
async def check_lesson_header(check, LessonHeader):
    check.that(
        getattr(LessonHeader, "sync_capable", True)
        and getattr(LessonHeader, "async_capable", False),
        "it declares sync_capable = True and async_capable = True",
        "Django would adapt it: it does not declare both sync_capable and async_capable as True",
        hint="add the class attributes sync_capable = True and async_capable = True",
    )

    async def get_response(request):
        return HttpResponse()

    check.that(
        iscoroutinefunction(LessonHeader(get_response)),
        "given an async get_response, the instance is marked as a coroutine function",
        "given an async get_response, Django cannot tell the instance is async",
        hint="in __init__, if iscoroutinefunction(get_response): markcoroutinefunction(self)",
    )
    for stack, label in [
        ((LessonHeader,), "an async stack"),
        ((LessonHeader, sync_passthrough), "a sync stack"),
        ((DJANGO_OUTER, LessonHeader), "an async stack below Django's SecurityMiddleware"),
    ]:
        with quiet_probe() as probe:
            response = await _get(stack, _ok_view)
        hint = "sync mode: call get_response(request); async mode: await it in an async method"
        check.that(
            not isinstance(response, Exception) and response.status_code == 200,
            f"in {label} the view answers 200",
            f"in {label} the request failed: {_failure(response)}",
            hint=probe.hint(hint),
        )
        check.that(
            response.get("X-Lesson") == "05",
            f"in {label} the response has X-Lesson: 05",
            f"in {label} the response has no X-Lesson: 05 header",
            hint='set response["X-Lesson"] = "05" before returning the response',
        )
    mount(PROBE, _ok_view)
    try:
        baseline = await thread_hops_per_request((), f"/{PROBE}")
        with quiet_probe():
            hops = await thread_hops_per_request((LessonHeader,), f"/{PROBE}")
    finally:
        unmount(PROBE)
    check.that(
        hops == baseline,
        "in an async stack it sends no work to a thread",
        f"in an async stack each request crosses threads more: {hops} instead of {baseline}",
        hint="Django runs the MiddlewareMixin hooks (process_request, process_response) "
        "through sync_to_async: write the async path as an async method of your own",
    )
    with quiet_probe():
        response = await _get((LessonHeader,), _failing_view)
    check.that(
        not isinstance(response, Exception) and response.status_code == 500,
        "a failing view still becomes a normal 500 response",
        f"a failing view did not become a 500 response: {_failure(response)}",
        hint="async mode must return a coroutine from a marked instance (markcoroutinefunction)",
    )


class LoopWatchingCache(LocMemCache):
    """A local-memory cache that notes every sync call made on a thread running an event loop.

    There a sync cache call blocks every request the loop serves (with Redis or Memcached it
    waits on the network); ``aget`` and friends run these same methods in a worker thread.
    """

    blocking_calls = []

    def _note(self, name):
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # a worker thread, as cache.aget() uses: fine
        self.blocking_calls.append(name)

    def get(self, *args, **kwargs):
        self._note("get")
        return super().get(*args, **kwargs)

    def has_key(self, *args, **kwargs):
        self._note("has_key")
        return super().has_key(*args, **kwargs)

    def get_many(self, *args, **kwargs):
        self._note("get_many")
        return super().get_many(*args, **kwargs)


WATCHED_CACHE = {"default": {"BACKEND": f"{__name__}.LoopWatchingCache", "LOCATION": "05.2"}}


@exercise("05.2", "Reject before the view, asynchronously")
async def check_require_api_key(check, require_api_key):
    check.that(
        getattr(require_api_key, "async_capable", False)
        and not getattr(require_api_key, "sync_capable", True),
        "it is async only",
        "it is not declared async only",
        hint="decorate the function with @async_only_middleware",
    )
    calls = []

    async def view(request):
        calls.append(request)
        return JsonResponse({"secret": 42})

    known = secrets.token_hex(8)  # a key of the check's own: an answer cannot know it in advance
    LoopWatchingCache.blocking_calls.clear()
    with override_settings(CACHES=WATCHED_CACHE):
        await cache.aset(f"api-key:{known}", True, 60)
        for headers, label in [({}, "no key"), ({"X-API-Key": "guess"}, "a wrong key")]:
            with quiet_probe() as probe:
                response = await _get((require_api_key,), view, headers=headers)
            hint = "return JsonResponse({...}, status=401) when the cache has no api-key:<key>"
            check.that(
                not isinstance(response, Exception) and response.status_code == 401,
                f"with {label} it answers 401",
                f"with {label} it answered {_status(response)!r}, not 401",
                hint=probe.hint(hint),
            )
            check.that(
                response["Content-Type"] == "application/json" and "error" in response.json(),
                f"with {label} the 401 is JSON with an error",
                f'with {label} the 401 is not JSON with an "error" key',
                hint='answer JsonResponse({"error": "..."}, status=401)',
            )
        check.that(
            not calls,
            "the view never ran for a rejected request",
            "the view ran for a rejected request",
            hint="return before awaiting get_response",
        )
        with quiet_probe() as probe:
            response = await _get((require_api_key,), view, headers={"X-API-Key": known})
        check.that(
            not isinstance(response, Exception) and response.status_code == 200 and len(calls) == 1,
            "with a key stored in the cache the view runs and answers 200",
            f"with a key stored in the cache the answer was {_status(response)!r}",
            hint=probe.hint('look the key up with await cache.aget(f"api-key:{key}")'),
        )
        blocking = sorted(set(LoopWatchingCache.blocking_calls))
        check.that(
            not blocking,
            "it reads the cache with the async API, off the event loop",
            f"it called the sync cache.{', cache.'.join(blocking)}() on the event loop",
            hint="in async code use await cache.aget(...): the sync call blocks the event loop "
            "(with Redis or Memcached, for a network round trip)",
        )
