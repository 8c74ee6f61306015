"""Lesson 07's building blocks: a slow job that reports progress, and Server-Sent Events.

Writing events (the server's side):

- ``SlowJob(steps, delay)``: ``async for step in job.run()`` yields 1..steps, one every ``delay``
  seconds, and remembers when it produced each step, so a lesson can count the steps that
  were produced after the client had left.
- ``sse_event(data, event=None, *, id=None, retry=None)``: one event in the text/event-stream
  format; ``sse_comment()``: a comment line, which clients ignore (a heartbeat).
- ``with_heartbeat(events, every)``: the same events, with a comment whenever none came for
  ``every`` seconds.

Reading events (a client's side), as the HTML standard's EventSource parses them:

- ``read_events(response)``: ``(event, data)`` for each event of an httpx streaming response,
  as it arrives, ``data`` decoded from JSON; ``read_sse(response)`` the same as
  ``ServerSentEvent(event, data, id)``; ``events_in(text)``: the pairs of a whole body.
- ``follow_events(client, url)``: what a browser's ``EventSource`` does: reconnect when the
  stream ends, after the ``retry`` delay, sending ``Last-Event-ID``; stop on a 204.
- ``hold_streams(client, url, count)``: keep ``count`` streams open at once.
- ``leave_from_another_process(url)``: a client in its own process that reads the start of
  a response and hangs up, as a browser tab does; ``log_records(name)`` counts what a logger
  would have printed meanwhile.
"""

import asyncio
import collections
import contextlib
import json
import logging
import subprocess
import sys
import time
from typing import NamedTuple


class SlowJob:
    """Stands for real work that takes a while: a report, an export, a call to a slow API."""

    def __init__(self, steps=10, delay=0.1):
        self.steps, self.delay = steps, delay
        self.produced = []  # perf_counter() time of every step produced
        self.outcome = "not started"  # then "running", and "finished", "cancelled" or "closed"

    async def run(self):
        self.outcome = "running"
        try:
            for step in range(1, self.steps + 1):
                await asyncio.sleep(self.delay)  # the slow part: where cancellation lands
                self.produced.append(time.perf_counter())
                yield step
        except asyncio.CancelledError:
            self.outcome = "cancelled"
            raise
        except GeneratorExit:  # closed by its consumer before the end
            self.outcome = "closed"
            raise
        else:
            self.outcome = "finished"

    def produced_after(self, moment):
        """How many steps were produced after ``moment`` (a perf_counter() time)."""
        return sum(1 for produced in self.produced if produced > moment)


# --- writing ------------------------------------------------------------------------------


def sse_event(data, event=None, *, id=None, retry=None):
    """One Server-Sent Event: ``data`` as JSON, a blank line at the end.

    ``event`` names its type (the client's ``message`` otherwise); ``id`` becomes the
    client's last event id, sent back as ``Last-Event-ID`` when it reconnects; ``retry``
    (milliseconds) sets how long the client waits before it reconnects.
    """
    lines = []
    if retry is not None:
        lines.append(f"retry: {int(retry)}")
    if id is not None:
        if any(char in str(id) for char in "\0\r\n"):
            raise ValueError("an event id cannot hold NUL, CR or LF")
        lines.append(f"id: {id}")
    if event:
        if any(char in str(event) for char in "\r\n"):  # a line break would start a field
            raise ValueError("an event type cannot hold CR or LF")
        lines.append(f"event: {event}")
    lines.append(f"data: {json.dumps(data)}")  # JSON has no raw newline: one data line
    return "\n".join(lines) + "\n\n"


def sse_comment(text="keep-alive"):
    """A comment line: clients ignore it, but it shows proxies and the server that the
    connection is still in use (a heartbeat)."""
    return f": {text}\n\n"


