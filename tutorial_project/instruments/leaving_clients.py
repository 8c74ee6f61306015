"""Clients that leave before a slow view answers, then one more request (lesson 08).

    result = await clients_leave(server.url, "/serving/wait-async/?ms=3000")

``clients`` connections each send one GET of ``path`` and close their connection after
``leave_after`` seconds, without reading an answer, as a user who closes the tab or a proxy
that times out does. ``next_after`` seconds after they were sent, one more client asks for
``next_path`` (by default the catalog's product list) and times its answer. Then
``/serving/waits/`` is read until every wait the server started has finished or been
cancelled. Plain sockets, so a "leave" is exactly one closed connection.
"""

import asyncio
import contextlib
import gc
import json
import logging
import time
import weakref
from urllib.parse import urlsplit

SETTLE_TIMEOUT = 30.0  # seconds for the abandoned views to end, at most


async def _get(host, port, path):
    """One GET over a new connection (``Connection: close``): the body, as JSON."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
                     .encode())
        answer = await reader.read()  # to the end: the server closes the connection
    finally:
        writer.close()
    return json.loads(answer.partition(b"\r\n\r\n")[2])


NEXT_PATH = "/api/catalog/products/"


async def clients_leave(url, path, *, clients=10, leave_after=1.0, next_path=NEXT_PATH,
                        next_after=1.5):
    """``{"next_wait": s, "started": n, "finished": m, "cancelled": k}``: the seconds the
    next request took, and the server's waits once they have all ended."""
    host, port = urlsplit(url).hostname, urlsplit(url).port
    sent = time.perf_counter()
    writers = []
    for _ in range(clients):
        _reader, writer = await asyncio.open_connection(host, port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        writers.append(writer)
    await asyncio.sleep(leave_after)
    for writer in writers:
        writer.close()  # the client leaves: the server reads the end of the connection
    await asyncio.sleep(max(0.0, sent + next_after - time.perf_counter()))
    asked = time.perf_counter()
    await _get(host, port, next_path)
    next_wait = time.perf_counter() - asked
    deadline = time.perf_counter() + SETTLE_TIMEOUT
    while True:  # until every wait that started has ended, one way or the other
        waits = await _get(host, port, "/serving/waits/")
        ended = waits["finished"] + waits["cancelled"]
        if ended >= waits["started"] or time.perf_counter() > deadline:
            return {"next_wait": next_wait, **waits}
        await asyncio.sleep(0.2)


@contextlib.contextmanager
def _quiet_orphans():
    """Django 5.2's ``ASGIHandler.handle`` leaves its ``listen_for_disconnect`` task behind
    when its own task is cancelled; asyncio logs such a task when it is collected ("Task
    exception was never retrieved"). Those lines are not the finding: drop them here."""
    logger = logging.getLogger("asyncio")

    def drop(record):
        return "Task" not in record.getMessage()

    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)


async def stopped_request(path, how, *, after=0.3, settle=1.5):
    """One GET of ``path`` through a new ``ASGIHandler`` in this process, stopped ``after``
    seconds after its first query: ``how="client"``, the client leaves (``http.disconnect``,
    as uvicorn reports a closed connection); ``how="server"``, the server cancels its task
    (as daphne does ``--application-close-timeout`` seconds, 10 by default, after a client
    left while the application still runs, and uvicorn when ``--timeout-graceful-shutdown``
    runs out), then the connection closes.

    ``{"request_finished": n, "open": m, "open_after_gc": k}``: the ``request_finished``
    signals sent, and how many database connections the request opened were still open
    ``settle`` seconds later, then after ``gc.collect()``.
    """
    from django.core.handlers.asgi import ASGIHandler
    from django.core.signals import request_finished
    from django.db.backends.signals import connection_created

    from tutorial_project.instruments.handler_cost import asgi_get

    finished, opened = [], []

    def on_finished(sender, **kwargs):
        finished.append(sender)

    def on_created(sender, connection, **kwargs):
        opened.append(weakref.ref(connection))  # a weak one: it must not keep it alive

    def still_open():
        return sum(ref() is not None and ref().connection is not None for ref in opened)

    request_finished.connect(on_finished)
    connection_created.connect(on_created)
    try:
        with _quiet_orphans():
            leaves = asyncio.Event()
            task = asyncio.ensure_future(asgi_get(ASGIHandler(), path, leaves_when=leaves))
            async with asyncio.timeout(SETTLE_TIMEOUT):
                while not opened and not task.done():  # the view has begun: it queried
                    await asyncio.sleep(0.01)
            await asyncio.sleep(after)
            if how == "server":
                task.cancel()
            leaves.set()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await asyncio.sleep(settle)  # the view has ended by now, cancelled or not
            left_open = still_open()
            gc.collect()
            return {"request_finished": len(finished), "open": left_open,
                    "open_after_gc": still_open()}
    finally:
        request_finished.disconnect(on_finished)
        connection_created.disconnect(on_created)
