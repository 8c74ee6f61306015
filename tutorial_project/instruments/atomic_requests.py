"""Switch the ``ATOMIC_REQUESTS`` database setting on for a block of code.

``ATOMIC_REQUESTS`` lives in ``DATABASES``, which Django reads once into its connection
handler, so ``override_settings(DATABASES=...)`` does not reach it. This flips the flag in
the live settings of the connection alias and puts it back afterwards.
"""

from contextlib import contextmanager

from django.db import connections


@contextmanager
def atomic_requests(alias="default"):
    settings_dict = connections.settings[alias]
    before = settings_dict["ATOMIC_REQUESTS"]
    settings_dict["ATOMIC_REQUESTS"] = True
    try:
        yield
    finally:
        settings_dict["ATOMIC_REQUESTS"] = before
