"""An async-only middleware: a 200 answer may be kept by browsers for a while, errors not.

A view that knows better (a partial answer, a live stream) sets ``Cache-Control`` itself,
and the middleware leaves it alone.

Async-only adds no thread of its own under ASGI; the chain stays on the event loop only if
every middleware in it is async-capable. With the project's full ``MIDDLEWARE``,
``CsrfViewMiddleware.process_view`` runs in a thread on every request, and under WSGI this
middleware is itself adapted with ``async_to_sync``. ``max-age=30`` on every 200 suits a
service without sessions or logins; a per-user page needs ``private`` and ``Vary: Cookie``.
"""

from django.utils.decorators import async_only_middleware


@async_only_middleware  # under ASGI, Django does not adapt it (see above for the rest)
def cache_control_middleware(get_response):
    async def middleware(request):
        response = await get_response(request)
        if not response.has_header("Cache-Control"):
            response["Cache-Control"] = "max-age=30" if response.status_code == 200 else "no-store"
        return response

    return middleware
