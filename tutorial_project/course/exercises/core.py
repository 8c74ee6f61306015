"""The verdict machinery shared by every lesson's exercise checks."""

import functools
import gc
import inspect
import re
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field

PASS, FAIL = "✅", "❌"


class NotSolved(Exception):
    """The answer is still the learner copy's placeholder."""


@dataclass
class Verdict:
    exercise: str
    title: str
    passed: bool
    lines: list = field(default_factory=list)
    solved: bool = True  # False: the placeholder is still there

    def __bool__(self):
        return self.passed

    def __str__(self):
        head = f"Exercise {self.exercise} · {self.title}"
        if not self.solved:
            status = "⏳ not solved yet: write your answer in the cell above, then run this cell."
        elif self.passed:
            status = f"{PASS} passed"
        else:
            status = f"{FAIL} not yet: see the hints above"
        return "\n".join([head, *self.lines, status])

    def __repr__(self):
        return str(self)

    def _repr_pretty_(self, printer, cycle):
        printer.text(str(self))


class Check:
    """Collects expectations; the first failing one ends the check with its hint."""

    def __init__(self):
        self.lines = []
        self.passed = True

    def that(self, condition, ok, failed, *, hint=None):
        """Record one expectation: ``ok`` is shown if it holds, ``failed`` and ``hint`` if not.

        Keep ``ok`` free of measured numbers so the verdict reads the same on every run.
        """
        if condition:
            self.lines.append(f"  {PASS} {ok}")
            return True
        self.lines.append(f"  {FAIL} {failed}")
        if hint:
            self.lines.append(f"     hint: {hint}")
        self.passed = False
        raise _StopCheck


class _StopCheck(BaseException):
    """Ends a check at its first failed expectation.

    A BaseException, so that a check's own ``except Exception`` around the learner's code
    never swallows it.
    """


@contextmanager
def _unawaited_coroutines():
    """Yield a list that ends up holding the names of coroutines never awaited in the block.

    A forgotten ``await`` makes Python warn "coroutine ... was never awaited" when the
    coroutine is freed, pointing into the check rather than at the learner's line. The check
    turns it into a verdict line with a hint instead; other warnings are shown as usual.
    """
    names = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.filterwarnings("always", "coroutine .* was never awaited", RuntimeWarning)
        yield names
        gc.collect()  # a coroutine held in a reference cycle warns only when collected
    for warning in caught:
        found = re.match(r"coroutine '(.+)' was never awaited", str(warning.message))
        if found and issubclass(warning.category, RuntimeWarning):
            names.append(_as_written(getattr(warning, "source", None), found.group(1)))
        else:
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )


def _as_written(coroutine, qualname):
    """The call the learner wrote that made ``coroutine``: ``sync_to_async(close)`` for the
    coroutine of a sync_to_async wrapper (whose own name is asgiref's ``SyncToAsync.__call__``),
    else the coroutine function's last name. Python's warning carries the coroutine as its
    source; its frame, never started, still holds the call's arguments."""
    frame = getattr(coroutine, "cr_frame", None)
    wrapper = frame.f_locals.get("self") if frame is not None else None
    func = getattr(wrapper, "func", None)
    if type(wrapper).__name__ == "SyncToAsync" and func is not None:
        return f"sync_to_async({getattr(func, '__name__', 'your function')})"
    return qualname.rsplit(".", 1)[-1]


def _report_unawaited(check, names):
    for short in dict.fromkeys(names):
        check.lines.append(f"  {FAIL} {short}(...) was called but never awaited")
        check.lines.append(
            f"     hint: calling an async function only creates a coroutine; its body runs "
            f"when you `await {short}(...)` (or hand it to asyncio.gather / a TaskGroup)"
        )
        check.passed = False


def exercise(number, title):
    """Turn ``check_fn(check, *answers)`` (sync or async) into a verdict-printing check."""

    def decorate(check_fn):
        def verdict_for(check, error=None, unawaited=(), solved=True):
            if error is not None:
                check.lines.append(f"  {FAIL} your code raised {error}")
                check.passed = False
            _report_unawaited(check, unawaited)
            # Returned, not printed: as a cell's last expression it shows once, via _repr_pretty_.
            return Verdict(number, title, check.passed and solved, check.lines, solved)

        def placeholder(answers):
            return any(answer is Ellipsis for answer in answers)

        def described(error):
            # A string, not the exception: its traceback would keep the learner's coroutines
            # alive past the unawaited-coroutine watch.
            return f"{type(error).__name__}: {error}"

        if inspect.iscoroutinefunction(check_fn):

            @functools.wraps(check_fn)
            async def run_async(*answers):
                check = Check()
                if placeholder(answers):
                    return verdict_for(check, solved=False)
                error = None
                with _unawaited_coroutines() as unawaited:
                    try:
                        await check_fn(check, *answers)
                    except _StopCheck:
                        pass
                    except NotSolved:
                        return verdict_for(check, solved=False)
                    except Exception as raised:  # the learner's code failed: say so, no traceback
                        error = described(raised)
                return verdict_for(check, error, unawaited)

            return run_async

        @functools.wraps(check_fn)
        def run_sync(*answers):
            check = Check()
            if placeholder(answers):
                return verdict_for(check, solved=False)
            error = None
            with _unawaited_coroutines() as unawaited:
                try:
                    check_fn(check, *answers)
                except _StopCheck:
                    pass
                except NotSolved:
                    return verdict_for(check, solved=False)
                except Exception as raised:
                    error = described(raised)
            return verdict_for(check, error, unawaited)

        return run_sync

    return decorate
