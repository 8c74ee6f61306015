"""Pure-Python CPU work for lesson 01, in a thread of this process or in a new process.

    start_at = time.time() + 1.0  # every run begins computing at this instant
    started, ended, cpu_seconds, sleeps = timed_here(50_000, start_at)  # call it in a thread
    started, ended, cpu_seconds, sleeps = timed_in_a_new_process(50_000, start_at)

``hash_for(seconds)`` keeps a CPU busy in C code that lets go of the GIL (hashlib), the
control that tells the GIL's cost from the cost of sharing the CPU.

Both timed runs report wall-clock start and end (``time.time()``, which every process
shares), the CPU time the computation got, and how often it went to sleep while it
computed, so runs in threads and runs in processes compare alike. A common ``start_at`` keeps
a slow start (a new interpreter) out of the comparison.
"""

import hashlib
import json
import subprocess
import sys
import time

try:
    import resource
except ImportError:  # Windows has no resource module
    resource = None


def count_primes(limit):
    """Count the primes below ``limit`` the slow way: the CPU never waits."""
    return sum(all(n % d for d in range(2, int(n**0.5) + 1)) for n in range(2, limit))


def hash_for(seconds):
    """Hash 1 MiB buffers for ``seconds``: CPU-bound, but the GIL is free while C hashes.

    hashlib lets go of the GIL while it hashes a large buffer, so Python code in other
    threads runs meanwhile, as it does next to another process.
    """
    buffer = bytes(1 << 20)
    ends = time.perf_counter() + seconds
    while time.perf_counter() < ends:
        hashlib.sha256(buffer).digest()


def timed_here(limit, start_at=None):
    """Wait for ``start_at``, count primes here; return (started, ended, CPU seconds, sleeps).

    ``sleeps``: how often this thread went to sleep while it computed. Pure-Python counting
    never waits for I/O, so each one was a wait for something else: here, for the GIL.
    """
    if start_at is not None:
        time.sleep(max(0.0, start_at - time.time()))
    started, cpu_started, slept_before = time.time(), time.thread_time(), times_slept()
    count_primes(limit)
    sleeps = None if slept_before is None else times_slept() - slept_before
    return started, time.time(), time.thread_time() - cpu_started, sleeps


def times_slept():
    """How often this thread has gone to sleep (voluntary context switches), or None.

    Only Linux counts them per thread (``RUSAGE_THREAD``); being pushed off a busy CPU by
    other programs is an involuntary switch, counted apart. Load adds many: a thread's
    timed 5 ms wait for the GIL runs out again while the holder waits for a core.
    """
    if not hasattr(resource, "RUSAGE_THREAD"):
        return None
    return resource.getrusage(resource.RUSAGE_THREAD).ru_nvcsw


def timed_in_a_new_process(limit, start_at=None):
    """The same in a new Python process (its own interpreter, its own GIL).

    The child runs this file as a script in isolated mode (``-I``): it imports neither
    Django nor the project, so it is ready to compute within a fraction of a second.
    """
    command = [sys.executable, "-I", __file__, str(limit), json.dumps(start_at)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return tuple(json.loads(done.stdout))


if __name__ == "__main__":
    print(json.dumps(timed_here(int(sys.argv[1]), json.loads(sys.argv[2]))))
