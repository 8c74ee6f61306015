"""The fake upstream answers exactly as its docstring says, in-process and over loopback."""

import asyncio
import threading

import httpx
import requests

from tutorial_project.instruments.upstream import FakeUpstream
from tutorial_project.instruments.upstream.server import serve_in_thread


def in_process(upstream):
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=upstream), base_url="http://upstream"
    )


async def _get_all(upstream, paths):
    async with in_process(upstream) as client:
        return [await client.get(path) for path in paths]


def test_modes_answer_as_documented():
    ok, fail, malformed, unknown, missing = asyncio.run(
        _get_all(
            FakeUpstream(),
            [
                "/weather?delay=0",
                "/weather?mode=fail&delay=0",
                "/weather?mode=malformed&delay=0",
                "/weather?mode=nope",
                "/nowhere",
            ],
        )
    )
    assert ok.status_code == 200 and ok.json() == {"city": "Lyon", "celsius": 14}
    assert fail.status_code == 500 and fail.json()["error"] == "upstream failure"
    assert malformed.status_code == 200 and malformed.text.startswith("<html>")
    assert unknown.status_code == 400 and missing.status_code == 404


def test_fail_every_is_deterministic():
    responses = asyncio.run(_get_all(FakeUpstream(), ["/stocks?fail_every=3&delay=0"] * 6))
    assert [r.status_code for r in responses] == [200, 200, 500, 200, 200, 500]


def test_hang_never_answers_until_the_caller_gives_up():
    async def main():
        async with in_process(FakeUpstream()) as client:
            try:
                async with asyncio.timeout(0.3):
                    await client.get("/news?mode=hang")
            except TimeoutError:
                return "gave up"

    assert asyncio.run(main()) == "gave up"


def test_loopback_server_serves_then_stops_cleanly():
    upstream = FakeUpstream()
    with serve_in_thread(upstream) as base_url:
        assert base_url.startswith("http://127.0.0.1:")
        assert (
            requests.get(f"{base_url}/weather", params={"delay": 0}, timeout=5).status_code == 200
        )

        async def hang_with_read_timeout():
            async with httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(0.2)) as client:
                try:
                    await client.get("/news?mode=hang")
                except httpx.ReadTimeout:
                    return "read timeout"

        assert asyncio.run(hang_with_read_timeout()) == "read timeout"
    assert not any(t.name == "upstream-server" for t in threading.enumerate())
    try:
        requests.get(base_url, timeout=1)
    except requests.ConnectionError:
        pass
    else:
        raise AssertionError("the port still answers after the server stopped")
