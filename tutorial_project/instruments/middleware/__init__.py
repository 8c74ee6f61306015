"""Small async-aware middleware for lesson 05, one per module:

- ``timing.ServerTimingMiddleware``: a class that runs sync or async, adds ``Server-Timing``;
- ``request_id.request_id_middleware``: a function that runs sync or async and carries a
  request id in a ``contextvars`` variable;
- ``response_cache.AsyncResponseCacheMiddleware``: async only; awaits the cache before the view;
- ``passthrough``: do-nothing middleware used to measure what adapting a chain costs;
- ``overhead.microseconds_per_request``: that measurement, per request, per chain.
"""
