"""A fake upstream service (a tiny ASGI app) that lessons call instead of the internet.

Each endpoint answers JSON after its own latency. Query parameters set the behaviour of
one request, so every lesson run sees exactly the same thing:

- ``?delay=0.25``        answer after 0.25 s instead of the endpoint's usual latency;
- ``?mode=slow``         ten times the usual latency;
- ``?mode=hang``         never answer (until the caller gives up and disconnects);
- ``?mode=fail``         answer 500 with a JSON error;
- ``?mode=malformed``    answer 200 with a body that is not JSON;
- ``?fail_every=3``      fail calls 3, 6, 9... to this endpoint: a deterministic error rate.

    upstream = FakeUpstream()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=upstream), base_url="http://upstream")
"""

from tutorial_project.instruments.upstream.app import ENDPOINTS, FakeUpstream

__all__ = ["ENDPOINTS", "FakeUpstream"]
