"""Small async-aware middleware for lesson 05, one per module:

- ``timing.ServerTimingMiddleware``: a class that runs sync or async, adds ``Server-Timing``;
- ``request_id.request_id_middleware``: a function that runs sync or async and carries a
  request id in a ``contextvars`` variable;
- ``response_cache.async_response_cache``: async only; awaits the cache before the view, and
  stores only what may be shared (no ``Set-Cookie``, not ``private``, keyed on host and ``Vary``);
- ``passthrough``: do-nothing middleware used to measure what adapting a chain costs;
- ``overhead``: requests sent through ``ASGIHandler`` as a server sends them:
  ``thread_hops_per_request`` counts their thread crossings, ``microseconds_per_request``
  times them, to the response's last body message.
"""
