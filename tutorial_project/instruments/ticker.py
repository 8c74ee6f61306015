"""A streaming view that notices when the client goes away.

``GET <route>?count=5`` streams ``tick 1`` ... ``tick 5``, one line every ``INTERVAL``
seconds. Under ASGI, when the client disconnects Django cancels the response (tested on 5.2
and 6.1), so the generator gets ``asyncio.CancelledError``: it records that and stops.
"""

import asyncio

from django.http import JsonResponse, StreamingHttpResponse

INTERVAL = 0.05
MAX_COUNT = 100
events = []  # what the generators did, for tests and lessons to read


async def ticks(count):
    try:
        for number in range(1, count + 1):
            yield f"tick {number}\n"
            await asyncio.sleep(INTERVAL)
        events.append("finished")
    except asyncio.CancelledError:
        events.append("cancelled")
        raise


async def ticker(request):
    try:
        count = int(request.GET.get("count", "5"))
    except ValueError:
        return JsonResponse({"error": "count must be a whole number"}, status=400)
    if not 1 <= count <= MAX_COUNT:
        return JsonResponse({"error": f"count must be between 1 and {MAX_COUNT}"}, status=400)
    return StreamingHttpResponse(ticks(count), content_type="text/plain")
