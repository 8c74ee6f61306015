"""Measure how a loop over query results uses memory and time: ``async for`` vs ``aiterator()``.

``await measure(lambda: queryset.aiterator(chunk_size=100))`` consumes the rows one by one,
keeping none of them, and reports the peak memory allocated meanwhile (tracemalloc follows
every thread, so it sees the worker thread that builds the model instances) and how long
the first row took to arrive. ``await measure(..., memory=False)`` leaves tracemalloc off:
tracing every allocation slows the loops several times over, so time them in a run of their
own.
"""

import time
import tracemalloc
from dataclasses import dataclass


@dataclass
class Measurement:
    rows: int
    peak_bytes: int
    first_row_seconds: float
    total_seconds: float


async def measure(make_rows, *, memory=True):
    """Iterate ``make_rows()`` (an async iterable) to the end; see the module docstring."""
    start_tracing = memory and not tracemalloc.is_tracing()
    if start_tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    baseline, _ = tracemalloc.get_traced_memory()
    rows, first_row = 0, None
    started = time.perf_counter()
    try:
        async for _row in make_rows():
            if first_row is None:
                first_row = time.perf_counter() - started
            rows += 1
        total = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        if start_tracing:
            tracemalloc.stop()
    return Measurement(rows, peak - baseline, first_row or 0.0, total)
