"""DATABASE_URL -> DATABASES["default"], through dj-database-url, plus the pool lessons teach."""

import pytest

from tutorial_project.database_url import database_from_url


def test_postgres_url_with_query_options_quoted_password_and_pool():
    config = database_from_url(
        "postgresql://shop:p%40ss@db.example:6432/shop?sslmode=require", pool_max=4
    )
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["NAME"], config["USER"], config["PASSWORD"]) == ("shop", "shop", "p@ss")
    assert (config["HOST"], config["PORT"]) == ("db.example", 6432)
    assert config["CONN_MAX_AGE"] == 0  # Django refuses a pool with persistent connections
    assert config["OPTIONS"]["sslmode"] == "require"  # the query string is kept
    assert config["OPTIONS"]["pool"] == {"min_size": 2, "max_size": 4, "timeout": 10}


def test_other_databases_are_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="only postgresql:// URLs"):
        database_from_url("mysql://user:secret@127.0.0.1/shop")
