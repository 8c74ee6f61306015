"""Lesson 08's comparison: the same view, served by uvicorn, daphne and waitress, under locust.

``rows = await compare()`` starts each setup's server in turn (a subprocess, ``servers.serve``),
loads it with a load tool in a process of its own (``tools.run_locust`` by default) at each of
the setup's client counts, reads the server's CPU, threads, memory and database connections
over each measured window (``watch.ServerWatch``), stops it, and returns one ``Row`` per
(setup, clients, repeat). ``summarize(rows)`` takes the median of the repeats, with their
spread; ``table(rows)`` prints the summaries; ``plot(rows)`` draws them.
"""

import os
import statistics
from dataclasses import dataclass, field, replace

from tutorial_project.instruments.loadtest.tools import run_locust
from tutorial_project.instruments.loadtest.watch import ServerWatch
from tutorial_project.instruments.servers import serve

WAIT_MS = 100  # what each request waits for, after its database read
ASYNC_VIEW, SYNC_VIEW = "/serving/wait-async/", "/serving/wait-sync/"
WARMUP, DURATION = 2.0, 2.0  # seconds: one warm-up per client count, then each window
# A warm-up must outlast twice the latency that follows it: the queue fills in about one
# latency, and a request answered in the window must have started after that. A window
# may then be shorter than the latency: every request answered in it waited in the same
# full queue. At 100 clients latencies reach about 1 s (3 s of warm-up), and 2.5 s for
# waitress with 4 threads: 100 / (4 / 0.1 s) (7 s). The locustfile warms up longer when
# the latency it sees asks for it (a busy machine stretches every latency).
AT_100, QUEUE_AT_100 = {100: 3.0}, {100: 7.0}
REPEATS = 3  # windows per client count, one after another on the same server: the median
# and the spread say how much a number moves on a machine shared with other programs


@dataclass
class Setup:
    label: str
    server: str  # a kind that servers.serve knows
    view: str
    levels: tuple  # numbers of concurrent clients, ascending
    threads: int = 4  # for the WSGI servers
    workers: int = 1
    loop: str = "asyncio"  # uvicorn's event loop
    warmups: dict = field(default_factory=dict)  # {clients: seconds} where WARMUP is short


