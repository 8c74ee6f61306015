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
import json
import time
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
