"""The project on PostgreSQL, served by several uvicorn workers with a connection pool.

Runs when DATABASE_URL points at a PostgreSQL server (CI starts one with .ci/postgres-up;
locally: `make postgres`, then export the DATABASE_URL it prints). Skipped otherwise.
Lesson 08 explains why: several worker processes need a database server, and under ASGI
connections are pooled (CONN_MAX_AGE = 0 plus psycopg's pool), not kept per thread.
"""

import asyncio
import os
import secrets
import subprocess
import sys

import httpx
import pytest

DATABASE_URL = os.environ.get("DATABASE_URL", "")
pytestmark = pytest.mark.skipif(
    not DATABASE_URL.startswith(("postgres://", "postgresql://")),
    reason="no PostgreSQL configured: run `make postgres` and export the DATABASE_URL it prints",
)
WORKERS, POOL_MAX = 2, 10


def production_env():
    return {
        "DJANGO_SETTINGS_MODULE": "tutorial_project.settings_production",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": DATABASE_URL,
    }


def manage(*args, env):
    done = subprocess.run(
        [sys.executable, "-m", "tutorial_project", *args],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr


def connections_to_the_database():
    import psycopg

    with psycopg.connect(DATABASE_URL) as connection:
        return connection.execute(
            "select count(*) from pg_stat_activity where datname = current_database() "
            "and pid <> pg_backend_pid()"
        ).fetchone()[0]


def test_workers_serve_from_postgres_through_a_bounded_pool():
    from postgres_script import the_database_alone

    with the_database_alone():  # it flushes the database the other PostgreSQL tests use
        workers_serve_from_postgres_through_a_bounded_pool()


def workers_serve_from_postgres_through_a_bounded_pool():
    from tutorial_project.instruments.servers import leftovers, serve

    env = production_env()
    manage("migrate", "--no-input", env=env)
    manage("flush", "--no-input", env=env)
    manage("load_demo_data", env=env)

    async def scenario():
        # The production settings redirect plain HTTP; a TLS-terminating proxy would send this.
        headers = {"X-Forwarded-Proto": "https"}
        async with serve("uvicorn", workers=WORKERS, env=env) as server:
            async with httpx.AsyncClient(headers=headers, timeout=30) as client:
                for _ in range(3):
                    answers = await asyncio.gather(
                        *(client.get(f"{server.url}/api/catalog/products/") for _ in range(100))
                    )
                    assert {a.status_code for a in answers} == {200}
                    assert {len(a.json()["products"]) for a in answers} == {12}
                held = await asyncio.to_thread(connections_to_the_database)
        return held

    held = asyncio.run(scenario())
    assert 0 < held <= WORKERS * POOL_MAX, f"{held} connections for {WORKERS} pools of {POOL_MAX}"
    assert leftovers() == {}
