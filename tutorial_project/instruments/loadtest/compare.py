"""Lesson 08's comparison: the same view, served by uvicorn, daphne and waitress, under locust.

``rows = await compare()`` starts each setup's server in turn (a subprocess, ``servers.serve``),
loads it with a load tool in a process of its own (``tools.run_locust`` by default) at each of
the setup's client counts, reads the server's CPU, threads, memory and database connections
over each measured window (``watch.ServerWatch``), stops it, and returns one ``Row`` per
(setup, clients). ``table(rows)`` prints them; ``plot(rows)`` draws them.
"""

from dataclasses import dataclass

from tutorial_project.instruments.loadtest.tools import run_locust
from tutorial_project.instruments.loadtest.watch import ServerWatch
from tutorial_project.instruments.servers import serve

WAIT_MS = 100  # what each request waits for, after its database read
ASYNC_VIEW, SYNC_VIEW = "/serving/wait-async/", "/serving/wait-sync/"
WARMUP, DURATION = 2.0, 4.0  # seconds, per client count: the lesson's run stays near 90 s


@dataclass
class Setup:
    label: str
    server: str  # a kind that servers.serve knows
    view: str
    levels: tuple  # numbers of concurrent clients, ascending
    threads: int = 4  # for the WSGI servers
    workers: int = 1
    loop: str = "asyncio"  # uvicorn's event loop


# The lesson's run: tools that run on every OS, one server process each, about 90 s in all.
SETUPS = [
    Setup("uvicorn, async view", "uvicorn", ASYNC_VIEW, (10, 100)),
    Setup("uvicorn, sync view", "uvicorn", SYNC_VIEW, (100,)),
    Setup("daphne, async view", "daphne", ASYNC_VIEW, (100,)),
    Setup("waitress 4 threads, sync view", "waitress", SYNC_VIEW, (10, 100), threads=4),
    Setup("waitress 200 threads, sync view", "waitress", SYNC_VIEW, (10, 100), threads=200),
]


@dataclass
class Row:
    setup: str
    clients: int
    requests_per_second: float
    p50: float | None  # seconds
    p99: float | None
    mean: float | None
    errors: int
    tool_cpu: float  # the load generator's CPU, as a fraction of one core
    server_cpu: float  # the server's CPU (all its processes), as a fraction of one core
    threads: int  # peak, all the server's processes
    rss_mb: float  # peak, all the server's processes
    db_connections: int  # peak SQLite connections the server held open
    tool: str = "locust"

    @property
    def requests_per_cpu_second(self):
        """Requests answered per second of the server's CPU: its cost, whatever the load."""
        return self.requests_per_second / self.server_cpu if self.server_cpu else 0.0


async def measure(setup, *, tool=run_locust, wait_ms=WAIT_MS, warmup=WARMUP, duration=DURATION,
                  clients=None):
    """One setup: start its server, load it at each of its client counts, stop it."""
    from django.conf import settings

    database = settings.DATABASES["default"]["NAME"]
    async with serve(setup.server, threads=setup.threads, workers=setup.workers,
                     loop=setup.loop) as server:
        runs = await tool(
            server.url, f"{setup.view}?ms={wait_ms}", clients=clients or setup.levels,
            warmup=warmup, duration=duration,
            watch=lambda: ServerWatch(server.pid, database=database),
        )
    return [
        Row(setup.label, run.clients, run.requests_per_second, run.p50, run.p99, run.mean,
            run.errors, run.cpu_share, run.server.cpu_share, run.server.peak_threads,
            run.server.peak_rss / 2**20, run.server.peak_db_connections, run.tool)
        for run in runs
    ]


async def compare(setups=SETUPS, **options):
    rows = []
    for setup in setups:
        rows += await measure(setup, **options)
    return rows


def by_setup(rows):
    """``{setup label: {clients: Row}}``."""
    found = {}
    for row in rows:
        found.setdefault(row.setup, {})[row.clients] = row
    return found


def _ms(seconds):
    return "-" if seconds is None else f"{seconds * 1000:.0f}"


def table(rows, prefix=""):
    """The rows as text, one line each; ``prefix`` starts every line."""
    width = max(len(row.setup) for row in rows)
    lines = [f"{prefix}{'setup':<{width}} clients  req/s  p50 ms  p99 ms  errors  "
             f"server CPU  threads  RSS MB  DB conns  locust CPU"]
    for r in rows:
        lines.append(
            f"{prefix}{r.setup:<{width}} {r.clients:7d} {r.requests_per_second:6.0f} "
            f"{_ms(r.p50):>7} {_ms(r.p99):>7} {r.errors:7d} {r.server_cpu:10.0%} "
            f"{r.threads:8d} {r.rss_mb:7.0f} {r.db_connections:9d} {r.tool_cpu:11.0%}"
        )
    return "\n".join(lines)


def plot(rows, title="The same view (a query, then a 100 ms wait), served five ways"):
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for label, levels in by_setup(rows).items():
        xs = sorted(levels)
        style = {"marker": "o", "label": label}
        axes[0].plot(xs, [levels[x].requests_per_second for x in xs], **style)
        axes[1].plot(xs, [(levels[x].p50 or float("nan")) * 1000 for x in xs], **style)
        axes[2].plot(xs, [levels[x].threads for x in xs], **style)
    ylabels = ["requests / second", "median latency, ms", "threads in the server (peak)"]
    for ax, ylabel in zip(axes, ylabels, strict=True):
        ax.set_xscale("log")
        ax.set_xlabel("concurrent clients (closed loop)")
        ax.set_ylabel(ylabel)
    axes[1].set_yscale("log")
    axes[2].set_yscale("log")
    axes[0].legend(fontsize=7)
    figure.suptitle(title)
    figure.tight_layout()
    return figure
