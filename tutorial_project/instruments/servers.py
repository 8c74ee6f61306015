"""Serve the project for real, on 127.0.0.1 and a free port, from a notebook or a test.

Two ways, both context managers that always stop what they started:

- ``async with serve_in_process(app) as url:`` runs uvicorn as a task on the running event
  loop (the notebook's). It serves exactly this process's project, views mounted from cells
  included. Lesson 07 uses it for streaming over a real socket.
- ``with serve_wsgi_in_thread() as url:`` serves this process's project over WSGI with the
  server class of Django's ``runserver``, in a thread. Lesson 07 uses it to show that a WSGI
  server (so plain ``runserver``) cannot stream an async iterator.
- ``async with serve("uvicorn") as server:`` starts a server in a subprocess: ``"uvicorn"``,
  ``"daphne"`` (ASGI) or ``"waitress"`` (WSGI, a fixed pool of ``threads``), which run on
  every OS; on Unix also ``"gunicorn-uvicorn"`` (gunicorn with uvicorn workers) and
  ``"gunicorn-threads"`` (gunicorn's threaded WSGI worker). It has its own interpreter, so a
  load test measures the server, not the notebook. It uses this kernel's database: ``start()``
  put its path in ``TUTORIAL_DATABASE``, which the subprocess inherits. Lesson 08 uses it.

``leftovers()`` says what is still running; after a lesson it must say nothing.
"""

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

import httpx
import psutil
import uvicorn

HOST = "127.0.0.1"  # loopback only: nothing here is reachable from another machine
READY_TIMEOUT = 120.0  # a busy machine may take a minute to import Django in two workers
STOP_TIMEOUT = 10.0

_started = []  # (psutil.Process or None, port) of every server started in this process
_children = []  # the worker processes those servers had when they were stopped
CONNECTION_LIMIT = 1000  # waitress accepts 100 connections by default; clients beyond wait


def free_port():
    """A TCP port that nothing listens on right now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


class _QuietServer(uvicorn.Server):
    """uvicorn without its signal handlers: Ctrl-C / "interrupt kernel" stays the kernel's."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


@contextlib.asynccontextmanager
async def serve_in_process(app=None):
    """Serve ``app`` (default: the project's ASGIHandler) with uvicorn on this event loop."""
    if app is None:
        from django.core.handlers.asgi import ASGIHandler

        app = ASGIHandler()
    listener = socket.socket()
    listener.bind((HOST, 0))  # we bind, so the address is 127.0.0.1 whatever the config says
    port = listener.getsockname()[1]
    config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False)
    server = _QuietServer(config)
    task = asyncio.create_task(server.serve(sockets=[listener]), name=f"uvicorn-{port}")
    _started.append((None, port))
    try:
        while not server.started:
            if task.done():
                task.result()  # raises what stopped it
            await asyncio.sleep(0.01)
        yield f"http://{HOST}:{port}"
    finally:
        server.should_exit = True
        try:
            await asyncio.wait_for(task, STOP_TIMEOUT)
        finally:
            listener.close()


class _QuietRequestHandler:
    """Made on first use: Django's runserver request handler, without its request log."""

    cls = None

    @classmethod
    def get(cls):
        if cls.cls is None:
            from django.core.servers.basehttp import WSGIRequestHandler

            class Quiet(WSGIRequestHandler):
                def log_message(self, format, *args):
                    pass

            cls.cls = Quiet
        return cls.cls


@contextlib.contextmanager
def serve_wsgi_in_thread(app=None):
    """Serve ``app`` (default: the project's WSGIHandler) over WSGI with ``ThreadedWSGIServer``
    (Django's WSGIServer with ThreadingMixIn, the combination ``runserver`` builds), in a
    thread of this process.

    Like ``serve_in_process`` it serves this kernel's project, views mounted from cells
    included; it shows what ``manage.py runserver`` (a WSGI server) does with a response.
    """
    from django.core.servers.basehttp import ThreadedWSGIServer

    if app is None:
        from django.core.handlers.wsgi import WSGIHandler

        app = WSGIHandler()
    server = ThreadedWSGIServer((HOST, 0), _QuietRequestHandler.get())
    server.set_app(app)
    port = server.server_address[1]
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"wsgi-{port}"
    )
    thread.start()
    _started.append((None, port))
    try:
        yield f"http://{HOST}:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(STOP_TIMEOUT)


class RunningServer:
    """A server subprocess: its ``url``, ``pid`` and what it is (``kind``)."""

    def __init__(self, kind, process, port, log):
        self.kind, self.process, self.port, self.log = kind, process, port, log
        self.url = f"http://{HOST}:{port}"
        self.pid = process.pid

    def output(self):
        """What the server printed (stdout and stderr)."""
        self.log.seek(0)
        return self.log.read().decode(errors="replace")


KINDS = ("uvicorn", "daphne", "waitress", "gunicorn-uvicorn", "gunicorn-threads")


