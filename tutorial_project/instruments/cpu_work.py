"""Pure-Python CPU work for lesson 01, importable so that a process pool can run it too."""

import time


def count_primes(limit):
    """Count the primes below ``limit`` the slow way: the CPU never waits."""
    return sum(all(n % d for d in range(2, int(n**0.5) + 1)) for n in range(2, limit))


def cpu_seconds_counting_primes(limit):
    """Count primes; return the CPU time this thread (or process) spent on it."""
    started = time.thread_time()  # CPU time of this thread only
    count_primes(limit)
    return time.thread_time() - started
