"""Lesson 08's load table: async vs sync views under uvicorn, and a WSGI pool, over loopback."""

import asyncio


def run(notebooks):
    from tutorial_project import start

    start(quiet=True)
    from tutorial_project.instruments.loadtest.compare import LEVELS, WAIT_MS, compare

    rows = asyncio.run(compare())
    table = [(f"(each request waits {WAIT_MS} ms; concurrency {', '.join(map(str, LEVELS))})", "")]
    for row in rows:
        table.append((
            f"{row.setup}, c={row.concurrency}",
            f"{row.requests_per_second:6.0f} req/s  p50 {row.p50 * 1000:6.0f} ms  "
            f"p99 {row.p99 * 1000:6.0f} ms  threads {row.peak_threads:4d}  errors {row.errors}",
        ))
    return table
