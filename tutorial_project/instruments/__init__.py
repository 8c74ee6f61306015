"""The lessons' instruments: what a notebook uses to make async behaviour visible and measurable.

None of this is part of the Django project a learner would ship; the lessons drive it to show
what the project does. By lesson:

- 01, 03, 06  ``timeline`` (bars per task), ``heartbeat`` (how late the event loop wakes up)
- 02          ``fake_upstream`` (a slow price call), ``request_burst`` (N requests at once),
              ``server_cpu`` (a minimal request's server CPU behind uvicorn)
- 03          ``slowlib`` (a blocking third-party client)
- 04          ``slow_sql`` (queries of known length), ``orm_streaming`` (memory of a loop),
              ``atomic_requests`` (ATOMIC_REQUESTS for a block)
- 05, 12      ``middleware/`` (the lesson's example middleware and the cost measurement)
- 06, 12      ``upstream/`` (a fake upstream ASGI service with latency and failure modes)
- 07, 12      ``streaming`` (a slow job, Server-Sent Events), ``servers`` (real servers on loopback)
- 08          ``loadtest/`` (load generation and the server comparison), ``servers``,
              ``one_at_a_time`` (latency from a light client in its own process)
- 10          ``ticker`` (a stream that notices disconnects), ``served_by`` (which mode served),
              ``testing_targets`` (what lesson_tests/ tests), ``run_tests`` (pytest in a subprocess)
- 09          ``cache_hops`` (the thread hops behind the async cache API)
- 11          ``paging`` (one catalog page, 5.2 and 6.x), ``stock_report`` (the lesson's tasks),
              ``tasks_api`` (the Tasks API from ``django.tasks`` or the 5.2 backport)
"""
