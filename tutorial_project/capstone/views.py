"""``/capstone/`` (JSON) and ``/capstone/stream/`` (Server-Sent Events), built from pieces.

``make_dashboard(pieces)`` and ``make_stream(pieces)`` build the views from any set of
``Pieces`` (lesson 12 builds them from the learner's answers); ``dashboard`` and
``dashboard_stream`` are built from the reference pieces in ``service``.

The JSON view answers 200 with every widget it could get (``partial`` says if some failed),
502 if every source failed (504 if they all timed out), 400 for an unknown mode. Only a
complete answer is ever stored in the cache: a partial one would hide a recovered source
for 30 s, so it is handed to the requests that waited for it and never written.
"""

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.http import JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from tutorial_project.capstone import service, stock
from tutorial_project.catalog.models import Product
from tutorial_project.dashboard.clients import client_for
from tutorial_project.dashboard.sources import SOURCES
from tutorial_project.instruments.upstream.app import MODES


@dataclass(frozen=True)
class Pieces:
    """The four functions the views are made of (steps 1 to 4 of lesson 12)."""

    catalog_summary: Any
    gather_sources: Any
    cached: Any
    dashboard_events: Any


REFERENCE = Pieces(service.catalog_summary, service.gather_sources, service.cached,
                   service.dashboard_events)


class Incomplete(Exception):  # noqa: N818  (not an error: a partial answer, served not cached)
    """Some sources failed: the widgets we have, and why the others are missing."""

    def __init__(self, data, errors):
        super().__init__(f"{len(errors)} source(s) failed")
        self.data, self.errors = data, errors


def make_dashboard(pieces):
    async def dashboard(request):
        modes = {name: request.GET.get(name, "ok") for name in SOURCES}
        if any(mode not in MODES for mode in modes.values()):
            return JsonResponse({"error": "unknown mode", "modes": sorted(MODES)}, status=400)
        catalog = await pieces.cached("capstone:catalog", pieces.catalog_summary)

        key = "capstone:widgets:" + urlencode(modes)  # a test's ?news=fail never meets real data
        # The loop's shared client under ASGI; under WSGI one for this request, then closed.
        async with client_for(request) as client:

            async def complete_widgets():
                data, errors = await pieces.gather_sources(client, modes)
                if errors:
                    raise Incomplete(data, errors)  # cached() stores nothing when compute raises
                return data

            try:
                data, errors = await pieces.cached(key, complete_widgets), {}
            except Incomplete as partial:
                data, errors = partial.data, partial.errors
        if len(errors) == len(SOURCES):
            timed_out = all(error["error"] == "timeout" for error in errors.values())
            return JsonResponse({"error": "every upstream source failed", "errors": errors},
                                status=504 if timed_out else 502)
        response = JsonResponse({"catalog": catalog, **data, "errors": errors,
                                 "partial": bool(errors)})
        if errors:
            response["Cache-Control"] = "no-store"  # a partial page must not stick in a browser
        return response

    return dashboard


def make_stream(pieces):
    async def events(request):
        # The client is taken when the body is read, on the loop that reads it: under WSGI,
        # Django reads an async stream in an event loop of its own, after the view's has gone.
        async with client_for(request) as client:
            async for event in pieces.dashboard_events(client):
                yield event

    async def dashboard_stream(request):
        response = StreamingHttpResponse(events(request), content_type="text/event-stream")
        response["Cache-Control"] = "no-cache"  # each client sees its own live progress
        response["X-Accel-Buffering"] = "no"  # nginx: pass each event on, do not buffer them
        return response

    return dashboard_stream


def make_reserve(reserve):
    """``POST {"sku": ..., "quantity": n}``: take n from the stock with ``reserve(sku, n)``.

    200 with what is left; 400 for a body that is not that (nothing is written); 404 for an
    unknown SKU; 409 when fewer are left (nothing is taken); 405 for another method.
    """

    # No cookie or session says who asks, so a forged request can do nothing a stranger
    # cannot: CSRF has nothing to protect. Once a login decides who may reserve, drop this:
    # a cross-site <form enctype="text/plain"> can post a body that parses as this JSON.
    @csrf_exempt
    async def reserve_view(request):
        if request.method != "POST":
            return JsonResponse({"error": "use POST"}, status=405)
        try:
            body = json.loads(request.body)
            sku, quantity = body["sku"], body["quantity"]
        except (ValueError, KeyError, TypeError):
            body = sku = quantity = None
        if not isinstance(sku, str) or type(quantity) is not int or quantity < 1:
            return JsonResponse({"error": 'send {"sku": "...", "quantity": 1 or more}'},
                                status=400)
        try:
            left = await reserve(sku, quantity)
        except Product.DoesNotExist:
            return JsonResponse({"error": f"no product {sku!r}"}, status=404)
        except stock.OutOfStock as refused:
            return JsonResponse({"error": str(refused)}, status=409)
        return JsonResponse({"sku": sku, "reserved": quantity, "left": left})

    return reserve_view


dashboard = make_dashboard(REFERENCE)
dashboard_stream = make_stream(REFERENCE)
reserve = make_reserve(stock.reserve)
