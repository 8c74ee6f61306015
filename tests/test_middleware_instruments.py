"""Lesson 05's instruments: the page cache never gives one visitor's answer to another, and
the overhead helpers measure requests the way ASGIHandler serves them."""

import asyncio
import itertools

import pytest
from django.core.cache import cache
from django.http import HttpResponse
from django.test import AsyncClient
from django.views.decorators.cache import cache_control
from django.views.decorators.vary import vary_on_headers

from tutorial_project.instruments.middleware.overhead import (
    asgi_get,
    microseconds_per_request,
    thread_hops_per_request,
)
from tutorial_project.instruments.middleware.passthrough import async_passthrough, sync_passthrough
from tutorial_project.instruments.middleware.response_cache import (
    TTL,
    async_response_cache,
    lifetime,
    storable,
)
from tutorial_project.playground import mount, use_middleware

SESSIONS = "django.contrib.sessions.middleware.SessionMiddleware"


def run(coroutine):
    return asyncio.run(coroutine)


@pytest.fixture
def counted_view(project):
    calls = itertools.count(1)

    async def view(request):
        return HttpResponse(f"answer {next(calls)}")

    run(cache.aclear())
    return view


async def _bodies(requests, middleware=(async_response_cache,)):
    """GET each ``(client, path, headers)``; return ``(X-Cache, body)`` of each answer."""
    answers = []
    with use_middleware(*middleware):
        for client, path, headers in requests:
            response = await client.get(path, headers=headers)
            answers.append((response["X-Cache"], response.content.decode()))
    return answers


def test_repeated_anonymous_gets_are_served_from_the_cache(counted_view):
    mount("/t-page/", counted_view)
    client = AsyncClient()
    answers = run(_bodies([(client, "/t-page/", {})] * 3))
    assert answers == [("MISS", "answer 1"), ("HIT", "answer 1"), ("HIT", "answer 1")]


def test_a_response_that_sets_a_cookie_is_never_stored(counted_view):
    async def sets_cookie(request):
        response = await counted_view(request)
        response.set_cookie("sessionid", response.content.decode())  # one per visitor
        return response

    mount("/t-cookie/", sets_cookie)
    alice, bob = AsyncClient(), AsyncClient()
    answers = run(_bodies([(alice, "/t-cookie/", {}), (bob, "/t-cookie/", {})]))
    assert answers == [("MISS", "answer 1"), ("MISS", "answer 2")]
    assert alice.cookies["sessionid"].value != bob.cookies["sessionid"].value


@pytest.mark.parametrize("directive", ["private", "no-store", "no-cache"])
def test_cache_control_that_forbids_sharing_is_respected(counted_view, directive):
    mount("/t-private/", cache_control(**{directive.replace("-", "_"): True})(counted_view))
    client = AsyncClient()
    answers = run(_bodies([(client, "/t-private/", {})] * 2))
    assert [hit for hit, _ in answers] == ["MISS", "MISS"]


def test_vary_keeps_one_page_per_header_value(counted_view):
    mount("/t-vary/", vary_on_headers("Accept-Language")(counted_view))
    client = AsyncClient()
    english, french = {"Accept-Language": "en"}, {"Accept-Language": "fr"}
    requests = [(client, "/t-vary/", english), (client, "/t-vary/", french)] * 2
    answers = run(_bodies(requests))
    assert answers == [
        ("MISS", "answer 1"),
        ("MISS", "answer 2"),
        ("HIT", "answer 1"),
        ("HIT", "answer 2"),
    ]


def test_a_session_page_is_kept_per_session_cookie(project):
    names = itertools.count(1)

    async def welcome(request):
        name = await request.session.aget("name")
        if name is None:
            name = f"visitor {next(names)}"
            await request.session.aset("name", name)
        return HttpResponse(name)

    run(cache.aclear())
    mount("/t-welcome/", welcome)
    alice, bob = AsyncClient(), AsyncClient()
    page = "/t-welcome/"
    visits = [(who, page, {}) for who in (alice, bob, alice, alice, bob)]
    answers = run(_bodies(visits, (async_response_cache, SESSIONS)))
    assert [body for _, body in answers] == [
        "visitor 1",
        "visitor 2",
        "visitor 1",
        "visitor 1",
        "visitor 2",
    ]
    assert [hit for hit, _ in answers] == ["MISS", "MISS", "MISS", "HIT", "MISS"]
    assert alice.cookies["sessionid"].value != bob.cookies["sessionid"].value


def test_the_host_is_part_of_the_key(counted_view):
    from django.test import RequestFactory

    middleware = async_response_cache(counted_view)  # called directly, with the Host we want
    factory = RequestFactory()

    async def scenario():
        answers = []
        for host in ("localhost", "127.0.0.1", "localhost"):
            response = await middleware(factory.get("/t-host/", HTTP_HOST=host))
            answers.append((response["X-Cache"], response.content.decode()))
        return answers

    assert run(scenario()) == [("MISS", "answer 1"), ("MISS", "answer 2"), ("HIT", "answer 1")]


