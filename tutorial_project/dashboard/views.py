"""``GET /api/dashboard/``: weather, stocks and news in one JSON answer.

Query parameters: ``strategy`` (concurrent or sequential) and, per source, a mode for the
fake upstream (``?news=hang``), so a lesson or a test can make any source misbehave.

Answers, documented:
- 200 with every source, ``"errors": {}``;
- 200 with ``"partial": true``: the sources that failed are null, and ``errors`` says why
  (a dashboard shows the widgets it has rather than nothing);
- 504 when every source timed out, 502 when every source failed otherwise;
- 400 for a bad parameter. Never an unhandled 500 because of the upstream: every httpx
  error becomes a per-source error (``sources.get_json``).
"""

from django.http import JsonResponse

from tutorial_project.dashboard.clients import client_for
from tutorial_project.dashboard.sources import SOURCES, SourceError, fetch_all
from tutorial_project.instruments.upstream.app import MODES

STRATEGIES = ("concurrent", "sequential")


async def dashboard(request):
    strategy = request.GET.get("strategy", "concurrent")
    if strategy not in STRATEGIES:
        return JsonResponse({"error": f"strategy must be one of {list(STRATEGIES)}"}, status=400)
    modes = {name: request.GET.get(name, "ok") for name in SOURCES}
    bad = {name: mode for name, mode in modes.items() if mode not in MODES}
    if bad:
        return JsonResponse({"error": f"unknown mode(s) {bad}", "modes": sorted(MODES)}, status=400)

    async with client_for(request) as client:  # shared under ASGI; per request under WSGI
        results = await fetch_all(client, modes, strategy=strategy)
    errors = {name: r.as_json() for name, r in results.items() if isinstance(r, SourceError)}
    if len(errors) == len(results):
        timed_out = all(e["error"] == "timeout" for e in errors.values())
        return JsonResponse(
            {"error": "every upstream source failed", "errors": errors},
            status=504 if timed_out else 502,
        )
    body = {name: None if name in errors else r for name, r in results.items()}
    body.update(errors=errors, partial=bool(errors))
    return JsonResponse(body)
