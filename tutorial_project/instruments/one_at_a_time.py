"""Latency of one request at a time, measured from a light client in a process of its own.

    ms = await latency_ms({"uvicorn": url1, "waitress": url2})
    ms["uvicorn"], ms["client_cpu"]  # median ms per request; the client's CPU ms per request

A client in the notebook's own process (httpx on its event loop) spends about 1.7 ms of CPU
per request, as much as a server does, on the same cores: it measured itself (this one
spends about 0.2 ms). This
one is the standard library's ``http.client`` in a subprocess: one kept-alive connection per
server, the servers taking turns so that a busy moment of the machine hits all of them, and
the client's own CPU per request reported beside the figures.
"""

import asyncio
import http.client
import json
import statistics
import sys
import time
from urllib.parse import urlsplit


def _measure(urls, rounds, warmup):
    connections = {}
    for name, url in urls.items():
        parts = urlsplit(url)
        connections[name] = (http.client.HTTPConnection(parts.hostname, parts.port),
                             parts.path + ("?" + parts.query if parts.query else ""))
    took = {name: [] for name in urls}
    cpu = time.process_time()
    for round_ in range(warmup + rounds):
        for name, (connection, path) in connections.items():
            started = time.perf_counter()
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"{name}: HTTP {response.status}")
            if round_ >= warmup:
                took[name].append(1000 * (time.perf_counter() - started))
    requests = (warmup + rounds) * len(urls)
    result = {name: statistics.median(ms) for name, ms in took.items()}
    result["client_cpu"] = 1000 * (time.process_time() - cpu) / requests
    return result


async def latency_ms(urls, rounds=200, warmup=30):
    """Median wall ms per request to each of ``urls`` (name: url), one request in flight at
    a time, and under "client_cpu" the client process's CPU ms per request."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", __name__, json.dumps([urls, rounds, warmup]),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate()
    if process.returncode:
        raise RuntimeError(err.decode())
    return json.loads(out)


if __name__ == "__main__":
    print(json.dumps(_measure(*json.loads(sys.argv[1]))))
