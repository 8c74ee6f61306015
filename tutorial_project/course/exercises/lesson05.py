"""Checks for lesson 05 · Async middleware."""

from asgiref.sync import iscoroutinefunction
from django.core.cache import cache
from django.http import HttpResponse, JsonResponse
from django.test import AsyncClient

from tutorial_project.course.exercises.core import exercise
from tutorial_project.instruments.middleware.passthrough import sync_passthrough
from tutorial_project.playground import mount, unmount, use_middleware

PROBE = "exercise-05-probe/"


async def _get(middleware, view, **request):
    """GET a view through exactly ``middleware``; a raw exception is returned, not raised."""
    mount(PROBE, view)
    try:
        with use_middleware(*middleware):
            return await AsyncClient(raise_request_exception=False).get(f"/{PROBE}", **request)
    except Exception as error:  # escaped Django's handling: that is what the check reports
        return error
    finally:
        unmount(PROBE)


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
    ]:
        response = await _get(stack, _ok_view)
        check.that(
            not isinstance(response, Exception) and response.status_code == 200,
            f"in {label} the view answers 200",
            f"in {label} the request failed: {response!r}",
            hint="sync mode: call get_response(request); async mode: await it in an async method",
        )
        check.that(
            response.get("X-Lesson") == "05",
            f"in {label} the response has X-Lesson: 05",
            f"in {label} the response has no X-Lesson: 05 header",
            hint='set response["X-Lesson"] = "05" before returning the response',
        )
    response = await _get((LessonHeader,), _failing_view)
    check.that(
        not isinstance(response, Exception) and response.status_code == 500,
        "a failing view still becomes a normal 500 response",
        f"a failing view did not become a 500 response: {response!r}",
        hint="async mode must return a coroutine from a marked instance (markcoroutinefunction)",
    )


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

    await cache.aset("api-key:letmein", True, 60)
    try:
        for headers, label in [({}, "no key"), ({"X-API-Key": "guess"}, "a wrong key")]:
            response = await _get((require_api_key,), view, headers=headers)
            check.that(
                not isinstance(response, Exception) and response.status_code == 401,
                f"with {label} it answers 401",
                f"with {label} it answered {getattr(response, 'status_code', response)!r}, not 401",
                hint="return JsonResponse({...}, status=401) when the cache has no api-key:<key>",
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
        response = await _get((require_api_key,), view, headers={"X-API-Key": "letmein"})
        check.that(
            not isinstance(response, Exception) and response.status_code == 200 and len(calls) == 1,
            "with the right key the view runs and answers 200",
            f"with the right key the answer was {getattr(response, 'status_code', response)!r}",
            hint='look the key up with await cache.aget(f"api-key:{key}")',
        )
    finally:
        await cache.adelete("api-key:letmein")
