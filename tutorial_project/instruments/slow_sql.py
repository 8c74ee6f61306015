"""Queries that take a known time, so you can see when they overlap.

A real database server answers over the network, and while it works, the Django thread that
sent the query just waits. SQLite answers in microseconds from inside this process, which
hides that waiting. ``slow(queryset, seconds)`` adds a SQL function to the query that waits
that long (for each row returned) before SQLite carries on, and records when it ran and on
which thread into ``recording()``'s list.
"""

import time
from contextlib import contextmanager

from django.db.models import FloatField, Func, Value

from tutorial_project.instruments.timeline import Timeline

_timeline = None  # the Timeline of the active recording(), if any


class Wait(Func):
    """``tutorial_wait(seconds, label)``: sleeps, then returns ``seconds``."""

    function = "tutorial_wait"
    output_field = FloatField()

    def as_sqlite(self, compiler, connection, **extra):
        # Compiled on the thread that runs the query: give that thread's connection the function.
        connection.ensure_connection()
        connection.connection.create_function(self.function, 2, _wait)
        return self.as_sql(compiler, connection, **extra)


def slow(queryset, seconds, label=""):
    """``queryset``, annotated so that SQLite waits ``seconds`` per row it returns."""
    return queryset.annotate(waited=Wait(Value(seconds), Value(label)))


@contextmanager
def recording():
    """Record the waits of slow queries: ``with recording() as timeline: ...``."""
    global _timeline
    _timeline = Timeline()
    try:
        yield _timeline
    finally:
        _timeline = None


def _wait(seconds, label):
    timeline = _timeline
    if timeline is None:
        time.sleep(seconds)
        return seconds
    with timeline.span(label):  # the span also notes the thread it ran on
        time.sleep(seconds)
    return seconds
