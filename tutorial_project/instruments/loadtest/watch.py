"""What a server process (and its workers) uses while it is under load, read with psutil.

``watch = ServerWatch(pid, database=path)``; ``watch.start()`` when the measured window opens,
``usage = watch.stop()`` when it closes. Meanwhile a thread samples, every ``interval``
seconds, the threads and memory (RSS) of the process and its children, and how many SQLite
connections they hold (each connection keeps the database file open once). It also reads
the whole machine's busy CPU over the window (every process: the server, the load tool and
anything else running) and the load average, so that a reader sees when the machine, not the
server, was full. psutil answers the same questions on Linux, macOS and Windows.
"""

import os
import threading
import time
from dataclasses import dataclass

import psutil


@dataclass
class ServerUsage:
    seconds: float  # the window's length
    cpu_seconds: float  # user + system CPU of the server's processes over the window
    peak_threads: int  # summed over the server's processes
    peak_rss: int  # bytes, summed over the server's processes
    peak_db_connections: int | None  # None: not counted (no database file given)
    machine_busy: float = 0.0  # cores the whole machine kept busy over the window, every process
    load_average: float | None = None  # 1-minute load average at the window's end (None: n/a)

    @property
    def cpu_share(self):
        """CPU used over the window, as a fraction of one core (may exceed 1 with workers)."""
        return self.cpu_seconds / self.seconds


def _tree(pid):
    parent = psutil.Process(pid)
    return [parent, *parent.children(recursive=True)]


def _machine_busy_seconds():
    """CPU seconds every core of the machine spent not idle (summed over cores)."""
    times = psutil.cpu_times()
    idle = times.idle + getattr(times, "iowait", 0.0)
    return sum(times) - idle


def _load_average():
    try:
        return psutil.getloadavg()[0]  # emulated on Windows (0 until it has a few seconds)
    except (AttributeError, OSError):
        return None


def _cpu(processes):
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.Error:  # a worker that ended meanwhile
            continue
        total += times.user + times.system
    return total


class ServerWatch:
    def __init__(self, pid, *, database=None, interval=0.2):
        self.pid, self.interval = pid, interval
        self.database = os.path.realpath(database) if database else None
        self._stop = threading.Event()
        self._thread = None
        self.peak_threads = self.peak_rss = 0
        self.peak_db_connections = 0 if database else None

    def start(self):
        self._processes = _tree(self.pid)
        self._cpu, self._started = _cpu(self._processes), time.perf_counter()
        self._machine = _machine_busy_seconds()
        self._thread = threading.Thread(target=self._sample_until_stopped, name="server-watch")
        self._thread.start()

    def stop(self):
        seconds = time.perf_counter() - self._started
        cpu = _cpu(self._processes) - self._cpu
        machine = (_machine_busy_seconds() - self._machine) / seconds
        self._stop.set()
        self._thread.join()
        return ServerUsage(seconds, cpu, self.peak_threads, self.peak_rss,
                           self.peak_db_connections, machine, _load_average())

    def _sample_until_stopped(self):
        while True:
            self._sample()
            if self._stop.wait(self.interval):
                return

    def _sample(self):
        threads = rss = connections = 0
        for process in self._processes:
            try:
                with process.oneshot():
                    threads += process.num_threads()
                    rss += process.memory_info().rss
                if self.database:
                    connections += sum(
                        f.path == self.database for f in process.open_files()
                    )
            except psutil.Error:
                continue
        self.peak_threads = max(self.peak_threads, threads)
        self.peak_rss = max(self.peak_rss, rss)
        if self.database:
            self.peak_db_connections = max(self.peak_db_connections, connections)
