"""Production settings: ``DJANGO_SETTINGS_MODULE=tutorial_project.settings_production``.

Lesson 08 runs ``python -m tutorial_project check --deploy`` against these. They refuse to
load without a real secret in the environment, and with DJANGO_ALLOW_ASYNC_UNSAFE set.
"""

import os

from django.core.exceptions import ImproperlyConfigured

from tutorial_project.settings import *  # noqa: F403 (the development settings, then overrides)

if os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE"):
    raise ImproperlyConfigured(
        "DJANGO_ALLOW_ASYNC_UNSAFE is set: it lets sync ORM calls block the event loop. Unset it."
    )

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    raise ImproperlyConfigured("Set DJANGO_SECRET_KEY (at least 50 random characters).")

DEBUG = False
MIDDLEWARE = [*MIDDLEWARE, "django.middleware.clickjacking.XFrameOptionsMiddleware"]  # noqa: F405
ALLOWED_HOSTS = [h for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "").split(",") if h]
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured("Set DJANGO_ALLOWED_HOSTS, e.g. 'shop.example.com'.")

# HTTPS, assuming a proxy (nginx, a load balancer) in front terminates TLS and says so.
# uvicorn (--proxy-headers, the default) takes the scheme from X-Forwarded-Proto only from the
# addresses in --forwarded-allow-ips, but leaves the header in place: with
# SECURE_PROXY_SSL_HEADER, Django believes it from any peer. So that setting is opt-in, for
# a server that does not rewrite the scheme itself (daphne, waitress), and only when, as
# Django's docs require, the proxy sets or strips X-Forwarded-Proto on every request and
# nothing but the proxy can reach the app server.
if os.environ.get("DJANGO_PROXY_SETS_X_FORWARDED_PROTO") == "1":
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
# Where a site ends up: a browser keeps HTTPS-only for the whole max-age (every subdomain
# too), and preload lists are slow to leave. Start a new site with a few minutes, then raise.
SECURE_HSTS_SECONDS = 60 * 60 * 24 * 365
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True

if os.environ.get("DATABASE_URL"):
    from tutorial_project.database_url import database_from_url

    DATABASES = {"default": database_from_url(os.environ["DATABASE_URL"])}

# Logs go to stderr, where the server (uvicorn, daphne, systemd, a container) collects them.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["stderr"], "level": "WARNING"},
    "loggers": {"django.request": {"level": "ERROR"}},
}
