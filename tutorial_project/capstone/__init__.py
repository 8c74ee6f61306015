"""Lesson 12's capstone: an async dashboard that combines the course, one module per job.

- ``service``: the pieces (catalog summary, upstream fan-out, cache, SSE events);
- ``views``: the JSON view and the SSE view built from them;
- ``middleware``: an async-only middleware that sets ``Cache-Control``.

It reuses lesson 06's ``dashboard.sources`` (fetch with a budget, classify failures) and
``dashboard.clients`` (the injectable shared client), and lesson 07's ``streaming.sse_event``.
"""
