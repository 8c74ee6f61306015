"""What the async cache API runs behind each call, and fresh caches to try it on.

    async with scratch_caches() as backends:        # {"LocMemCache": ..., ...}, all empty
        with thread_hops() as ran:
            await backends["LocMemCache"].aincr("n")
        ran                                          # ["get", "set"] on 5.2, ["incr"] on 6.1

``BaseCache``'s async methods reach the sync backend by calling ``sync_to_async`` (looked up
in ``django.core.cache.backends.base`` at call time); ``thread_hops`` wraps that name to
record, in order, the sync method each hop runs in a thread.
"""

import contextlib
import itertools
import shutil
import tempfile
from unittest import mock

from asgiref.sync import sync_to_async
from django.core.cache.backends import base
from django.core.cache.backends.db import DatabaseCache
from django.core.cache.backends.filebased import FileBasedCache
from django.core.cache.backends.locmem import LocMemCache

TABLE = "tutorial_scratch_cache"
_names = itertools.count(1)


@contextlib.contextmanager
def thread_hops():
    """Record the name of every sync method that BaseCache runs with sync_to_async."""
    ran = []

    def recording_sync_to_async(func, *args, **kwargs):
        ran.append(func.__name__)
        return sync_to_async(func, *args, **kwargs)

    with mock.patch.object(base, "sync_to_async", recording_sync_to_async):
        yield ran


def _create_table():
    from django.core.management.commands.createcachetable import Command

    command = Command()
    command.verbosity = 0
    command.create_table("default", TABLE, dry_run=False)  # does nothing if it exists


@contextlib.asynccontextmanager
async def scratch_caches():
    """One empty cache of each kind that needs no server: local memory, file, database."""
    folder = tempfile.mkdtemp(prefix="tutorial-cache-")
    await sync_to_async(_create_table)()
    backends = {
        "LocMemCache": LocMemCache(f"scratch-{next(_names)}", {}),
        "FileBasedCache": FileBasedCache(folder, {}),
        "DatabaseCache": DatabaseCache(TABLE, {}),
    }
    await backends["DatabaseCache"].aclear()
    try:
        yield backends
    finally:
        await sync_to_async(shutil.rmtree)(folder, ignore_errors=True)