def test_authorization_and_non_get_requests_bypass_the_cache(counted_view):
    mount("/t-auth/", counted_view)
    client = AsyncClient()

    async def scenario():
        with use_middleware(async_response_cache):
            first = await client.get("/t-auth/", headers={"Authorization": "Bearer x"})
            second = await client.get("/t-auth/", headers={"Authorization": "Bearer x"})
            posted = await client.post("/t-auth/")
        return first, second, posted

    first, second, posted = run(scenario())
    assert "X-Cache" not in first and "X-Cache" not in second and "X-Cache" not in posted
    assert second.content == b"answer 2"


def test_storable_refuses_errors_streams_and_vary_star():
    from django.http import StreamingHttpResponse

    assert storable(HttpResponse("ok"))
    assert not storable(HttpResponse("no", status=404))
    assert not storable(StreamingHttpResponse(iter([b"x"])))
    varies_on_everything = HttpResponse("ok")
    varies_on_everything["Vary"] = "*"
    assert not storable(varies_on_everything)


def test_crossings_are_counted_through_asgihandler(project):
    mount("/t-ping/", lambda request: HttpResponse("pong"))  # a sync view: one more crossing

    async def ping(request):
        return HttpResponse("pong")

    mount("/t-aping/", ping)

    async def scenario():
        return (
            await thread_hops_per_request((), "/t-aping/"),
            await thread_hops_per_request((async_passthrough,), "/t-aping/"),
            await thread_hops_per_request((async_passthrough, sync_passthrough), "/t-aping/"),
            await thread_hops_per_request((), "/t-ping/"),
        )

    none, one_async, with_sync, sync_view = run(scenario())
    assert none == one_async == {"sync_to_async": 2, "async_to_sync": 0}
    assert with_sync == {"sync_to_async": 3, "async_to_sync": 1}
    assert sync_view == {"sync_to_async": 3, "async_to_sync": 0}


def test_microseconds_per_request_refuses_a_chain_that_does_not_answer_200(project):
    async def missing(request):
        return HttpResponse(status=404)

    mount("/t-missing/", missing)
    with pytest.raises(RuntimeError, match="answered 404"):
        run(microseconds_per_request({"none": ()}, "/t-missing/", requests=1, rounds=1))
    from django.core.handlers.asgi import ASGIHandler

    assert run(asgi_get(ASGIHandler(), "/t-missing/")) == 404


def test_asgi_get_reports_the_last_body_message_before_the_handler_returns(project):
    """The timed bars stop at the last body message; the handler's teardown comes after it."""
    from django.core.handlers.asgi import ASGIHandler

    async def ok(request):
        return HttpResponse("ok")

    mount("/t-last-body/", ok)
    events = []

    async def scenario():
        status = await asgi_get(
            ASGIHandler(), "/t-last-body/", on_last_body=lambda: events.append("last body")
        )
        events.append("returned")
        return status

    assert run(scenario()) == 200
    assert events == ["last body", "returned"]


@pytest.mark.parametrize("header", ["max-age=0", "s-maxage=0", "public, max-age=0", "max-age=x"])
def test_storable_refuses_a_zero_lifetime(header):
    response = HttpResponse("ok")
    response["Cache-Control"] = header
    assert not storable(response)


@pytest.mark.parametrize(
    "header, seconds",
    [("", TTL), ("max-age=60", 60), ("public, s-maxage=5, max-age=60", 5), ('max-age="7"', 7)],
)
def test_lifetime_prefers_s_maxage_then_max_age_then_the_default(header, seconds):
    response = HttpResponse("ok")
    if header:
        response["Cache-Control"] = header
    assert lifetime(response) == seconds
    assert storable(response)


def test_crossings_follow_boundaries_and_mixin_hooks_not_the_number_of_sync_middleware(project):
    async def ping(request):
        return HttpResponse("pong")

    mount("/t-bping/", ping)
    built_ins = (
        "django.middleware.security.SecurityMiddleware",
        "django.middleware.common.CommonMiddleware",
    )
    a, s = async_passthrough, sync_passthrough

    async def scenario():
        counts = {}
        for name, chain in {
            "one sync": (a, s, a),
            "five sync in a row": (a, s, s, s, s, s, a),
            "built-ins": built_ins,
            "built-ins above sync": (*built_ins, s),
            "sync above built-ins": (s, *built_ins),
        }.items():
            hops = await thread_hops_per_request(chain, "/t-bping/")
            counts[name] = hops["sync_to_async"] + hops["async_to_sync"]
        return counts

    counts = run(scenario())
    assert counts["one sync"] == counts["five sync in a row"] == 4
    assert counts["built-ins"] == 2 + 2 * 2  # each mixin's two hooks in async mode
    # the mixins run in sync mode, in the worker thread: only the boundary is paid
    assert counts["built-ins above sync"] == 4
    assert counts["sync above built-ins"] == counts["built-ins"] + 2


def test_a_cache_hit_costs_the_two_agets(project):
    async def page(request):
        return HttpResponse("page")

    mount("/t-hit/", page)

    async def scenario():
        await cache.aclear()
        return await thread_hops_per_request((async_response_cache,), "/t-hit/")

    assert run(scenario()) == {"sync_to_async": 2 + 2, "async_to_sync": 0}
