"""The store's engine: its pool hands out the connection returned last."""

from __future__ import annotations

from gpufleet.settings import Settings
from gpufleet.store.engine import create_store_engine


def test_the_connection_returned_last_is_handed_out_first(database_url):
    engine = create_store_engine(Settings(database_url=database_url, db_pool_size=3))
    try:
        first, second = engine.connect(), engine.connect()
        first_driver = first.connection.driver_connection
        second_driver = second.connection.driver_connection
        first.close()
        second.close()
        with engine.connect() as again:
            assert again.connection.driver_connection is second_driver
        # Both kept: the one returned before is handed out next.
        with engine.connect() as conn, engine.connect() as other:
            assert {conn.connection.driver_connection, other.connection.driver_connection} == {
                first_driver,
                second_driver,
            }
    finally:
        engine.dispose()
