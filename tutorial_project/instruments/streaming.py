"""Lesson 07's building blocks: a slow job that reports progress, and Server-Sent Events.

- ``SlowJob(steps, delay)``: ``async for step in job.run()`` yields 1..steps, one every ``delay``
  seconds, and remembers when it produced each step, so a lesson can count the steps that
  were produced after the client had left.
- ``sse_event(data, event=None)``: one event in the text/event-stream format.
- ``read_events(response)``: the events of an httpx streaming response, as they arrive.
"""

import asyncio
import json
import time


class SlowJob:
    """Stands for real work that takes a while: a report, an export, a call to a slow API."""

    def __init__(self, steps=10, delay=0.1):
        self.steps, self.delay = steps, delay
        self.produced = []  # perf_counter() time of every step produced
        self.outcome = "not started"  # then "running", and "finished", "cancelled" or "closed"

    async def run(self):
        self.outcome = "running"
        try:
            for step in range(1, self.steps + 1):
                await asyncio.sleep(self.delay)  # the slow part: where cancellation lands
                self.produced.append(time.perf_counter())
                yield step
        except asyncio.CancelledError:
            self.outcome = "cancelled"
            raise
        except GeneratorExit:  # closed by its consumer before the end
            self.outcome = "closed"
            raise
        else:
            self.outcome = "finished"

    def produced_after(self, moment):
        """How many steps were produced after ``moment`` (a perf_counter() time)."""
        return sum(1 for produced in self.produced if produced > moment)


def sse_event(data, event=None):
    """One Server-Sent Event: optional ``event:`` line, a ``data:`` line of JSON, a blank line."""
    lines = [f"event: {event}"] if event else []
    lines.append(f"data: {json.dumps(data)}")
    return "\n".join(lines) + "\n\n"


class _EventParser:
    """Turns Server-Sent Events lines into ``(event, data)`` pairs, one line at a time."""

    def __init__(self):
        self.event, self.data = "message", []

    def feed(self, line):
        """Returns the finished ``(event, data)`` when ``line`` ends an event, else None."""
        if line.startswith("event:"):
            self.event = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            self.data.append(line.removeprefix("data:").strip())
        elif line == "" and self.data:  # a blank line ends the event
            finished = self.event, json.loads("\n".join(self.data))
            self.event, self.data = "message", []
            return finished
        return None


async def read_events(response):
    """Yield ``(event, data)`` for each event of a streaming httpx response, as it arrives."""
    parser = _EventParser()
    async for line in response.aiter_lines():
        if (finished := parser.feed(line)) is not None:
            yield finished


def events_in(text):
    """The ``(event, data)`` pairs of a whole Server-Sent Events body that was already read."""
    parser = _EventParser()
    return [finished for line in text.split("\n") if (finished := parser.feed(line)) is not None]
