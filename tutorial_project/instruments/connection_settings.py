"""Change a database's settings for the connections opened in a block of code.

Django reads ``DATABASES`` once into its connection handler; each thread's connection copies
what it needs (``OPTIONS["transaction_mode"]``, ``CONN_MAX_AGE``) when it connects. So
``override_settings(DATABASES=...)`` reaches nothing, while changing the live settings of
the alias reaches every connection opened afterwards: under ``ASGIHandler`` (or in a
``ThreadSensitiveContext``) that is every request's own connection.
"""

from contextlib import contextmanager

from django.db import connections


@contextmanager
def new_connections_use(alias="default", *, options=None, **settings):
    """Connections opened in the block use ``settings`` and ``options`` (merged into
    ``OPTIONS``; ``None`` removes a key). Everything is put back afterwards."""
    settings_dict = connections.settings[alias]
    saved = {key: settings_dict[key] for key in settings}
    saved_options = dict(settings_dict["OPTIONS"])
    settings_dict.update(settings)
    for key, value in (options or {}).items():
        if value is None:
            settings_dict["OPTIONS"].pop(key, None)
        else:
            settings_dict["OPTIONS"][key] = value
    try:
        yield
    finally:
        settings_dict.update(saved)
        settings_dict["OPTIONS"].clear()
        settings_dict["OPTIONS"].update(saved_options)
