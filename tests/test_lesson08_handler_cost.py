"""Lesson 08's handler_cost instrument: it serves the same view through both handlers, reads
real statuses, and refuses to time a path that does not answer 200."""

import asyncio

import pytest

from tutorial_project.instruments.handler_cost import (
    asgi_get,
    cpu_ms_per_request,
    cpu_ms_per_request_apart,
    wsgi_get,
)


def test_both_handlers_serve_the_view_with_its_query_string(project):
    from django.core.handlers.asgi import ASGIHandler
    from django.core.handlers.wsgi import WSGIHandler

    assert asyncio.run(asgi_get(ASGIHandler(), "/serving/wait-async/?ms=0")) == 200
    assert asyncio.run(asgi_get(ASGIHandler(), "/serving/wait-async/?ms=nope")) == 400
    assert wsgi_get(WSGIHandler(), "/serving/wait-sync/?ms=0") == 200
    assert wsgi_get(WSGIHandler(), "/serving/wait-sync/?ms=nope") == 400


def test_cpu_per_request_names_every_setup(project):
    setups = {"asgi": ("asgi", "/serving/wait-sync/?ms=0"),
              "wsgi": ("wsgi", "/serving/wait-sync/?ms=0")}
    costs = asyncio.run(cpu_ms_per_request(setups, requests=10, rounds=1))
    assert set(costs) == {"asgi", "wsgi"}
    assert all(0 < ms < 1000 for ms in costs.values()), costs


def test_cpu_per_request_refuses_a_path_that_fails(project):
    with pytest.raises(RuntimeError, match="answered 404 under WSGIHandler"):
        asyncio.run(cpu_ms_per_request({"x": ("wsgi", "/no-such-page/")}, requests=1))


def test_persistent_connections_make_wsgi_cheaper_and_leave_nothing_open(project):
    from django.db import connections

    setups = {"wsgi": ("wsgi", "/serving/wait-sync/?ms=0"),
              "persistent": ("wsgi-persistent", "/serving/wait-sync/?ms=0")}
    costs = asyncio.run(cpu_ms_per_request(setups, requests=60, rounds=2))
    assert costs["persistent"] < costs["wsgi"], costs  # no connect and close per request
    assert connections.settings["default"]["CONN_MAX_AGE"] == 0  # put back


def test_cpu_per_request_apart_runs_in_a_process_of_its_own(project):
    """The kernel's threads bill no CPU to it; the setups, the middleware and the database
    are this process's."""
    setups = {"asgi": ("asgi", "/serving/wait-sync/?ms=0"),
              "wsgi": ("wsgi", "/serving/wait-sync/?ms=0")}
    costs = asyncio.run(cpu_ms_per_request_apart(setups, requests=10, rounds=1))
    assert set(costs) == {"asgi", "wsgi"}
    assert all(0 < ms < 1000 for ms in costs.values()), costs
    bare = asyncio.run(cpu_ms_per_request_apart(setups, requests=10, rounds=1, middleware=[]))
    assert set(bare) == {"asgi", "wsgi"}
    with pytest.raises(RuntimeError, match="answered 404 under WSGIHandler"):
        asyncio.run(cpu_ms_per_request_apart({"x": ("wsgi", "/no-such-page/")}, requests=1))
