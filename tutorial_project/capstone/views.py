"""``/capstone/`` (JSON) and ``/capstone/stream/`` (Server-Sent Events), built from ``service``.

The JSON view answers 200 with every widget it could get (``partial`` says if some failed),
502 if every source failed (504 if they all timed out), 400 for an unknown mode. Only a
complete answer is cached: a partial one would hide a recovered source for 30 s.
"""

from urllib.parse import urlencode

from django.core.cache import cache
from django.http import JsonResponse, StreamingHttpResponse

from tutorial_project.capstone.service import (
    cached,
    catalog_summary,
    dashboard_events,
    gather_sources,
)
from tutorial_project.dashboard.clients import shared_client
from tutorial_project.dashboard.sources import SOURCES
from tutorial_project.instruments.upstream.app import MODES


async def dashboard(request):
    modes = {name: request.GET.get(name, "ok") for name in SOURCES}
    if any(mode not in MODES for mode in modes.values()):
        return JsonResponse({"error": "unknown mode", "modes": sorted(MODES)}, status=400)
    catalog = await cached("capstone:catalog", catalog_summary)
    key = "capstone:widgets:" + urlencode(modes)  # a test's ?news=fail never meets real data
    data, errors = await cached(key, lambda: gather_sources(shared_client(), modes))
    if errors:
        await cache.adelete(key)  # a partial answer is served once, never kept
    if len(errors) == len(SOURCES):
        timed_out = all(error["error"] == "timeout" for error in errors.values())
        return JsonResponse({"error": "every upstream source failed", "errors": errors},
                            status=504 if timed_out else 502)
    response = JsonResponse({"catalog": catalog, **data, "errors": errors, "partial": bool(errors)})
    if errors:
        response["Cache-Control"] = "no-store"  # a partial page must not stick in a browser
    return response


async def dashboard_stream(request):
    response = StreamingHttpResponse(
        dashboard_events(shared_client()), content_type="text/event-stream"
    )
    response["Cache-Control"] = "no-cache"  # each client sees its own live progress
    return response
