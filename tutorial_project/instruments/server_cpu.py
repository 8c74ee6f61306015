"""The server CPU of a minimal request behind a real uvicorn: lesson 02's "measured outside
the lesson" figures, to rerun on your machine.

    python -m tutorial_project.instruments.server_cpu            # asyncio and h11
    python -m tutorial_project.instruments.server_cpu --loop uvloop --http httptools

It serves a bare Django (no middleware, no database, ``DEBUG = False``) with uvicorn in a
process of its own, on 127.0.0.1 and a free port, and loads it from this process with a
raw-socket HTTP/1.1 client on keep-alive connections (no HTTP library on the client side to
share the CPU with). The server's CPU time, all its threads, comes from the operating system
(``psutil``) before and after each window of requests; wall time is printed but means little
on a loaded machine. Three setups, taken in turn for ``--rounds`` rounds (the least of each is
kept: other work only adds CPU):

- ``async``: an async view that waits for nothing, under Django's ``ASGIHandler``;
- ``async, no context``: the same view under ``ASGIHandler`` without its per-request
  ``ThreadSensitiveContext`` (lesson 02's ``NoRequestContext``: an instrument, not a fix);
- ``sync``: the same view written sync, under ``ASGIHandler``.

The difference of the first two is what the thread per request costs; the third against the
first is what an async view saves (the view's hop into that thread). Then ``--bursts`` bursts
of ``--connections`` requests at once (one per connection) to a view that waits 100 ms, async
(``asyncio.sleep``) and sync (``time.sleep``): the median burst's wall time against the ideal,
0.1 s, every wait at the same time.
"""

import argparse
import asyncio
import functools
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

import psutil

from tutorial_project.instruments.servers import HOST, free_port

MODULE = "tutorial_project.instruments.server_cpu"  # uvicorn imports it by this name
PATHS = {"async": "/ctx/async/", "async, no context": "/no-ctx/async/", "sync": "/ctx/sync/"}
WAITS = {"async": "/ctx/wait-async/", "sync": "/ctx/wait-sync/"}  # 100 ms each
WAIT = 0.1


# --- The server side: what uvicorn imports (``server_cpu:application``) -------------------


@functools.cache  # uvicorn's run() looks the app up, then its Config.load() again
def _build_application():
    from django.conf import settings

    settings.configure(
        DEBUG=False, ALLOWED_HOSTS=["*"], ROOT_URLCONF=MODULE, MIDDLEWARE=[], DATABASES={},
        INSTALLED_APPS=[], SECRET_KEY="server-cpu, not secret", LOGGING_CONFIG=None,
    )
    import django

    django.setup()
    from django.core.handlers.asgi import ASGIHandler

    class NoRequestContext(ASGIHandler):
        async def __call__(self, scope, receive, send):
            await self.handle(scope, receive, send)

    with_context, without = ASGIHandler(), NoRequestContext()

    async def application(scope, receive, send):
        if scope["type"] != "http":  # no lifespan: run uvicorn with --lifespan off
            raise ValueError(scope["type"])
        handler = without if scope["path"].startswith("/no-ctx/") else with_context
        scope = {**scope, "path": scope["path"].removeprefix("/no-ctx").removeprefix("/ctx")}
        await handler(scope, receive, send)

    return application


def __getattr__(name):  # built on first use, so that importing this module configures nothing
    if name == "urlpatterns":
        from django.http import JsonResponse
        from django.urls import path

        async def no_wait(request):
            return JsonResponse({"price": 0})

        def no_wait_sync(request):
            return JsonResponse({"price": 0})

        async def wait_async(request):
            await asyncio.sleep(WAIT)
            return JsonResponse({"price": 0})

        def wait_sync(request):
            time.sleep(WAIT)
            return JsonResponse({"price": 0})

        return [path("async/", no_wait), path("sync/", no_wait_sync),
                path("wait-async/", wait_async), path("wait-sync/", wait_sync)]
    if name == "application":
        return _build_application()
    raise AttributeError(name)


# --- The client side ----------------------------------------------------------------------


@dataclass
class Window:
    setup: str
    requests: int
    cpu_ms: float  # the server's CPU per request, in ms
    seconds: float  # wall time of the window


async def _read_response(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), None)
    if length is not None:
        await reader.readexactly(length)
    else:  # chunked: Django sets no Content-Length without CommonMiddleware
        await reader.readuntil(b"0\r\n\r\n")
    return status


async def _get(reader, writer, path):
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
    await writer.drain()
    status = await _read_response(reader)
    if status != 200:
        raise RuntimeError(f"{path} answered {status}")


