"""Middleware that does nothing, to measure what the chain itself costs."""

from django.utils.decorators import async_only_middleware, sync_only_middleware


@async_only_middleware
def async_passthrough(get_response):
    async def middleware(request):
        return await get_response(request)

    return middleware


@sync_only_middleware
def sync_passthrough(get_response):
    def middleware(request):
        return get_response(request)

    return middleware
