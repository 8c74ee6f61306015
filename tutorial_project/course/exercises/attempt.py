"""Run a learner's async code for a check, and tell apart what can go wrong with it.

``await attempt(check, lambda: answer(...), "fetch_both(client)")`` returns the answer's
result, or ``Raised(error)`` when the answer raised: the check decides whether that error is
wrong (a 500 that escaped) or right (a test that failed). The check's own deadline is not an
exception inside the answer, so an answer that raises ``TimeoutError`` itself (from its own
``asyncio.timeout``) is never mistaken for one that hung.

A forgotten ``await`` makes Python print "RuntimeWarning: coroutine ... was never awaited",
pointing into the checker. ``attempt`` and ``watching_awaits`` record that warning instead,
and ``attempt`` also spots the other signs of it (a coroutine returned where a value was
expected, "'coroutine' object has no attribute ..."): each stops the check with a hint that
names the coroutine.
"""

import asyncio
import gc
import inspect
import warnings
from contextlib import contextmanager
from dataclasses import dataclass

NEVER_AWAITED = "was never awaited"


@dataclass
class Raised:
    """The answer raised ``error`` (its traceback dropped: the verdict shows one line)."""

    error: BaseException

    def __str__(self):
        return f"{type(self.error).__name__}: {self.error}"


@contextmanager
def watching_awaits():
    """Collect the "coroutine ... was never awaited" messages of the block in a list.

    Other warnings are shown as usual when the block ends. Unawaited coroutines are reported
    when they are destroyed, so the block ends with a collection of the young generations
    (a full one can stall the event loop for most of a second on a busy machine).
    """
    found = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect(1)  # what earlier cells left unawaited is reported now, not blamed on this
        caught.clear()
        try:
            yield found
        finally:
            gc.collect(1)
    for warning in caught:
        if NEVER_AWAITED in str(warning.message):
            found.append(str(warning.message))
        else:
            warnings.showwarning(warning.message, warning.category, warning.filename,
                                 warning.lineno)


FORGOT_AWAIT = (
    "an `await` is missing: calling an async function (client.get, acount, aget, "
    "get_response...) only makes a coroutine; `await` runs it"
)


def stop_if_unawaited(check, found, what):
    if found:
        check.that(False, "", f"{what}: {found[0]}", hint=FORGOT_AWAIT)


def fail(check, failed, hint=None):
    """Stop the check with ``failed`` and ``hint`` (no passing line to show)."""
    check.that(False, "", failed, hint=hint)


def _coroutines_in(value, depth=2):
    """Coroutine objects in ``value``, or up to ``depth`` levels inside (dict values, items)."""
    if inspect.iscoroutine(value):
        return [value]
    if depth == 0:
        return []
    items = value.values() if isinstance(value, dict) else value
    if not isinstance(value, dict | list | tuple | set):
        return []
    return [found for item in items for found in _coroutines_in(item, depth - 1)]


async def attempt(check, call, what, *, give_up=5.0, hint="bound every wait with a budget"):
    """``await call()`` for at most ``give_up`` seconds: its result, or ``Raised(error)``.

    Stops the check (with ``hint``) if it had no result in time, and with the forgotten-await
    hint if a coroutine was never awaited.
    """
    with watching_awaits() as unawaited:
        task = asyncio.ensure_future(call())
        done, _ = await asyncio.wait({task}, timeout=give_up)
        if not done:
            task.cancel()
            await asyncio.wait({task}, timeout=1.0)
        outcome = None
        if done:
            error = task.exception()
            if error is None:
                outcome = task.result()
            else:
                outcome = Raised(error.with_traceback(None))
            del error
        # Drop every reference to the task (the one in `done` too): it keeps its traceback,
        # whose frames hold the answer's locals, so an unawaited coroutine is reported now.
        task, done = None, bool(done)
        returned = _coroutines_in(outcome)
        # An AttributeError keeps the object it was raised on: `coroutine.json()` keeps it.
        held = _coroutines_in(getattr(getattr(outcome, "error", None), "obj", None))
        for coroutine in returned + held:
            coroutine.close()  # reported below, so Python need not warn about it
    stop_if_unawaited(check, unawaited, what)
    if returned:
        fail(check, f"{what} gave a coroutine ({returned[0].__qualname__}) where a value was "
                    "expected", FORGOT_AWAIT)
    if isinstance(outcome, Raised) and any(
        sign in str(outcome.error)
        for sign in ("'coroutine' object", "_GatheringFuture", "await wasn't used with future")
    ):
        fail(check, f"{what} raised {outcome}", FORGOT_AWAIT)
    if not done:
        fail(check, f"{what} still had no result after {give_up:.0f} s", hint)
    return outcome
