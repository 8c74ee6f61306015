"""A middleware that works in both modes: it says which one served the request.

Decorated with ``sync_and_async_middleware``, Django hands it either a sync or an async
``get_response`` and never adapts it; the header ``X-Served-Mode`` reports which it got.
"""

from asgiref.sync import iscoroutinefunction
from django.utils.decorators import sync_and_async_middleware


@sync_and_async_middleware
def served_mode_middleware(get_response):
    if iscoroutinefunction(get_response):

        async def middleware(request):
            response = await get_response(request)
            response["X-Served-Mode"] = "async"
            return response

        return middleware

    def middleware(request):
        response = get_response(request)
        response["X-Served-Mode"] = "sync"
        return response

    return middleware
