"""Measure how responsive the event loop stays: a task that wants to wake up every few ms.

    async with Heartbeat() as heartbeat:
        await work()
    heartbeat.longest_gap  # seconds; close to `every` if nothing blocked the loop
    heartbeat.rate         # wake-ups per second; compare with an idle loop's

If ``work()`` blocks the loop (``time.sleep``, a sync HTTP call, a long computation), the
heartbeat cannot run either, and ``longest_gap`` grows to the length of the block.
"""

import asyncio
import time


class Heartbeat:
    def __init__(self, every=0.01):
        self.every = every
        self.longest_gap = 0.0
        self.beats = 0  # wake-ups while the body ran
        self.seconds = 0.0  # how long the body ran
        self._started = None
        self._last = None
        self._task = None

    async def __aenter__(self):
        self._started = self._last = time.perf_counter()
        self._task = asyncio.create_task(self._beat())
        return self

    async def __aexit__(self, *exc_info):
        self._record_gap()  # the body may have blocked right up to its end
        self.seconds = self._last - self._started
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _beat(self):
        while True:
            await asyncio.sleep(self.every)
            self.beats += 1
            self._record_gap()

    @property
    def rate(self):
        """Wake-ups per second while the body ran."""
        return self.beats / self.seconds if self.seconds else 0.0

    def _record_gap(self):
        now = time.perf_counter()
        self.longest_gap = max(self.longest_gap, now - self._last)
        self._last = now
