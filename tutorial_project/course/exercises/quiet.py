"""Run a check's probe without its noise reaching the learner's cell.

The probes of lessons 05 and 07 make 401s, 500s and failing streams on purpose: Django's
``django.request`` log and uvicorn's error log would print them above the verdict. A wrong
answer that forgets an ``await`` makes Python warn "coroutine ... was never awaited" at some
later moment, pointing into the checker; here that warning is recorded instead, so the
verdict can name the forgotten ``await``.
"""

import contextlib
import gc
import logging
import warnings

FORGOT_AWAIT = "a coroutine was never awaited: did you forget `await` before an async call?"
QUIET_LOGGERS = ("django.request", "uvicorn.error")


class Probe:
    """What the learner's code left behind during one probe."""

    def __init__(self):
        self.never_awaited = False
        self.warned = set()  # the categories of the warnings raised during the probe

    def hint(self, otherwise):
        """The forgotten-await hint if a coroutine was dropped, else ``otherwise``."""
        return FORGOT_AWAIT if self.never_awaited else otherwise


def _drop(record):
    return False


@contextlib.contextmanager
def quiet_probe():
    probe = Probe()
    # A filter, not a level: uvicorn sets its loggers' levels when a server starts.
    loggers = [logging.getLogger(name) for name in QUIET_LOGGERS]
    for logger in loggers:
        logger.addFilter(_drop)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                yield probe
            finally:
                gc.collect()  # a dropped coroutine warns when it is collected
    finally:
        for logger in loggers:
            logger.removeFilter(_drop)
    probe.never_awaited = any("never awaited" in str(w.message) for w in caught)
    probe.warned = {w.category for w in caught}
