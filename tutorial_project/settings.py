"""Settings for the embedded tutorial project.

The notebooks bring this project up in their own kernel (see ``tutorial_project.bringup``),
and ``uvicorn tutorial_project.asgi:application`` serves the very same project.
Nothing here sets ``DJANGO_ALLOW_ASYNC_UNSAFE``: the async-safety errors are part of the lessons.
"""

import importlib.util
import os
from pathlib import Path

import django
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent
REPO_DIR = BASE_DIR.parent

# A development key: the production settings lesson reads the real one from the environment.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "insecure-tutorial-key-only-for-local-lessons")
DEBUG = os.environ.get("DJANGO_DEBUG", "") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "tutorial_project.catalog",
    "tutorial_project.orders",
]
if django.VERSION < (6, 0):  # Django 5.2: the django-tasks backport of django.tasks (lesson 11)
    # requirements.txt installs it with Django 5.2, which it pairs with Python < 3.12 (pip
    # markers cannot name a Django version): Django 5.2 on a newer Python needs it added.
    if importlib.util.find_spec("django_tasks") is None:
        raise ImproperlyConfigured(
            f"Django {django.get_version()} has no django.tasks: install its backport with "
            "'pip install django-tasks==0.12.0' (requirements.txt installs it only with the "
            "Django 5.2 it pins for Python < 3.12)"
        )
    INSTALLED_APPS.append("django_tasks")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]

ROOT_URLCONF = "tutorial_project.urls"
ASGI_APPLICATION = "tutorial_project.asgi.application"
WSGI_APPLICATION = "tutorial_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
            ],
        },
    },
]

DEFAULT_DATABASE = REPO_DIR / ".data" / "db.sqlite3"
if "TUTORIAL_DATABASE" not in os.environ:
    DEFAULT_DATABASE.parent.mkdir(exist_ok=True)

# A file, never ":memory:": an in-memory SQLite database is private to one thread, and
# sync_to_async runs queries on other threads. start() points this at a fresh temp file.
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("TUTORIAL_DATABASE", str(DEFAULT_DATABASE)),
        "OPTIONS": {
            # Writers from several threads wait for each other instead of failing at once.
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL;",
        },
    }
}

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"
STATIC_URL = "static/"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"one_line": {"()": "tutorial_project.cell_logging.OneLineFormatter"}},
    "handlers": {
        "cell": {"class": "tutorial_project.cell_logging.CellHandler", "formatter": "one_line"}
    },
    "loggers": {
        "django.request": {"handlers": ["cell"], "level": "WARNING", "propagate": False},
        "django.server": {"handlers": ["cell"], "level": "WARNING", "propagate": False},
    },
}
