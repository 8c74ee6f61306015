"""Checks for lesson 08 · Serving with real ASGI servers."""

import math

from tutorial_project.course.exercises.core import exercise

LATENCIES = [0.12, 0.10, 0.31, 0.11, 0.10, 0.95, 0.13, 0.12, 0.10, 0.14]


@exercise("08.1", "p50 and p99 from a list of latencies")
def check_percentile(check, percentile):
    cases = [
        (LATENCIES, 50, 0.12),
        (LATENCIES, 99, 0.95),
        (LATENCIES, 90, 0.31),
        ([0.2], 99, 0.2),
        (list(range(1, 101)), 99, 99),
    ]
    for values, p, expected in cases:
        got = percentile(list(values), p)
        shown = f"{values!r}" if len(values) < 12 else "[1, 2, ..., 100]"
        check.that(
            got is not None and math.isclose(got, expected),
            f"percentile({shown}, {p}) == {expected}",
            f"percentile({shown}, {p}) returned {got!r}, expected {expected}",
            hint="sort the values; take the one at rank ceil(p / 100 * n), counting from 1",
        )


@exercise("08.2", "How many requests per second can a server answer?")
def check_expected_throughput(check, expected_throughput):
    cases = [
        ((10, 0.1), {}, 100.0),
        ((500, 0.1), {"threads": 8}, 80.0),
        ((4, 0.1), {"threads": 8}, 40.0),
        ((100, 0.05), {"threads": None}, 2000.0),
    ]
    for args, kwargs, expected in cases:
        got = expected_throughput(*args, **kwargs)
        call = ", ".join([*map(repr, args), *(f"{k}={v!r}" for k, v in kwargs.items())])
        check.that(
            got is not None and math.isclose(got, expected),
            f"expected_throughput({call}) == {expected:g}",
            f"expected_throughput({call}) returned {got!r}, expected {expected:g}",
            hint="requests in flight / seconds each one takes; a pool of threads caps the "
            "requests in flight (threads=None: no cap)",
        )
