"""Add ``Server-Timing: app;dur=<ms>`` to every response, in sync and async stacks alike."""

import time

from asgiref.sync import iscoroutinefunction, markcoroutinefunction


class ServerTimingMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        # Django hands us an async get_response when the chain below us is async.
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            # Tell Django that calling this instance returns a coroutine: then it wraps us
            # in its async exception handling, and outer middleware sees an async handler.
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.is_async:
            return self.__acall__(request)
        started = time.perf_counter()
        response = self.get_response(request)
        return self._stamp(response, started)

    async def __acall__(self, request):
        started = time.perf_counter()
        response = await self.get_response(request)
        return self._stamp(response, started)

    @staticmethod
    def _stamp(response, started):
        response["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
        return response