def server_command(kind, port, *, workers=1, threads=4, loop="asyncio"):
    """The command that serves the project, as a list (printable with ``shlex.join``).

    ``workers`` is for uvicorn and gunicorn, ``threads`` for the WSGI servers; ``loop`` is
    uvicorn's event loop: ``"asyncio"`` on every OS, ``"uvloop"`` on Unix.
    """
    python = [sys.executable, "-m"]
    address = ["--host", HOST, "--port", str(port)]
    if kind == "uvicorn":
        return [*python, "uvicorn", "tutorial_project.asgi:application", *address,
                "--workers", str(workers), "--loop", loop, "--no-access-log",
                "--log-level", "warning", "--lifespan", "off"]
    if kind == "daphne":
        return [*python, "daphne", "--bind", HOST, "--port", str(port), "--verbosity", "0",
                "tutorial_project.asgi:application"]
    if kind == "waitress":
        return [*python, "waitress", *address, "--threads", str(threads),
                f"--connection-limit={CONNECTION_LIMIT}", "--asyncore-use-poll",
                "tutorial_project.wsgi:application"]
    bind = ["--bind", f"{HOST}:{port}", "--workers", str(workers), "--log-level", "warning"]
    if kind == "gunicorn-uvicorn":
        return [*python, "gunicorn", *bind, "--worker-class", "uvicorn_worker.UvicornWorker",
                "tutorial_project.asgi:application"]
    if kind == "gunicorn-threads":
        return [*python, "gunicorn", *bind, "--worker-class", "gthread", "--threads",
                str(threads), f"--worker-connections={CONNECTION_LIMIT}",
                "tutorial_project.wsgi:application"]
    raise ValueError(f"unknown server {kind!r}: use one of {', '.join(KINDS)}")


@contextlib.asynccontextmanager
async def serve(kind="uvicorn", *, workers=1, threads=4, loop="asyncio", env=None):
    """Start a server subprocess, wait until it answers, yield it, then stop it for sure."""
    port = free_port()
    log = tempfile.TemporaryFile()
    # Ctrl-C in the notebook must not reach the server: stop() ends it.
    detached = ({"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP} if os.name == "nt"
                else {"start_new_session": True})
    process = subprocess.Popen(
        server_command(kind, port, workers=workers, threads=threads, loop=loop),
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},  # TUTORIAL_DATABASE: this kernel's database
        **detached,
    )
    _started.append((psutil.Process(process.pid), port))
    server = RunningServer(kind, process, port, log)
    try:
        await _wait_until_ready(server)
        yield server
    finally:
        _stop(process)
        log.close()


async def _wait_until_ready(server):
    deadline = time.monotonic() + READY_TIMEOUT
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            if server.process.poll() is not None:
                raise RuntimeError(f"{server.kind} exited at start:\n{server.output()}")
            try:
                await client.get(f"{server.url}/serving/threads/")
                return
            except httpx.TransportError as error:
                if time.monotonic() > deadline:
                    message = f"{server.kind} did not answer within {READY_TIMEOUT} s"
                    raise TimeoutError(message) from error
                await asyncio.sleep(0.05)


def _stop(process):
    """A graceful stop (SIGTERM; uvicorn and gunicorn stop their workers), then kill what is left.

    The workers are listed first, so that one which outlives its supervisor is found and
    ended too. psutil does this the same way on every OS.
    """
    try:
        workers = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        workers = []
    _children.extend(workers)
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    _, alive = psutil.wait_procs(workers, timeout=STOP_TIMEOUT)
    for worker in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            worker.kill()
    psutil.wait_procs(alive, timeout=STOP_TIMEOUT)


def _alive(process):
    """Is it still running? A zombie (ended, not yet reaped by its parent) runs nothing."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _ours(port, processes):
    """Is ``port`` still listening in this process or in a server process we started? A port
    number a stopped server gave back may be taken by another program (a Jupyter kernel,
    another test's server): that one is not our leftover."""
    for process in [psutil.Process(), *processes]:
        try:
            connections = process.net_connections(kind="tcp")
        except psutil.NoSuchProcess:
            continue
        except psutil.AccessDenied:  # some systems hide other processes' sockets: probe it
            return _listening(port)
        if any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in connections):
            return True
    return False


def _listening(port):
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((HOST, port)) == 0


def leftovers():
    """What the servers started from this process left behind: an empty dict means nothing.

    Keys: ``processes`` (pids still alive), ``ports`` (still accepting connections),
    ``tasks`` (uvicorn tasks still on this event loop), ``threads`` (WSGI server threads).
    """
    started = [process for process, _ in _started if process is not None]
    alive = [p for p in [*started, *_children] if _alive(p)]
    processes = [p.pid for p in alive]
    ports = [port for _, port in _started if _ours(port, alive)]
    try:
        tasks = [t for t in asyncio.all_tasks() if t.get_name().startswith("uvicorn-")]
    except RuntimeError:  # no running loop
        tasks = []
    threads = [t.name for t in threading.enumerate() if t.name.startswith("wsgi-")]
    found = {"processes": processes, "ports": ports, "tasks": tasks, "threads": threads}
    return {what: items for what, items in found.items() if items}
