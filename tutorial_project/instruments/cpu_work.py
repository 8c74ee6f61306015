"""Pure-Python CPU work for lesson 01, in a thread of this process or in a new process.

    started, ended, cpu_seconds = timed_here(100_000)           # call it in a thread
    started, ended, cpu_seconds = timed_in_a_new_process(100_000)

Both report wall-clock start and end (``time.time()``, which every process shares) and the
CPU time the computation got, so runs in threads and runs in processes compare alike.
"""

import json
import subprocess
import sys
import time
from pathlib import Path


def count_primes(limit):
    """Count the primes below ``limit`` the slow way: the CPU never waits."""
    return sum(all(n % d for d in range(2, int(n**0.5) + 1)) for n in range(2, limit))


def timed_here(limit):
    """Count primes in the calling thread; return (started, ended, CPU seconds of the thread)."""
    started, cpu_started = time.time(), time.thread_time()
    count_primes(limit)
    return started, time.time(), time.thread_time() - cpu_started


def timed_in_a_new_process(limit):
    """Count primes in a new Python process (its own interpreter, its own GIL); same result."""
    project_root = Path(__file__).resolve().parents[2]
    command = [sys.executable, "-m", "tutorial_project.instruments.cpu_work", str(limit)]
    done = subprocess.run(command, cwd=project_root, capture_output=True, text=True, check=True)
    return tuple(json.loads(done.stdout))


if __name__ == "__main__":
    print(json.dumps(timed_here(int(sys.argv[1]))))
