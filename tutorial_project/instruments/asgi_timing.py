"""Call Django's ASGIHandler (and WSGIHandler) as a server does, for lesson 01.

    seconds = await seconds_to_response("/report/")  # when would the client get its answer?
    seconds = await seconds_to_wsgi_response("/report/")  # the same under WSGI
    await cancel_the_handler("/patient/", after=0.1)  # a server that gives up on the app

A server sends the status line as soon as the application sends ``http.response.start``:
this times that message. The handler's call itself returns later (it still closes the
response, in a thread), so timing the whole call would measure something else.
"""

import asyncio
import concurrent.futures
import io
import logging
import time

from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.wsgi import WSGIHandler


def _get(path):
    return {"type": "http", "method": "GET", "path": path, "query_string": b"",
            "headers": [(b"host", b"testserver")]}


async def seconds_to_response(path):
    """GET ``path`` through a new ``ASGIHandler``; seconds until the response started."""
    scope = _get(path)
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


async def seconds_to_wsgi_response(path):
    """GET ``path`` through a new ``WSGIHandler``, on a new thread as a WSGI server's thread
    (no event loop, nothing of asgiref's left on it); seconds until ``start_response``."""
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "",
               "SERVER_NAME": "testserver", "SERVER_PORT": "80", "HTTP_HOST": "testserver",
               "wsgi.input": io.BytesIO(b""), "wsgi.url_scheme": "http"}
    response_started = []

    def serve():
        started = time.perf_counter()
        body = WSGIHandler()(environ, lambda status, headers, exc_info=None:
                             response_started.append(time.perf_counter() - started))
        try:
            b"".join(body)
        finally:
            body.close()  # as a WSGI server must

    logger = logging.getLogger("django.request")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as server_thread:
            await asyncio.wrap_future(server_thread.submit(serve))
    finally:
        logger.setLevel(level)
    return response_started[0]


async def cancel_the_handler(path, after):
    """GET ``path`` through a new ``ASGIHandler``; cancel the handler's task after ``after`` s.

    This is what a server may do at shutdown, or when it stops waiting for an application;
    the client itself never disconnects (no ``http.disconnect``). Returns once the handler's
    task has ended; whatever the handler started and left running goes on.
    """
    listeners = []

    async def receive():
        if not listeners:
            listeners.append(None)
            return {"type": "http.request", "body": b""}
        listeners.append(asyncio.current_task())  # the handler's disconnect listener
        await asyncio.Event().wait()

    async def send(message):
        pass

    handler = asyncio.create_task(ASGIHandler()(_get(path), receive, send))
    await asyncio.sleep(after)
    handler.cancel()
    await asyncio.gather(handler, return_exceptions=True)
    # A listener the handler left behind (Django 5.2 does) would wait forever: stop it.
    for listener in listeners[1:]:
        listener.cancel()
    await asyncio.gather(*listeners[1:], return_exceptions=True)
