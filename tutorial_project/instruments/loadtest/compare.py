"""Lesson 08's load comparison: the same I/O-bound view, async and sync, under uvicorn and WSGI.

``rows = await compare()`` starts each server in turn (a subprocess, see ``servers.serve``),
loads it at each concurrency level with ``loadgen.measure``, stops it, and returns one
``Row`` per (setup, concurrency). ``plot(rows)`` draws requests/s, latency and threads.
"""

from dataclasses import dataclass

from tutorial_project.instruments.loadtest.loadgen import measure
from tutorial_project.instruments.servers import serve

LEVELS = (10, 100, 500)
WAIT_MS = 100  # what each request waits for, standing for an upstream API or a slow query
WSGI_THREADS = 4


@dataclass
class Setup:
    label: str
    server: str  # "uvicorn" or "wsgi"
    path: str


SETUPS = [
    Setup("async view, uvicorn", "uvicorn", "/serving/wait-async/"),
    Setup("sync view, uvicorn", "uvicorn", "/serving/wait-sync/"),
    Setup(f"sync view, WSGI ({WSGI_THREADS} threads)", "wsgi", "/serving/wait-sync/"),
]


@dataclass
class Row:
    setup: str
    concurrency: int
    requests_per_second: float
    p50: float  # seconds
    p99: float
    peak_threads: int
    errors: int


def requests_per_client(concurrency):
    """About 50 requests per measurement, and at least one per client."""
    return max(1, 50 // concurrency)


async def compare(levels=LEVELS, *, wait_ms=WAIT_MS, setups=SETUPS):
    rows = []
    for setup in setups:
        async with serve(setup.server, threads=WSGI_THREADS) as server:
            for concurrency in levels:
                result = await measure(
                    server.url,
                    f"{setup.path}?ms={wait_ms}",
                    concurrency=concurrency,
                    requests_per_client=requests_per_client(concurrency),
                )
                rows.append(
                    Row(setup.label, concurrency, result.requests_per_second,
                        result.percentile(50), result.percentile(99), result.peak_threads,
                        result.errors)
                )
    return rows


def by_setup(rows):
    """``{setup label: {concurrency: Row}}``."""
    table = {}
    for row in rows:
        table.setdefault(row.setup, {})[row.concurrency] = row
    return table


def plot(rows, title="The same 100 ms wait, served three ways"):
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for label, levels in by_setup(rows).items():
        xs = sorted(levels)
        axes[0].plot(xs, [levels[x].requests_per_second for x in xs], marker="o", label=label)
        (line,) = axes[1].plot(xs, [levels[x].p50 * 1000 for x in xs], marker="o")
        p99 = [levels[x].p99 * 1000 for x in xs]
        axes[1].plot(xs, p99, marker="x", linestyle="--", color=line.get_color())
        axes[2].plot(xs, [levels[x].peak_threads for x in xs], marker="o", label=label)
    ylabels = ["requests / second", "latency, ms (o p50, x p99)", "threads in the server (peak)"]
    for ax, ylabel in zip(axes, ylabels, strict=True):
        ax.set_xscale("log")
        ax.set_xlabel("concurrent clients")
        ax.set_ylabel(ylabel)
    axes[1].set_yscale("log")
    axes[2].set_yscale("log")
    axes[0].legend(fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    return figure
