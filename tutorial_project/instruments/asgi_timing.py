"""When would the client get its response? Call Django's ASGIHandler as a server does.

    seconds = await seconds_to_response("/report/")

A server sends the status line as soon as the application sends ``http.response.start``:
this times that message. The handler's call itself returns later (it still closes the
response, in a thread), so timing the whole call would measure something else.
"""

import asyncio
import logging
import time

from django.core.handlers.asgi import ASGIHandler


async def seconds_to_response(path):
    """GET ``path`` through a new ``ASGIHandler``; seconds until the response started."""
    scope = {"type": "http", "method": "GET", "path": path, "query_string": b"",
             "headers": [(b"host", b"testserver")]}
    body_sent = False
    started = time.perf_counter()
    response_started = []

    async def receive():
        nonlocal body_sent
        if not body_sent:
            body_sent = True
            return {"type": "http.request", "body": b""}
        await asyncio.Event().wait()  # the client stays connected until the handler is done

    async def send(message):
        if message["type"] == "http.response.start":
            response_started.append(time.perf_counter() - started)

    logger = logging.getLogger("django.request")  # a 5xx is the point here, not news
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        await ASGIHandler()(scope, receive, send)
    finally:
        logger.setLevel(level)
    return response_started[0]
