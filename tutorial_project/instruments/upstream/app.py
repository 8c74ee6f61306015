"""The fake upstream as a plain ASGI application (no framework: the whole protocol is here)."""

import asyncio
import json
from collections import Counter
from urllib.parse import parse_qs

# path -> (usual latency in seconds, payload)
ENDPOINTS = {
    "/weather": (0.10, {"city": "Lyon", "celsius": 14}),
    "/stocks": (0.20, {"symbol": "DJGO", "price": 42.0}),
    "/news": (0.30, {"headlines": ["Django 6.1 released", "Async all the way down"]}),
}
MODES = {"ok", "slow", "hang", "fail", "malformed"}


class FakeUpstream:
    """An ASGI app; each instance keeps its own call counts (for ``fail_every``)."""

    def __init__(self, endpoints=None):
        self.endpoints = dict(ENDPOINTS if endpoints is None else endpoints)
        self.calls = Counter()  # path -> calls so far
        self.answered = Counter()  # path -> calls it finished working on and answered
        self.abandoned = Counter()  # path -> calls cancelled while it worked (the caller left)
        self.in_flight = 0
        self.max_in_flight = 0  # the most requests it was serving at the same time

    def reset(self):
        for counter in (self.calls, self.answered, self.abandoned):
            counter.clear()
        self.max_in_flight = 0

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            return await _empty_lifespan(receive, send)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            status, body, content_type = await self._answer(scope, receive)
        except asyncio.CancelledError:
            # In-process (ASGITransport) the app runs in the caller's task: a caller that
            # gives up or is cancelled cancels it here, before it answers.
            self.abandoned[scope["path"].rstrip("/")] += 1
            raise
        finally:
            self.in_flight -= 1
        self.answered[scope["path"].rstrip("/")] += 1
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", content_type)],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _answer(self, scope, receive):
        path = scope["path"].rstrip("/")
        if path not in self.endpoints:
            return _json(404, {"error": f"no endpoint {path!r}"})
        query = {k: v[-1] for k, v in parse_qs(scope["query_string"].decode()).items()}
        mode = query.get("mode", "ok")
        if mode not in MODES:
            return _json(400, {"error": f"unknown mode {mode!r}", "modes": sorted(MODES)})
        self.calls[path] += 1
        latency, payload = self.endpoints[path]
        try:
            delay = float(query.get("delay", latency)) * (10 if mode == "slow" else 1)
            fail_every = int(query.get("fail_every", 0))
        except ValueError:
            return _json(400, {"error": "delay must be a number and fail_every an integer"})
        if mode == "hang":
            return await _hang_until_disconnect(receive)
        await asyncio.sleep(delay)
        if mode == "fail" or (fail_every and self.calls[path] % fail_every == 0):
            return _json(500, {"error": "upstream failure", "call": self.calls[path]})
        if mode == "malformed":
            return 200, b"<html>Service temporarily unavailable</html>", b"application/json"
        return _json(200, payload)


async def _hang_until_disconnect(receive):
    # Never answer; stop when the client goes away, so a server can shut down cleanly.
    while (await receive())["type"] != "http.disconnect":
        pass
    return 499, b"", b"text/plain"  # nobody reads it: the client has gone


def _json(status, data):
    return status, json.dumps(data).encode(), b"application/json"


async def _empty_lifespan(receive, send):
    # Nothing to start or stop; answer the server so it does not wait or complain.
    message = await receive()
    if message["type"] == "lifespan.startup":
        await send({"type": "lifespan.startup.complete"})
        message = await receive()
    if message["type"] == "lifespan.shutdown":
        await send({"type": "lifespan.shutdown.complete"})