async def _connection(port, path, requests):
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        for _ in range(requests):
            await _get(reader, writer, path)
    finally:
        writer.close()
        await writer.wait_closed()


async def _bursts(port, path, connections, bursts):
    """Each burst: one request on every open connection at once; its wall time in s."""
    opened = [await asyncio.open_connection(HOST, port) for _ in range(connections)]
    seconds = []
    try:
        for _ in range(bursts + 1):  # the first one warms up
            started = time.perf_counter()
            await asyncio.gather(*(_get(reader, writer, path) for reader, writer in opened))
            seconds.append(time.perf_counter() - started)
    finally:
        for _, writer in opened:
            writer.close()
    return seconds[1:]


async def _window(server, port, setup, requests, connections):
    each = max(1, requests // connections)
    before, started = server.cpu_times(), time.perf_counter()
    await asyncio.gather(*(_connection(port, PATHS[setup], each) for _ in range(connections)))
    after, seconds = server.cpu_times(), time.perf_counter() - started
    cpu = (after.user + after.system) - (before.user + before.system)
    return Window(setup, each * connections, cpu / (each * connections) * 1000, seconds)


async def measure(*, requests=3000, connections=50, rounds=3, loop="asyncio", http="h11",
                  bursts=0):
    """Serve, warm up, then take each setup in turn for ``rounds`` rounds: a list of Windows;
    with ``bursts``, also {"async": [seconds, ...], "sync": [...]} for the waiting views."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", f"{MODULE}:application", "--host", HOST,
               "--port", str(port), "--loop", loop, "--http", http, "--lifespan", "off",
               "--no-access-log", "--log-level", "warning"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        server = psutil.Process(process.pid)
        await _until_listening(process, port)
        for setup in PATHS:  # warm up: imports, URL resolver, the first threads
            await _window(server, port, setup, 10 * connections, connections)
        windows = [await _window(server, port, setup, requests, connections)
                   for _ in range(rounds) for setup in PATHS]
        if not bursts:
            return windows
        return windows, {kind: await _bursts(port, path, connections, bursts)
                         for kind, path in WAITS.items()}
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _until_listening(process, port, timeout=60.0):
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"uvicorn exited at start:\n{process.stdout.read().decode()}")
        try:
            _, writer = await asyncio.open_connection(HOST, port)
            writer.close()
            await writer.wait_closed()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"uvicorn did not listen within {timeout} s") from None
            await asyncio.sleep(0.05)


def summary(windows):
    """The least CPU per request of each setup, and the two shares lesson 02 quotes."""
    least = {setup: min(w.cpu_ms for w in windows if w.setup == setup) for setup in PATHS}
    return {
        **least,
        "thread share": (least["async"] - least["async, no context"]) / least["async"],
        "sync / async": least["sync"] / least["async"],
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000, help="per window (3000)")
    parser.add_argument("--connections", type=int, default=50, help="keep-alive ones (50)")
    parser.add_argument("--rounds", type=int, default=3, help="windows per setup (3)")
    parser.add_argument("--loop", default="asyncio", help="uvicorn's: asyncio or uvloop")
    parser.add_argument("--http", default="h11", help="uvicorn's: h11 or httptools")
    parser.add_argument("--bursts", type=int, default=9, help="of waiting views, per kind (9)")
    options = parser.parse_args(argv)
    windows, bursts = asyncio.run(measure(**vars(options)))
    import django

    load = f", load {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    print(f"Django {django.get_version()}, Python {sys.version.split()[0]}, uvicorn with "
          f"{options.loop} and {options.http}, {os.cpu_count()} cores{load}; "
          f"{options.connections} keep-alive connections")
    for setup in PATHS:
        cpu = [w.cpu_ms for w in windows if w.setup == setup]
        wall = statistics.median(w.seconds for w in windows if w.setup == setup)
        print(f"  {setup:<18} server CPU {min(cpu):.2f} ms a request (least of "
              f"{len(cpu)}; most {max(cpu):.2f}), wall {wall:.1f} s a window")
    shares = summary(windows)
    print(f"  the thread per request: {shares['thread share']:.0%} of the async request's "
          f"server CPU; the sync view: {shares['sync / async']:.2f}x the async one")
    for kind, seconds in bursts.items():
        shares[f"{kind} burst"] = statistics.median(seconds) / WAIT
        print(f"  {options.connections} {kind} views waiting {WAIT * 1000:.0f} ms at once: the "
              f"median of {len(seconds)} bursts took {shares[f'{kind} burst']:.1f}x the ideal "
              f"{WAIT} s (best {min(seconds) / WAIT:.1f}x)")
    return shares


if __name__ == "__main__":
    main()