# The lesson's run: tools that run on every OS, one server process each, about 100 s in all.
SETUPS = [
    Setup("uvicorn, async view", "uvicorn", ASYNC_VIEW, (10, 100), warmups=AT_100),
    Setup("uvicorn, sync view", "uvicorn", SYNC_VIEW, (100,), warmups=AT_100),
    Setup("daphne, async view", "daphne", ASYNC_VIEW, (100,), warmups=AT_100),
    Setup("waitress 4 threads, sync view", "waitress", SYNC_VIEW, (10, 100), threads=4,
          warmups=QUEUE_AT_100),
    Setup("waitress 200 threads, sync view", "waitress", SYNC_VIEW, (10, 100), threads=200,
          warmups=AT_100),
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
    machine_busy: float = 0.0  # cores the whole machine kept busy (every process), in cores
    load_average: float | None = None  # 1-minute load average at the window's end
    warmup: float | None = None  # seconds of warm-up before this client count's windows
    rps_low: float | None = None  # summaries only: the slowest and fastest of the repeats
    rps_high: float | None = None
    repeats: int = 1

    @property
    def requests_per_cpu_second(self):
        """Requests answered per second of the server's CPU: its cost, whatever the load."""
        return self.requests_per_second / self.server_cpu if self.server_cpu else 0.0


async def measure(setup, *, tool=run_locust, wait_ms=WAIT_MS, warmup=WARMUP, duration=DURATION,
                  clients=None, repeats=1):
    """One setup: start its server, load it at each of its client counts (``repeats``
    windows each, one after another), stop it. One ``Row`` per window."""
    from django.conf import settings

    database = settings.DATABASES["default"]["NAME"]
    async with serve(setup.server, threads=setup.threads, workers=setup.workers,
                     loop=setup.loop) as server:
        levels = [level for level in clients or setup.levels for _ in range(repeats)]
        warmups = [setup.warmups.get(level, warmup) for level in levels]
        runs = await tool(
            server.url, f"{setup.view}?ms={wait_ms}", clients=levels,
            warmup=warmups, duration=duration,
            watch=lambda: ServerWatch(server.pid, database=database),
        )
    return [
        Row(setup.label, run.clients, run.requests_per_second, run.p50, run.p99, run.mean,
            run.errors, run.cpu_share, run.server.cpu_share, run.server.peak_threads,
            run.server.peak_rss / 2**20, run.server.peak_db_connections, run.tool,
            run.server.machine_busy, run.server.load_average,
            warmup=seconds if run.warmup is None else run.warmup)
        for run, seconds in zip(runs, warmups, strict=True)
    ]


async def compare(setups=SETUPS, repeats=REPEATS, **options):
    rows = []
    for setup in setups:
        rows += await measure(setup, repeats=repeats, **options)
    return rows


def summarize(rows):
    """One ``Row`` per (setup, clients): the median of its repeats, field by field, with the
    lowest and highest throughput in ``rps_low`` / ``rps_high``."""
    groups = {}
    for row in rows:
        groups.setdefault((row.setup, row.clients), []).append(row)

    def median(values):
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else None

    summaries = []
    for same in groups.values():
        rps = [r.requests_per_second for r in same]
        numbers = {name: median([getattr(r, name) for r in same]) for name in (
            "requests_per_second", "p50", "p99", "mean", "tool_cpu", "server_cpu", "rss_mb",
            "machine_busy", "load_average")}
        summaries.append(replace(
            same[0], **numbers, errors=sum(r.errors for r in same),
            threads=max(r.threads for r in same),
            db_connections=max(r.db_connections for r in same),
            rps_low=min(rps), rps_high=max(rps), repeats=len(same)))
    return summaries


def by_setup(rows):
    """``{setup label: {clients: Row}}``, the median of the repeats (``summarize``)."""
    found = {}
    for row in summarize(rows):
        found.setdefault(row.setup, {})[row.clients] = row
    return found


def _ms(seconds):
    return "-" if seconds is None else f"{seconds * 1000:.0f}"


def table(rows, prefix=""):
    """The medians of the repeats as text, one line per (setup, clients); ``prefix`` starts
    every line. CPU columns are shares of one core; "machine" is what every process on the
    machine used, in cores, against the cores there are."""
    rows = summarize(rows)
    width = max(len(row.setup) for row in rows)
    cores = os.cpu_count() or 1
    lines = [f"{prefix}{'setup':<{width}} clients  req/s (spread)  p50 ms  errors  "
             f"server CPU  locust CPU  machine  threads  RSS MB  DB conns"]
    for r in rows:
        spread = f"({r.rps_low:.0f}-{r.rps_high:.0f})"
        lines.append(
            f"{prefix}{r.setup:<{width}} {r.clients:7d} {r.requests_per_second:6.0f} "
            f"{spread:>9} {_ms(r.p50):>7} {r.errors:7d} {r.server_cpu:10.0%} "
            f"{r.tool_cpu:11.0%} {r.machine_busy:4.1f} of {cores:<2d}"
            f"{r.threads:7d} {r.rss_mb:7.0f} {r.db_connections:9d}"
        )
    return "\n".join(lines)


def plot(rows, title="The same view (a query, then a 100 ms wait), served five ways"):
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for label, levels in by_setup(rows).items():
        xs = sorted(levels)
        style = {"marker": "o", "label": label}
        rps = [levels[x].requests_per_second for x in xs]
        spread = [[r - levels[x].rps_low for r, x in zip(rps, xs, strict=True)],
                  [levels[x].rps_high - r for r, x in zip(rps, xs, strict=True)]]
        axes[0].errorbar(xs, rps, yerr=spread, capsize=3, **style)  # the repeats' spread
        axes[1].plot(xs, [(levels[x].p50 or float("nan")) * 1000 for x in xs], **style)
        axes[2].plot(xs, [levels[x].threads for x in xs], **style)
    ylabels = ["requests / second (median, spread)", "median latency, ms",
               "threads in the server (peak)"]
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
