"""new_connections_use(): connections opened in the block get the settings, then all is put back."""

import asyncio


def test_new_connections_use_the_settings_and_they_are_put_back(project):
    from asgiref.sync import ThreadSensitiveContext, sync_to_async
    from django.db import connection, connections

    from tutorial_project.instruments.connection_settings import new_connections_use

    before = dict(connections.settings["default"]["OPTIONS"]), connections.settings[
        "default"
    ]["CONN_MAX_AGE"]

    def seen_by_a_new_connection():
        connection.ensure_connection()
        try:
            return connection.transaction_mode, connection.settings_dict["CONN_MAX_AGE"]
        finally:
            connection.close()

    async def in_a_request():
        async with ThreadSensitiveContext():
            return await sync_to_async(seen_by_a_new_connection)()

    with new_connections_use(CONN_MAX_AGE=60, options={"transaction_mode": None}):
        assert asyncio.run(in_a_request()) == (None, 60)
    assert asyncio.run(in_a_request()) == ("IMMEDIATE", before[1])
    after = dict(connections.settings["default"]["OPTIONS"]), connections.settings[
        "default"
    ]["CONN_MAX_AGE"]
    assert after == before
