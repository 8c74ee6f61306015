"""Serve an ASGI app with uvicorn on 127.0.0.1, on a free port, in a background thread.

with serve_in_thread(FakeUpstream()) as base_url:   # "http://127.0.0.1:<port>"
    ...                                              # real sockets: requests works too
# here the server has stopped, its port is closed and its thread has ended
"""

import threading
import time
from contextlib import contextmanager

import uvicorn


@contextmanager
def serve_in_thread(app, *, startup_timeout=10.0):
    config = uvicorn.Config(
        app,
        host="127.0.0.1",  # loopback only: nothing outside this machine can reach it
        port=0,  # the OS picks a free port
        lifespan="off",
        log_level="error",
        log_config=None,  # leave the notebook's logging configuration alone
        access_log=False,
        timeout_graceful_shutdown=2,  # then cancel requests still running
    )
    server = uvicorn.Server(config)
    # server.run() makes its own event loop, so the thread does not touch the notebook's.
    thread = threading.Thread(target=server.run, name="upstream-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            thread.join(startup_timeout)
            raise RuntimeError("the upstream server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(startup_timeout)
        if thread.is_alive():
            raise RuntimeError("the upstream server did not stop")
