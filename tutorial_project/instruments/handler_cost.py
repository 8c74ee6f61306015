"""CPU per request under Django's two handlers: same view, same middleware, no server.

    costs = await cpu_ms_per_request({"ASGI": ("asgi", "/serving/wait-sync/?ms=0"),
                                      "WSGI": ("wsgi", "/serving/wait-sync/?ms=0")})
    costs["ASGI"], costs["WSGI"]  # CPU milliseconds per request

Requests go one after another straight into ``ASGIHandler.__call__`` (as uvicorn or daphne
call it, on this event loop) and into ``WSGIHandler.__call__`` (as waitress calls it, on a
thread of its own). No socket, no HTTP parsing, no load tool: what differs is the handler.
The measure is the process's CPU time (every thread's), not the wall clock, so a machine
busy with other programs changes it far less than it changes throughput.

``cpu_ms_per_request_apart()`` takes the same measure in a process of its own. Measured in a
notebook's kernel, the kernel's own threads bill their CPU to it: a thread that spends CPU per
second of wall time adds to each request in proportion to how long the request takes, so
more to the slower ASGI path, and the ratio comes out too high, not too low.
"""

import asyncio
import io
import json
import os
import sys
import time
from urllib.parse import urlsplit

from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.wsgi import WSGIHandler

HOST = "testserver"
PERSISTENT_CONN_MAX_AGE = 60  # seconds: a usual setting for a WSGI deployment


async def asgi_get(handler, path, leaves_after=None, leaves_when=None):
    """One GET of ``path`` (with its query string) through ``handler``; its status.

    ``leaves_after``: seconds after which the client disconnects (``http.disconnect``), or
    ``leaves_when``: an ``asyncio.Event`` it disconnects on; then the status is None if no
    response had started."""
    url = urlsplit(path)
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "GET", "scheme": "http", "path": url.path,
             "raw_path": url.path.encode(), "query_string": url.query.encode(),
             "root_path": "", "headers": [(b"host", HOST.encode())],
             "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 80)}
    messages = iter([{"type": "http.request", "body": b"", "more_body": False}])
    stays_connected = asyncio.Event()  # never set: the client waits for the whole response
    status = []

    async def receive():
        message = next(messages, None)
        if message is None:
            if leaves_when is not None:
                await leaves_when.wait()
            elif leaves_after is not None:
                await asyncio.sleep(leaves_after)
            else:
                await stays_connected.wait()
            return {"type": "http.disconnect"}
        return message

    async def send(message):
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await handler(scope, receive, send)
    return status[0] if status else None


def wsgi_get(handler, path):
    """One GET of ``path`` through the WSGI ``handler``, as a WSGI server calls it."""
    url = urlsplit(path)
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": url.path, "QUERY_STRING": url.query,
               "SERVER_NAME": HOST, "SERVER_PORT": "80", "HTTP_HOST": HOST,
               "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
               "wsgi.input": io.BytesIO(b""), "wsgi.errors": sys.stderr,
               "wsgi.url_scheme": "http", "wsgi.version": (1, 0),
               "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False}
    status = []
    body = handler(environ, lambda line, headers, exc_info=None: status.append(line))
    try:
        b"".join(body)
    finally:
        body.close()  # as a WSGI server must: request_finished, connections closed
    return int(status[0].split()[0])


def _wsgi_batch(handler, path, requests, conn_max_age=None):
    """CPU seconds of ``requests`` GETs on this thread; with ``conn_max_age``, the database
    connection persists from one request to the next (``CONN_MAX_AGE``), as a WSGI server's
    thread keeps it, and is closed after the batch, off the clock."""
    from django.db import connection

    settings = connection.settings_dict  # one dict, shared by every thread's wrapper
    before = settings["CONN_MAX_AGE"]
    if conn_max_age is not None:
        settings["CONN_MAX_AGE"] = conn_max_age
    try:
        started = time.process_time()
        for _ in range(requests):
            if (status := wsgi_get(handler, path)) != 200:
                raise RuntimeError(f"{path} answered {status} under WSGIHandler")
        return time.process_time() - started
    finally:
        settings["CONN_MAX_AGE"] = before
        connection.close()  # this thread's connection: none is left open


async def _asgi_batch(handler, path, requests):
    started = time.process_time()
    for _ in range(requests):
        if (status := await asgi_get(handler, path)) != 200:
            raise RuntimeError(f"{path} answered {status} under ASGIHandler")
    return time.process_time() - started


async def cpu_ms_per_request(setups, *, requests=150, rounds=3):
    """``{name: CPU ms per request}`` for ``setups``, ``{name: (kind, path)}``, kind "asgi",
    "wsgi", or "wsgi-persistent" (WSGIHandler with ``CONN_MAX_AGE = 60``: each batch's thread
    keeps its database connection from one request to the next; the others use the settings').

    Both handlers load the project's settings.MIDDLEWARE. The setups take turns, round
    after round, ``requests`` each; each reports its cheapest round (other programs can only
    add to a round's CPU, by contention; nothing makes a round cheaper than its work).
    The WSGI requests run on one thread of their own, not on this event loop's thread:
    a WSGI server runs sync views on its threads, where the sync ORM is allowed.
    """
    handlers = {"asgi": ASGIHandler(), "wsgi": WSGIHandler()}

    async def batch(kind, path, count):
        if kind == "asgi":
            return await _asgi_batch(handlers[kind], path, count)
        conn_max_age = PERSISTENT_CONN_MAX_AGE if kind == "wsgi-persistent" else None
        return await asyncio.to_thread(_wsgi_batch, handlers["wsgi"], path, count, conn_max_age)

    for kind, path in setups.values():  # warm-up: imports, the URL resolver, first threads
        await batch(kind, path, 20)
    best = dict.fromkeys(setups, float("inf"))
    for _ in range(rounds):
        for name, (kind, path) in setups.items():
            seconds = await batch(kind, path, requests)
            best[name] = min(best[name], seconds / requests * 1000)
    return best


async def cpu_ms_per_request_apart(setups, *, requests=150, rounds=3, middleware=None):
    """``cpu_ms_per_request(setups, ...)`` run in a fresh Python process of its own, on this
    process's database (``TUTORIAL_DATABASE`` is inherited) and settings; ``middleware``, a
    list, replaces ``settings.MIDDLEWARE`` there (``[]``: none). No thread of this process
    (a notebook kernel's, say) adds to its CPU time."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", __name__, json.dumps([setups, requests, rounds, middleware]),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate()
    if process.returncode:
        raise RuntimeError(err.decode()[-2000:])
    return json.loads(out)


def _main(setups, requests, rounds, middleware):
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tutorial_project.settings")
    import django
    from django.conf import settings

    django.setup()
    if middleware is not None:
        settings.MIDDLEWARE = middleware  # read when the handlers are made, below
    setups = {name: tuple(setup) for name, setup in setups.items()}
    return asyncio.run(cpu_ms_per_request(setups, requests=requests, rounds=rounds))


if __name__ == "__main__":
    print(json.dumps(_main(*json.loads(sys.argv[1]))))
