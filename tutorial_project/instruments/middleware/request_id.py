"""Give each request an id, visible anywhere below the middleware through a ContextVar.

Logging, the ORM layer or a sync helper called through sync_to_async can read
``request_id.get()`` without the request being passed down: asgiref copies the context
into the thread that runs sync code.
"""

import contextvars
import re
import uuid

from asgiref.sync import iscoroutinefunction
from django.utils.decorators import sync_and_async_middleware

request_id = contextvars.ContextVar("request_id", default=None)


# An id a proxy may set: ASCII letters, digits and dashes (a UUID as Envoy or Heroku send it),
# 64 at most. str.isalnum() would refuse the dashes and accept any script's letters.
SANE_ID = re.compile(r"[A-Za-z0-9-]{1,64}")


def _incoming_or_new(request):
    # Keep an id set by a proxy in front of us, if it looks sane; otherwise make one.
    given = request.headers.get("X-Request-ID", "")
    return given if SANE_ID.fullmatch(given) else uuid.uuid4().hex


@sync_and_async_middleware
def request_id_middleware(get_response):
    if iscoroutinefunction(get_response):

        async def middleware(request):
            token = request_id.set(_incoming_or_new(request))
            try:
                response = await get_response(request)
                response["X-Request-ID"] = request_id.get()
                return response
            finally:
                request_id.reset(token)  # nothing leaks into the next request on this task

    else:

        def middleware(request):
            token = request_id.set(_incoming_or_new(request))
            try:
                response = get_response(request)
                response["X-Request-ID"] = request_id.get()
                return response
            finally:
                request_id.reset(token)

    return middleware
