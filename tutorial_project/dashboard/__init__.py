"""A dashboard view that gathers three upstream sources (weather, stocks, news) with httpx.

- ``sources``: fetch one source within a time budget, classify what went wrong, retry
  idempotent GETs with backoff; fetch them all sequentially or concurrently;
- ``clients``: the shared ``httpx.AsyncClient`` (one per event loop), injectable;
- ``views``: the JSON view at ``/api/dashboard/``.
"""
