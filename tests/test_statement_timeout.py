"""The statement timeout: PostgreSQL's ``statement_timeout``, SQLite's progress handler."""

from __future__ import annotations

import anyio
import orjson
import pytest
import sqlalchemy as sa
from starlette.requests import Request

from gpufleet.api.app import create_app
from gpufleet.settings import Settings
from gpufleet.store.dialect import is_statement_timeout, without_statement_timeout
from gpufleet.store.engine import create_store_engine

TIMEOUT = 0.2


def counting_to(n: int) -> sa.TextClause:
    """A statement that runs as long as its argument makes it, on both databases."""
    return sa.text(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < :n) "
        "SELECT count(*) FROM c"
    ).bindparams(n=n)


@pytest.fixture
def bounded_engine(database_url):
    engine = create_store_engine(
        Settings(database_url=database_url, db_statement_timeout_seconds=TIMEOUT)
    )
    yield engine
    engine.dispose()


def test_a_long_statement_is_cancelled_and_the_connection_stays_usable(bounded_engine):
    with bounded_engine.connect() as conn:
        # A hundred million rows take far longer than the timeout on either database.
        with pytest.raises(sa.exc.OperationalError) as raised:
            conn.execute(counting_to(100_000_000)).scalar_one()
        assert is_statement_timeout(raised.value)
        conn.rollback()
        assert conn.execute(counting_to(10)).scalar_one() == 10


def test_maintenance_may_lift_the_timeout(bounded_engine):
    with bounded_engine.begin() as conn:
        without_statement_timeout(conn)
        assert conn.execute(counting_to(300_000)).scalar_one() == 300_000
    # Lifting it lasts for that transaction (or checkout) only.
    with bounded_engine.connect() as conn, pytest.raises(sa.exc.OperationalError):
        conn.execute(counting_to(100_000_000)).scalar_one()


def test_other_database_errors_are_not_taken_for_timeouts(bounded_engine):
    with bounded_engine.connect() as conn, pytest.raises(sa.exc.DBAPIError) as raised:
        conn.execute(sa.text("SELECT * FROM no_such_table"))
    assert not is_statement_timeout(raised.value)


def test_a_cancelled_request_is_a_503_that_says_why(database_url, bounded_engine):
    app = create_app(
        Settings(database_url=database_url, db_statement_timeout_seconds=TIMEOUT),
        engine=bounded_engine,
    )
    with bounded_engine.connect() as conn, pytest.raises(sa.exc.OperationalError) as raised:
        conn.execute(counting_to(100_000_000)).scalar_one()
    request = Request({"type": "http", "app": app, "method": "GET", "headers": []})
    handler = app.exception_handlers[sa.exc.OperationalError]
    response = anyio.run(handler, request, raised.value)
    body = orjson.loads(response.body)
    assert response.status_code == 503
    assert body["code"] == 503
    assert "statement timeout of 0.2 seconds" in body["message"]
