"""An async-only middleware: a 200 answer may be kept by browsers for a while, errors not.

A view that knows better (a partial answer, a live stream) sets ``Cache-Control`` itself,
and the middleware leaves it alone.
"""

from django.utils.decorators import async_only_middleware


@async_only_middleware  # Django never adapts it: the whole chain stays on the event loop
def cache_control_middleware(get_response):
    async def middleware(request):
        response = await get_response(request)
        if not response.has_header("Cache-Control"):
            response["Cache-Control"] = "max-age=30" if response.status_code == 200 else "no-store"
        return response

    return middleware
