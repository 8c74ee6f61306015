"""servers.py: servers start, bind 127.0.0.1 only, answer, and are gone after the block."""

import asyncio
import os
import socket

import httpx
import psutil
import pytest

from tutorial_project.instruments.servers import leftovers, serve, server_command


def bound_addresses(pid):
    """The local TCP addresses a process listens on (psutil: Linux, macOS and Windows)."""
    return [
        (c.laddr.ip, c.laddr.port)
        for c in psutil.Process(pid).net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN
    ]


@pytest.mark.parametrize("kind", ["uvicorn", "daphne", "waitress"])
def test_server_starts_binds_loopback_answers_and_stops(project, kind):
    async def scenario():
        async with serve(kind) as server:
            assert server.url.startswith("http://127.0.0.1:")
            async with httpx.AsyncClient() as client:
                response = await client.get(f"{server.url}/api/catalog/products/")
                assert response.status_code == 200 and len(response.json()["products"]) == 12
            listening = bound_addresses(server.pid)
            port = server.port
        return listening, port

    listening, port = asyncio.run(scenario())
    assert listening == [("127.0.0.1", port)]
    assert leftovers() == {}
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_workers_are_stopped_with_their_supervisor(project):
    async def scenario():
        async with serve("uvicorn", workers=2) as server:
            async with httpx.AsyncClient() as client:
                answers = await asyncio.gather(
                    *(client.get(f"{server.url}/serving/threads/") for _ in range(20))
                )
            assert {a.status_code for a in answers} == {200}

    asyncio.run(scenario())
    assert leftovers() == {}


@pytest.mark.skipif(os.name != "posix", reason="gunicorn runs on Unix only")
@pytest.mark.parametrize("kind", ["gunicorn-uvicorn", "gunicorn-threads"])
def test_gunicorn_and_its_workers_are_stopped(project, kind):
    async def scenario():
        async with serve(kind, workers=2, threads=8) as server:
            async with httpx.AsyncClient() as client:
                answers = await asyncio.gather(
                    *(client.get(f"{server.url}/serving/wait-sync/?ms=10") for _ in range(20))
                )
            assert {a.status_code for a in answers} == {200}
            return {a.json()["pid"] for a in answers}, server.pid

    pids, supervisor = asyncio.run(scenario())
    assert supervisor not in pids
    assert leftovers() == {}


def test_a_server_that_cannot_start_says_why(project):
    async def scenario():
        async with serve("uvicorn", env={"DJANGO_SETTINGS_MODULE": "no.such.settings"}):
            pass

    with pytest.raises(RuntimeError, match="exited at start"):
        asyncio.run(scenario())
    assert leftovers() == {}


def test_unknown_server_kind():
    with pytest.raises(ValueError, match="unknown server"):
        server_command("gunicorn", 8000)


def test_wait_views_reject_bad_input(project):
    from django.test import AsyncClient

    async def scenario():
        client = AsyncClient()
        return [
            await client.get("/serving/wait-async/?ms=abc"),
            await client.get("/serving/wait-sync/?ms=-1"),
            await client.get("/serving/wait-async/?ms=999999"),
        ]

    for response in asyncio.run(scenario()):
        assert response.status_code == 400 and "ms must" in response.json()["error"]


def test_a_stopped_servers_port_taken_by_another_program_is_not_reported(project):
    # Once stopped, the port number is free: the system may hand it to another program (a
    # kernel, another test's server), and that is not this process's leftover.
    import subprocess
    import sys
    import time

    from tutorial_project.instruments.servers import serve_wsgi_in_thread

    with serve_wsgi_in_thread() as url:
        port = int(url.rsplit(":", 1)[1])
    code = (
        "import socket, time; s = socket.socket(); "
        "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
        f"s.bind(('127.0.0.1', {port})); s.listen(); time.sleep(30)"
    )
    other = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        else:
            pytest.fail("the other program did not bind the freed port")
        assert leftovers() == {}
    finally:
        other.kill()
        other.wait()


def test_waits_counts_finished_and_cancelled_waits(project):
    from django.core.handlers.asgi import ASGIHandler
    from django.test import AsyncClient

    from tutorial_project.instruments.handler_cost import asgi_get

    async def scenario():
        client = AsyncClient()
        before = (await client.get("/serving/waits/")).json()
        await client.get("/serving/wait-async/?ms=0")
        # a client that leaves after 0.2 s: Django (5.0+) cancels the async view's wait
        await asgi_get(ASGIHandler(), "/serving/wait-async/?ms=3000", leaves_after=0.2)
        after = (await client.get("/serving/waits/")).json()
        return {name: after[name] - before[name] for name in after}

    assert asyncio.run(scenario()) == {"started": 2, "finished": 1, "cancelled": 1}


def test_a_view_left_by_its_clients_is_cancelled_under_uvicorn_not_waitress(project):
    from tutorial_project.instruments.leaving_clients import clients_leave

    async def left(kind, path):
        async with serve(kind, threads=2) as server:
            return await clients_leave(server.url, path, clients=2, leave_after=0.5,
                                       next_after=0.7)

    async def scenario():
        return await asyncio.gather(left("uvicorn", "/serving/wait-async/?ms=2000"),
                                    left("waitress", "/serving/wait-sync/?ms=2000"))

    uv, w = asyncio.run(scenario())
    assert (uv["started"], uv["finished"], uv["cancelled"]) == (2, 0, 2)
    assert (w["started"], w["finished"], w["cancelled"]) == (2, 2, 0)
    assert uv["next_wait"] < 1 < w["next_wait"]  # waitress's 2 threads ran on: a queue
    assert leftovers() == {}
