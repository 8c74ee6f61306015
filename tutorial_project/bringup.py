"""Bring the embedded project up in this process: ``start()``.

Works in a Jupyter cell (inside a running event loop) and in a plain script alike.
Django's management commands and the sync ORM refuse to run on a thread that has a
running event loop, so the database work happens on a short-lived worker thread.
"""

import atexit
import os
import shutil
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor

SETTINGS_MODULE = "tutorial_project.settings"

_lock = threading.Lock()
_database_dir = None


def start(*, quiet=False):
    """Configure Django, give this process a fresh database, and load the demo data.

    The first call creates a new SQLite file in a temporary folder (removed at exit)
    and applies the migrations. Every later call, from this notebook or another one in
    the same kernel, resets that database to the demo data and unmounts the views that
    cells mounted, so a lesson can be run again from the top and show the same results.
    """
    with _lock:
        first_time = _database_dir is None
        if first_time:
            _configure()
        _run_on_worker_thread(_prepare_database, first_time)
        from tutorial_project import playground

        playground.unmount_all()
    if not quiet:
        print(summary())


def database_path():
    """The SQLite file of this process (other processes can be pointed at it)."""
    from django.conf import settings

    return settings.DATABASES["default"]["NAME"]


def summary():
    import platform

    import django

    from tutorial_project.catalog.models import Category, Product
    from tutorial_project.orders.models import Customer

    counts = _run_on_worker_thread(
        lambda: (Product.objects.count(), Category.objects.count(), Customer.objects.count())
    )
    return (
        f"Django {django.get_version()} on Python {platform.python_version()}: "
        f"a fresh SQLite database with {counts[0]} products in {counts[1]} categories "
        f"and {counts[2]} customers."
    )


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def keep_loopback_off_proxies(environ=os.environ):
    """Add the loopback names to ``NO_PROXY``, for this process and the servers it starts.

    httpx (``trust_env=True``, its default), requests and urllib send every request through
    ``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY`` when set, loopback included, unless
    ``NO_PROXY`` names the host: on a laptop behind a company proxy, every call the lessons
    make to their own servers on 127.0.0.1 would go to the proxy and fail.
    """
    for name in ("NO_PROXY", "no_proxy"):
        listed = [host.strip() for host in environ.get(name, "").split(",") if host.strip()]
        if "*" in listed:
            continue
        listed += [host for host in LOOPBACK_HOSTS if host not in listed]
        environ[name] = ",".join(listed)


def _configure():
    global _database_dir
    _database_dir = tempfile.mkdtemp(prefix="django-async-tutorial-")
    atexit.register(shutil.rmtree, _database_dir, ignore_errors=True)
    # Environment variables, so that servers started from a lesson share this database.
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS_MODULE
    os.environ["TUTORIAL_DATABASE"] = os.path.join(_database_dir, "db.sqlite3")
    keep_loopback_off_proxies()
    _forget_half_loaded_settings()

    import django

    django.setup()


def _forget_half_loaded_settings():
    """If something touched django.conf.settings before start(), make it read ours."""
    if "django.conf" in sys.modules:
        from django.conf import settings

        if settings.configured and getattr(settings, "SETTINGS_MODULE", None) != SETTINGS_MODULE:
            raise RuntimeError(
                f"Django is already configured with {settings.SETTINGS_MODULE!r}; "
                "restart the kernel and run start() first."
            )


def _prepare_database(first_time):
    from django.core.management import call_command

    from tutorial_project.catalog.demo import load_demo_data

    if first_time:
        call_command("migrate", verbosity=0, interactive=False)
    else:
        call_command("flush", verbosity=0, interactive=False)
    load_demo_data()


def _run_on_worker_thread(function, *args):
    """Run sync Django code where it is allowed: on a thread with no event loop."""

    def run_and_close():
        from django.db import connections

        try:
            return function(*args)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tutorial-setup") as pool:
        return pool.submit(run_and_close).result()
