"""/api/dashboard/ gives its documented answer for every upstream failure, never a bare 500."""

import asyncio

import pytest
from django.test import AsyncClient

from tutorial_project.dashboard import clients
from tutorial_project.instruments.upstream import FakeUpstream
from tutorial_project.instruments.upstream.server import serve_in_thread


def get(query):
    async def main():
        try:
            return await AsyncClient(raise_request_exception=True).get(f"/api/dashboard/{query}")
        finally:
            await clients.close_shared_client()  # the client belongs to this test's event loop

    return asyncio.run(main())


@pytest.mark.parametrize("strategy", ["concurrent", "sequential"])
def test_all_healthy(project, strategy):
    response = get(f"?strategy={strategy}")
    assert response.status_code == 200
    body = response.json()
    assert body["errors"] == {} and body["partial"] is False
    assert body["weather"]["city"] == "Lyon" and body["news"]["headlines"]


@pytest.mark.parametrize(
    "mode, kind",
    [
        ("hang", "timeout"),
        ("slow", "timeout"),
        ("fail", "bad_status"),
        ("malformed", "malformed"),
    ],
)
def test_one_failed_source_gives_a_partial_answer(project, mode, kind):
    response = get(f"?news={mode}")
    assert response.status_code == 200
    body = response.json()
    assert body["partial"] is True and body["news"] is None and body["weather"] and body["stocks"]
    assert body["errors"]["news"]["error"] == kind


def test_every_source_timing_out_gives_504(project):
    response = get("?weather=hang&stocks=slow&news=hang")
    assert response.status_code == 504
    assert {e["error"] for e in response.json()["errors"].values()} == {"timeout"}


def test_every_source_failing_gives_502(project):
    response = get("?weather=fail&stocks=malformed&news=hang")
    assert response.status_code == 502
    assert response.json()["error"] == "every upstream source failed"


@pytest.mark.parametrize("query", ["?news=sometimes", "?strategy=random"])
def test_bad_parameters_give_400_json(project, query):
    response = get(query)
    assert response.status_code == 400 and "error" in response.json()


def test_unreachable_upstream_gives_502(project):
    with serve_in_thread(FakeUpstream()) as base_url:
        pass  # the port is closed again: nothing listens there now

    async def main():
        await clients.use_client_factory(lambda: clients.loopback_client(base_url))
        try:
            return await AsyncClient(raise_request_exception=True).get("/api/dashboard/")
        finally:
            await clients.use_client_factory(None)

    response = asyncio.run(main())
    assert response.status_code == 502
    assert {e["error"] for e in response.json()["errors"].values()} == {"unreachable"}


def test_same_view_over_loopback(project):
    with serve_in_thread(FakeUpstream()) as base_url:

        async def main():
            await clients.use_client_factory(lambda: clients.loopback_client(base_url))
            try:
                return await AsyncClient().get("/api/dashboard/?stocks=hang")
            finally:
                await clients.use_client_factory(None)

        response = asyncio.run(main())
    assert response.status_code == 200 and response.json()["errors"]["stocks"]["error"] == "timeout"