async def with_heartbeat(events, every=15.0, comment="keep-alive"):
    """Yield what the async iterator ``events`` yields, and ``sse_comment(comment)`` whenever
    it has been quiet for ``every`` seconds.

    The next item is awaited in a task that survives the timeout, so a heartbeat never
    interrupts ``events`` half-way through a step. Cancelling this generator (a client
    disconnect) cancels that task, and so ``events`` at the ``await`` where it waits.
    """
    iterator = aiter(events)
    pending = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(iterator))
            done, _ = await asyncio.wait({pending}, timeout=every)
            if not done:
                yield sse_comment(comment)
                continue
            finished, pending = pending, None
            try:
                item = finished.result()
            except StopAsyncIteration:
                return
            yield item
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await pending
        if hasattr(iterator, "aclose"):
            await iterator.aclose()


# --- reading ------------------------------------------------------------------------------


class ServerSentEvent(NamedTuple):
    event: str  # "message" unless the event named its type
    data: object  # decoded from JSON (by the parser's ``decode``)
    id: str  # the last event id when this event was dispatched ("" if none yet)


class _EventParser:
    """The event-stream parsing algorithm of the HTML standard, one line at a time.

    Only one space after the colon is removed from a value; a line without a colon is a
    field with an empty value; a line that starts with a colon is a comment; ``retry``
    (digits only) persists across events. ``id`` (unless it holds NUL) sets the id buffer,
    which becomes ``last_event_id`` (what a reconnection sends) only when a blank line
    dispatches the event, even one with no data; ``end_of_stream`` drops an unfinished event,
    its id included. ``decode`` turns an event's data text into its ``data`` (JSON by
    default; SSE itself only knows text).
    """

    def __init__(self, decode=json.loads):
        self.decode = decode
        self.event, self.data = "", []
        self.last_event_id = ""
        self.id_buffer = ""  # the id read since the last dispatch, or the last event id
        self.retry = None  # milliseconds, once the server sent a valid retry field

    def end_of_stream(self):
        """Discard the event not yet dispatched when a connection ends. The next connection's
        id buffer starts from ``last_event_id``, as browsers do (Blink's EventSourceParser)."""
        self.event, self.data, self.id_buffer = "", [], self.last_event_id

    def feed(self, line):
        """Returns the finished ``ServerSentEvent`` when ``line`` ends one, else None."""
        if line == "":  # a blank line dispatches the event
            self.last_event_id = self.id_buffer  # the first step of dispatching
            if not self.data:
                self.event = ""
                return None
            finished = ServerSentEvent(
                self.event or "message", self.decode("\n".join(self.data)), self.last_event_id
            )
            self.event, self.data = "", []
            return finished
        if line.startswith(":"):
            return None  # a comment
        field, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if field == "event":
            self.event = value
        elif field == "data":
            self.data.append(value)
        elif field == "id" and "\0" not in value:
            self.id_buffer = value
        elif field == "retry" and value.isascii() and value.isdigit():
            self.retry = int(value)
        return None


def _lines(text, pending=""):
    """Split ``pending + text`` at CRLF, LF or CR (only those: the SSE rule); return
    ``(complete lines, what is left over)``. A CR at the very end is held back, since an LF
    may follow in the next chunk."""
    text = pending + text
    lines, start, index = [], 0, 0
    while index < len(text):
        char = text[index]
        if char == "\r" and index == len(text) - 1:
            break  # wait for the next chunk: it may start with "\n"
        if char in "\r\n":
            lines.append(text[start:index])
            index += 2 if text.startswith("\r\n", index) else 1
            start = index
            continue
        index += 1
    return lines, text[start:]


async def read_sse(response, parser=None):
    """Yield a ``ServerSentEvent`` for each event of a streaming httpx response, as it arrives."""
    parser = parser or _EventParser()
    pending, first = "", True
    async for text in response.aiter_text():
        if first:
            text, first = text.removeprefix("\ufeff"), False
        lines, pending = _lines(text, pending)
        for line in lines:
            if (finished := parser.feed(line)) is not None:
                yield finished


