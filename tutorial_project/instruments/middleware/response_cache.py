"""Serve repeated GETs from the cache, awaiting the cache before the view runs.

A shared cache may only hand a page to Bob if that page would have been the same for Bob.
So this middleware follows the rules of HTTP caching (RFC 9111), as Django's own
``UpdateCacheMiddleware`` / ``FetchFromCacheMiddleware`` do, a little more strictly:

- it stores only a 200 answer to a GET, not streamed, without ``Set-Cookie`` (a cookie, such
  as a new session id, belongs to one visitor; Django refuses only those that also vary on
  ``Cookie``), without ``Cache-Control: private``, ``no-store`` or ``no-cache`` (RFC 9111
  allows storing ``no-cache`` if each reuse is revalidated; this cache cannot revalidate, so it
  refuses), without ``max-age=0`` / ``s-maxage=0`` (Django's cache middleware refuses a zero
  timeout too), and without ``Vary: *``;
- it keeps a page for ``s-maxage`` seconds, else ``max-age``, else ``TTL``;
- the key holds the absolute URL (scheme, host, path, query), so two hosts served by one
  project never share a page;
- it honours ``Vary``: the headers a response varies on (``SessionMiddleware`` adds
  ``Vary: Cookie`` whenever the view read the session) are part of the key, so a page made
  for one session cookie is served only to requests with that same cookie;
- requests with ``Authorization`` bypass it (a shared cache must not reuse those by default;
  Django adds ``Vary: Authorization`` instead).

Async only: it awaits ``cache.aget`` / ``cache.aset`` (Django 4.0+). Django ships no
async-native backend (5.2 and 6.1, ``RedisCache`` included): ``BaseCache.aget`` is
``sync_to_async(self.get)``, so each await is a crossing to a worker thread (a HIT makes
two). It answers a HIT before ``get_response``, so nothing below it runs: put it below every
middleware that refuses requests without calling ``get_response`` (an API-key check), or it
hands their pages to anyone, and above ``SessionMiddleware``, so it sees the ``Vary`` header
that the session middleware adds on the way out. It stores an answer as it comes up from
below: a page that depends on the key is marked by the view (``vary_on_headers``).
"""

import hashlib
import re

from django.core.cache import cache
from django.utils.decorators import async_only_middleware

TTL = 30  # seconds
PREFIX = "async-page"
NOT_SHARED = {"private", "no-store", "no-cache"}
COMMA = re.compile(r"\s*,\s*")  # list separator of Cache-Control and Vary


def _cache_control(response):
    """``{directive: value or None}`` of the response's Cache-Control, names lower-cased."""
    header = response.headers.get("Cache-Control", "")
    directives = {}
    for part in COMMA.split(header):
        name, _, value = part.partition("=")
        if name.strip():
            directives[name.strip().lower()] = value.strip().strip('"') if value else None
    return directives


def lifetime(response):
    """Seconds a shared cache may keep the response: s-maxage, else max-age, else TTL."""
    directives = _cache_control(response)
    for name in ("s-maxage", "max-age"):
        value = directives.get(name)
        if value is not None:
            return int(value) if value.isdigit() else 0  # a malformed age: treat as stale
    return TTL


def _vary(response):
    """The header names the response varies on, lower-cased, in a stable order."""
    header = response.headers.get("Vary", "")
    return sorted({name.strip().lower() for name in COMMA.split(header) if name.strip()})


def storable(response):
    """Whether a response may be given to another visitor who asks for the same URL."""
    return (
        response.status_code == 200
        and not response.streaming
        and not response.cookies  # Set-Cookie: this answer belongs to one visitor
        and not _cache_control(response).keys() & NOT_SHARED
        and "*" not in _vary(response)
        and lifetime(response) > 0  # max-age=0 / s-maxage=0: stale at once
    )


def _page_key(url, vary, request):
    """One key per URL and per combination of the values of the headers in ``vary``."""
    digest = hashlib.sha256(url.encode())
    for name in vary:
        value = request.headers.get(name)
        # An absent header must not share a key with a present but empty one.
        digest.update(b"\0-" if value is None else b"\0+" + value.encode())
    return f"{PREFIX}:page:{digest.hexdigest()}"


@async_only_middleware
def async_response_cache(get_response):
    async def middleware(request):
        if request.method != "GET" or "Authorization" in request.headers:
            return await get_response(request)
        url = request.build_absolute_uri()  # scheme, host, path and query string
        vary_key = f"{PREFIX}:vary:{hashlib.sha256(url.encode()).hexdigest()}"
        vary = await cache.aget(vary_key)  # what the last stored page of this URL varied on
        if vary is not None:
            cached = await cache.aget(_page_key(url, vary, request))
            if cached is not None:
                cached["X-Cache"] = "HIT"
                return cached
        response = await get_response(request)
        if storable(response):
            vary = _vary(response)
            ttl = lifetime(response)
            await cache.aset(vary_key, vary, ttl)
            await cache.aset(_page_key(url, vary, request), response, ttl)
        response["X-Cache"] = "MISS"
        return response

    return middleware
