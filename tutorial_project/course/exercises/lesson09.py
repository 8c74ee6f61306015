"""Checks for lesson 09 · Auth, sessions, cache and signals without blocking."""

from django.contrib.auth.models import User
from django.test import AsyncClient

from tutorial_project.course.exercises.core import exercise
from tutorial_project.course.exercises.expect import must_be_async
from tutorial_project.playground import mount, unmount

EXERCISE_USER = "exercise-09-grace"


async def _exercise_user():
    user, _ = await User.objects.aget_or_create(username=EXERCISE_USER)
    return user


def _json_or_none(response):
    try:
        return response.json()
    except ValueError:
        return None


@exercise("09.1", "Who am I, without the lazy-user trap")
async def check_whoami_view(check, view):
    must_be_async(check, view, "whoami_view", "request", kind="view")
    route = "exercise-09-1/"
    mount(route, view)
    try:
        anonymous = await AsyncClient(raise_request_exception=False).get(f"/{route}")
        check.that(
            anonymous.status_code == 200 and _json_or_none(anonymous) == {"username": None},
            'anonymous: 200 {"username": null}',
            f"anonymous: {anonymous.status_code} {_json_or_none(anonymous)!r}",
            hint='answer JsonResponse({"username": None}) when the user is not authenticated',
        )
        client = AsyncClient(raise_request_exception=False)
        await client.aforce_login(await _exercise_user())
        logged_in = await client.get(f"/{route}")
        check.that(
            logged_in.status_code == 200
            and _json_or_none(logged_in) == {"username": EXERCISE_USER},
            f'logged in as {EXERCISE_USER}: 200 {{"username": "{EXERCISE_USER}"}}',
            f"logged in: {logged_in.status_code} {_json_or_none(logged_in)!r}",
            hint="a 500 here is the lazy-user trap: use `user = await request.auser()`, "
            "not request.user",
        )
    finally:
        unmount(route)


@exercise("09.2", "A shopping cart in the session")
async def check_cart_view(check, view):
    must_be_async(check, view, "cart_view", "request", kind="view")
    route = "exercise-09-2/"
    mount(route, view)
    try:
        client = AsyncClient(raise_request_exception=False)
        expected = []
        for sku in ["BK-001", "CF-002", "BK-001"]:
            expected.append(sku)
            response = await client.get(f"/{route}", {"add": sku})
            body = _json_or_none(response)
            check.that(
                response.status_code == 200 and body == {"cart": expected},
                f"after adding {sku}: {{'cart': {expected}}}",
                f"after adding {sku}: {response.status_code} {body!r}, expected "
                f"{{'cart': {expected}}}",
                hint="a 500 means a sync session access: use `await request.session.aget(...)` "
                "and `await request.session.aset(...)`; store the whole list again after adding",
            )
        other = await AsyncClient(raise_request_exception=False).get(f"/{route}")
        check.that(
            _json_or_none(other) == {"cart": []},
            "another visitor starts with an empty cart",
            f"another visitor got {_json_or_none(other)!r}",
            hint="keep the cart in request.session, not in a global variable",
        )
    finally:
        unmount(route)
