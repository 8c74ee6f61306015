"""``DATABASE_URL`` -> Django's ``DATABASES["default"]``, for PostgreSQL with psycopg 3 and a pool.

    database_from_url("postgresql://shop:secret@127.0.0.1:5432/shop?sslmode=require")

dj-database-url reads the URL (query parameters such as ``sslmode`` become ``OPTIONS``);
this adds the one decision the lessons teach. Under ASGI, keep ``CONN_MAX_AGE = 0`` and let a
pool (Django 5.1+, psycopg 3) reuse the connections: a persistent connection belongs to the
thread that opened it, and ASGI serves each request on a new thread (see lesson 08), so
persistent connections pile up instead of being reused.
"""

import dj_database_url


def database_from_url(url, *, pool_min=2, pool_max=10):
    config = dj_database_url.parse(url, conn_max_age=0)  # 0 is required with "pool"
    if config["ENGINE"] != "django.db.backends.postgresql":
        raise ValueError(f"only postgresql:// URLs are supported, not {url.split(':', 1)[0]}://")
    config["OPTIONS"] = {
        **config.get("OPTIONS", {}),
        "pool": {"min_size": pool_min, "max_size": pool_max, "timeout": 10},
    }
    return config
