"""``DATABASE_URL`` -> Django's ``DATABASES["default"]``, for PostgreSQL with psycopg 3 and a pool.

    database_from_url("postgresql://shop:secret@127.0.0.1:5432/shop")

Under ASGI, keep ``CONN_MAX_AGE = 0`` and let a pool (Django 5.1+, psycopg 3) reuse the
connections: a persistent connection belongs to the thread that opened it, and ASGI serves
each request on a new thread (see lesson 08), so persistent connections pile up instead of
being reused.
"""

from urllib.parse import unquote, urlsplit


def database_from_url(url, *, pool_min=2, pool_max=10):
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ValueError(f"only postgresql:// URLs are supported, not {parts.scheme}://")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": parts.path.lstrip("/"),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "127.0.0.1",
        "PORT": str(parts.port or 5432),
        "CONN_MAX_AGE": 0,  # required with "pool": the pool, not Django, keeps connections
        "OPTIONS": {"pool": {"min_size": pool_min, "max_size": pool_max, "timeout": 10}},
    }
