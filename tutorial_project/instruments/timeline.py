"""Record when concurrent work started and ended, and draw it: one bar per task, in ms.

timeline = Timeline()
async def fetch(i):
    with timeline.span(f"request {i}"):
        await asyncio.sleep(0.1)
await asyncio.gather(*(fetch(i) for i in range(5)))
timeline.plot("Five requests waited at the same time")
"""

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass
class Span:
    label: str
    start: float  # seconds since the timeline began
    end: float
    thread: str

    @property
    def duration(self):
        return self.end - self.start


class Timeline:
    def __init__(self):
        self.origin = time.perf_counter()
        self.spans = []
        self._lock = threading.Lock()  # spans may end on worker threads

    @contextmanager
    def span(self, label):
        """Time the block; works in coroutines and in threads alike."""
        start = time.perf_counter() - self.origin
        try:
            yield
        finally:
            end = time.perf_counter() - self.origin
            with self._lock:
                self.spans.append(Span(label, start, end, threading.current_thread().name))

    @property
    def total(self):
        """Seconds from the first start to the last end."""
        if not self.spans:
            return 0.0
        return max(s.end for s in self.spans) - min(s.start for s in self.spans)

    def threads(self):
        """How many distinct threads the spans ran on."""
        return len({s.thread for s in self.spans})

    def plot(self, title, ax=None):
        """Draw the spans as horizontal bars (ms on the x axis); returns the axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(7, 0.35 * len(self.spans) + 1.2))
        origin = min((s.start for s in self.spans), default=0.0)
        spans = sorted(self.spans, key=lambda s: s.start)
        for row, span in enumerate(spans):
            ax.barh(row, (span.end - span.start) * 1000, left=(span.start - origin) * 1000)
        ax.set_yticks(range(len(spans)), [s.label for s in spans])
        ax.invert_yaxis()
        ax.set_xlabel("time since the first start (ms)")
        ax.set_title(title)
        return ax