async def read_events(response, *, decode=json.loads):
    """Yield ``(event, data)`` for each event of a streaming httpx response, as it arrives;
    ``decode`` turns each event's data text into ``data``."""
    async for finished in read_sse(response, _EventParser(decode)):
        yield finished.event, finished.data


def events_in(text):
    """The ``(event, data)`` pairs of a whole Server-Sent Events body that was already read."""
    parser = _EventParser()
    lines, _unfinished = _lines(text.removeprefix("\ufeff"))  # an unfinished event is dropped
    return [(f.event, f.data) for line in lines if (f := parser.feed(line)) is not None]


async def follow_events(client, url, *, connections=3, retry=3.0, drop_after=None):
    """Read an event stream the way a browser's ``EventSource`` does; yield
    ``(connection number, ServerSentEvent)``.

    When the stream ends, it reconnects after ``retry`` seconds (or what the server's last
    ``retry:`` field said), sending the last event id as ``Last-Event-ID``. It stops for good
    when the server answers 204 No Content or anything but a 200 event stream, as
    EventSource does, or after ``connections`` connections (a browser never gives up).
    ``drop_after=n`` closes the first connection after ``n`` events, like a network failure.
    """
    parser = _EventParser()
    for number in range(1, connections + 1):
        parser.end_of_stream()  # an event the last connection left unfinished never happened
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-store"}
        if parser.last_event_id:
            headers["Last-Event-ID"] = parser.last_event_id
        async with client.stream("GET", url, headers=headers) as response:
            content_type = response.headers.get("content-type", "")
            if response.status_code != 200 or not content_type.startswith("text/event-stream"):
                return  # 204 included: EventSource closes for good and does not reconnect
            received = 0
            async for event in read_sse(response, parser):
                yield number, event
                received += 1
                if number == 1 and received == drop_after:
                    break  # stop reading: the response and its connection are closed
        if number < connections:
            await asyncio.sleep(parser.retry / 1000 if parser.retry is not None else retry)


@contextlib.asynccontextmanager
async def hold_streams(client, url, count):
    """Open ``count`` streams of ``url`` at once, read the first event of each, and keep them
    all open until the block ends. ``client`` must allow ``count`` connections."""
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(count):
            response = await stack.enter_async_context(client.stream("GET", url))
            events = read_sse(response)
            stack.push_async_callback(events.aclose)
            await anext(events)  # the stream is open and serving; the reader stays referenced
        yield count


_LEAVING_CLIENT = """
import socket, sys
host, port, path, wanted = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
with socket.create_connection((host, port)) as client:
    client.sendall(f"GET {path} HTTP/1.1\\r\\nHost: {host}\\r\\n\\r\\n".encode())
    received = 0
    while received < wanted and (data := client.recv(65536)):
        received += len(data)
"""


async def leave_from_another_process(url, wanted=100_000):
    """GET ``url`` from a client in another process that reads ``wanted`` bytes, then closes
    the connection. It reads as fast as the server writes, whatever this event loop does, as
    a real client would (one on this loop could read only when the server gives the loop
    back)."""
    host, port = url.removeprefix("http://").split("/")[0].split(":")
    path = "/" + url.removeprefix("http://").partition("/")[2]
    client = subprocess.Popen([sys.executable, "-c", _LEAVING_CLIENT, host, port, path,
                               str(wanted)])  # Popen, not asyncio's: any event loop will do
    try:
        while client.poll() is None:
            await asyncio.sleep(0.01)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
    return client.returncode


@contextlib.contextmanager
def log_records(name):
    """Count the records the logger ``name`` emits in the block (a Counter of messages),
    without printing them."""
    counted = collections.Counter()

    class Counting(logging.Handler):
        def emit(self, record):
            counted[record.getMessage()] += 1

    logger, handler = logging.getLogger(name), Counting()
    propagate, logger.propagate = logger.propagate, False
    logger.addHandler(handler)
    try:
        yield counted
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
