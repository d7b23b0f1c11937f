"""Everything that differs between SQLite and PostgreSQL, in one place.

Queries elsewhere are written once over SQLAlchemy Core and call into this module for the few
expressions and statements that the two dialects spell differently.
"""

from __future__ import annotations

import fcntl
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import UnaryExpression
from sqlalchemy.sql.operators import custom_op

from gpufleet.store.types import UtcDateTime


def epoch_ms(dialect_name: str, column: sa.ColumnElement[Any]) -> sa.ColumnElement[int]:
    """Milliseconds since the Unix epoch of a UtcDateTime column, as an integer."""
    if dialect_name == "sqlite":
        # SQLite stores integer microseconds; the division of integers drops the fraction.
        return sa.type_coerce(column, sa.BigInteger) // 1000
    return sa.cast(sa.func.round(sa.extract("epoch", column) * 1000), sa.BigInteger)


class epoch_second(sa.sql.functions.GenericFunction[int]):
    """Whole seconds since the Unix epoch of a UtcDateTime column (its fraction dropped).

    Immutable on both databases, so generated columns and indexes may use it: SQLite divides
    its integer microseconds, PostgreSQL reads a ``timestamptz`` at UTC.
    """

    type = sa.BigInteger()
    inherit_cache = True


@compiles(epoch_second, "sqlite")
def _epoch_second_sqlite(element: epoch_second, compiler: Any, **kw: Any) -> str:
    return f"({compiler.process(element.clauses, **kw)} / 1000000)"


@compiles(epoch_second, "postgresql")
def _epoch_second_postgresql(element: epoch_second, compiler: Any, **kw: Any) -> str:
    column = compiler.process(element.clauses, **kw)
    return f"CAST(floor(EXTRACT(epoch FROM ({column} AT TIME ZONE 'UTC'))) AS BIGINT)"


def indexed_by(dialect_name: str, statement: sa.Select, table: sa.Table, index: str) -> sa.Select:
    """A SELECT told which index of ``table`` to walk, where the dialect takes such a hint.

    SQLite's planner weighs a partial index whose order is the sort's against an equality
    lookup on the column it is partial on, and may take the lookup and sort every match;
    ``INDEXED BY`` settles it. PostgreSQL takes no hints and weighs the LIMIT itself.
    """
    if dialect_name != "sqlite":
        return statement
    return statement.with_hint(table, f"INDEXED BY {index}", dialect_name="sqlite")


class _IndexHintingCompiler(sqlite.base.SQLiteCompiler):
    """SQLAlchemy's SQLite compiler drops table hints; this one writes them after the table."""

    def get_from_hint_text(self, table: Any, text: str | None) -> str | None:
        return text


def without_index(dialect_name: str, column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """A column the planner may test row by row but not look up through an index.

    SQLite picks the index of an equality filter over the one that already yields the sort's
    order, then sorts every match; unary ``+`` (its documented way of disqualifying an index)
    makes it walk the sort's index and stop after the page. PostgreSQL weighs both plans by
    its statistics and the LIMIT, and gets the column as it is.
    """
    if dialect_name != "sqlite":
        return column
    return UnaryExpression(column, operator=custom_op("+"), type_=column.type)


def _insert(dialect_name: str, table: sa.Table) -> Any:
    """The dialect's own INSERT construct: the one that has ON CONFLICT and ``excluded``."""
    module = sqlite if dialect_name == "sqlite" else postgresql
    return module.insert(table)


def insert_ignoring_conflicts(
    dialect_name: str, table: sa.Table, index_elements: Sequence[str]
) -> sa.Insert:
    """INSERT … ON CONFLICT DO NOTHING."""
    return _insert(dialect_name, table).on_conflict_do_nothing(index_elements=list(index_elements))


def upsert(
    dialect_name: str,
    table: sa.Table,
    index_elements: Sequence[str],
    update_columns: Sequence[str],
    where: sa.ColumnElement[bool] | None = None,
) -> sa.Insert:
    """INSERT … ON CONFLICT (…) DO UPDATE SET col = excluded.col [WHERE …]."""
    return upsert_with(
        dialect_name,
        table,
        index_elements,
        lambda new: {name: new[name] for name in update_columns},
        lambda _new: where,
    )


def upsert_with(
    dialect_name: str,
    table: sa.Table,
    index_elements: Sequence[str],
    assignments: Callable[[Any], Mapping[str, Any]],
    where: Callable[[Any], sa.ColumnElement[bool] | None],
) -> sa.Insert:
    """An upsert whose SET and WHERE are built from its ``excluded`` row by the caller."""
    statement = _insert(dialect_name, table)
    return statement.on_conflict_do_update(
        index_elements=list(index_elements),
        set_=dict(assignments(statement.excluded)),
        where=where(statement.excluded),
    )


def write_many(
    conn: Connection, statement: sa.Insert, rows: Sequence[Mapping[str, Any]]
) -> sa.CursorResult[Any]:
    """Run an INSERT (an upsert, with or without RETURNING) for many rows at once.

    On PostgreSQL the rows travel as one JSON parameter and the statement inserts from its
    ``json_to_recordset``: one round trip, and a statement of the same small size whatever the
    batch (a multi-row VALUES list of thousands of parameters costs the server more to parse
    and plan than to write). SQLite takes the rows as an executemany. Every row has the keys
    of the first. A statement built once (at import, or cached) is wrapped once per set of
    columns: building and keying the wrapper anew cost more than the write of a small batch.
    """
    if conn.dialect.name != "postgresql":
        return conn.execute(statement, list(rows))
    columns = tuple(rows[0])
    return conn.execute(
        _from_batch(statement, columns),
        batch_parameters(conn.dialect, statement.table, columns, rows),
    )


@lru_cache(maxsize=256)
def _from_batch(statement: sa.Insert, columns: tuple[str, ...]) -> sa.Insert:
    """``statement`` inserting from the batch ``batch_table`` reads (PostgreSQL)."""
    source = batch_table(statement.table, columns)
    return statement.from_select(columns, sa.select(*(source.c[name] for name in columns)))


def batch_table(table: Any, columns: Sequence[str], name: str = "batch") -> sa.TableValuedAlias:
    """PostgreSQL: rows (values of ``table``'s ``columns``) as a table named ``name``, read by
    ``json_to_recordset`` from one JSON text parameter, ``<name>_rows``, given when the
    statement runs (``batch_parameters``). A statement built over it once serves every batch.

    The JSON is encoded by orjson in one call, and PostgreSQL parses each value as its column's
    type. One array parameter per column, ``unnest``-ed, costs more: psycopg dumps every
    element of every array in Python (a batch of 500 workloads is 20,000 values), checking
    each string for characters to quote.
    """
    return _batch_table(table, tuple(columns), name, None)


def batch_rows(
    dialect: sa.Dialect,
    table: Any,
    columns: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
    name: str = "batch",
) -> sa.TableValuedAlias:
    """``batch_table`` with these rows bound into it: for a statement built per call."""
    return _batch_table(table, tuple(columns), name, batch_json(dialect, table, columns, rows))


def _batch_table(
    table: Any, columns: tuple[str, ...], name: str, text: str | None
) -> sa.TableValuedAlias:
    value = {} if text is None else {"value": text}
    parameter = sa.bindparam(f"{name}_rows", type_=sa.Text, **value)
    source = sa.func.json_to_recordset(sa.cast(parameter, postgresql.JSON))
    typed = [sa.column(column, table.c[column].type) for column in columns]
    return source.table_valued(*typed).render_derived(name=name, with_types=True)


def batch_parameters(
    dialect: sa.Dialect,
    table: Any,
    columns: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
    name: str = "batch",
) -> dict[str, str]:
    """The parameter of a ``batch_table`` named ``name``, holding these rows."""
    return {f"{name}_rows": batch_json(dialect, table, columns, rows)}


def batch_json(
    dialect: sa.Dialect, table: Any, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]
) -> str:
    """The rows as the JSON text a batch table reads: objects keyed by column, each column's
    own bind conversion applied first, so values arrive as they would as plain parameters
    (a JSON column's value is nested as it is; bytes travel in ``bytea``'s hex form)."""
    plain, converted = _json_converters(dialect, table, tuple(columns))
    if converted:
        objects = []
        for row in rows:
            values = {name: row[name] for name in plain}
            for name, convert in converted:
                values[name] = convert(row[name])
            objects.append(values)
    else:
        objects = [{name: row[name] for name in plain} for row in rows]
    return orjson.dumps(objects, default=_json_default).decode()


@lru_cache(maxsize=256)
def _json_converters(
    dialect: sa.Dialect, table: Any, columns: tuple[str, ...]
) -> tuple[tuple[str, ...], tuple[tuple[str, Callable[[Any], Any]], ...]]:
    """The columns taken as they are, and those converted first with their conversion."""
    convert = [(name, _json_ready_converter(dialect, table.c[name].type)) for name in columns]
    plain = tuple(name for name, f in convert if f is None)
    return plain, tuple((name, f) for name, f in convert if f is not None)


def _json_ready_converter(dialect: sa.Dialect, column_type: Any) -> Callable[[Any], Any] | None:
    """The bind conversion of a column's values before they are put in a JSON batch: none for
    a JSON column (its value is nested as it is) or a binary one (bytes are encoded as JSON
    text by ``_json_default``, not wrapped for the driver); for a UTC time, the refusal of a
    naive one (orjson writes an aware time with its offset, the instant PostgreSQL reads);
    else the type's own."""
    if isinstance(column_type, UtcDateTime):
        return _aware
    impl = column_type.dialect_impl(dialect)
    if isinstance(impl, sa.JSON | sa.LargeBinary):
        return None
    if isinstance(getattr(impl, "impl", None), sa.JSON | sa.LargeBinary):
        return None
    return impl.bind_processor(dialect)


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("naive datetime given to a UtcDateTime column")
    return value


def _json_default(value: Any) -> Any:
    """Values orjson does not encode itself: bytes as ``bytea``'s hex text."""
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    raise TypeError(f"{type(value).__name__} is not a value of a batch row")


def one_of(
    dialect_name: str, column: sa.ColumnElement[Any], values: Sequence[Any]
) -> sa.ColumnElement[bool]:
    """``column IN values``; on PostgreSQL ``column = ANY(:array)``, one parameter.

    An expanded IN list of hundreds of ids is a statement of hundreds of parameters that
    PostgreSQL parses and plans anew each time; one array keeps the statement the same
    whatever the count. SQLite takes the IN list as it is.
    """
    if dialect_name != "postgresql":
        return column.in_(values)
    return column == sa.any_(sa.bindparam(None, list(values), type_=postgresql.ARRAY(column.type)))


def one_of_parameter(
    dialect_name: str, column: sa.ColumnElement[Any], name: str
) -> sa.ColumnElement[bool]:
    """``one_of`` with the values given when the statement runs, as the parameter ``name``.

    A value built into a statement is held by a reference cycle of SQLAlchemy's, so a loop
    that builds one per page of ids leaves every page's list to the cyclic collector; a
    parameter leaves nothing behind.
    """
    if dialect_name != "postgresql":
        return column.in_(sa.bindparam(name, expanding=True))
    return column == sa.any_(sa.bindparam(name, type_=postgresql.ARRAY(column.type)))


def update_many(
    conn: Connection, table: sa.Table, keys: Sequence[str], rows: Sequence[Mapping[str, Any]]
) -> None:
    """Set the other columns of each row to its values, the row found by ``keys``.

    On PostgreSQL one UPDATE … FROM the batch as JSON rows (one round trip, one statement to
    plan); SQLite runs the row-by-row UPDATE as an executemany.
    """
    columns = list(rows[0])
    assigned = [name for name in columns if name not in keys]
    if conn.dialect.name != "postgresql":
        statement = (
            table.update()
            .where(*(table.c[key] == sa.bindparam(f"key_{key}") for key in keys))
            .values({name: sa.bindparam(f"new_{name}") for name in assigned})
        )
        conn.execute(
            statement,
            [
                {**{f"key_{k}": row[k] for k in keys}, **{f"new_{n}": row[n] for n in assigned}}
                for row in rows
            ],
        )
        return
    source = batch_rows(conn.dialect, table, columns, rows)
    conn.execute(
        table.update()
        .where(*(table.c[key] == source.c[key] for key in keys))
        .values({name: source.c[name] for name in assigned})
    )


def excluded(dialect_name: str, table: sa.Table) -> Any:
    """The ``excluded`` pseudo-table of an upsert, for use in its WHERE clause."""
    return _insert(dialect_name, table).excluded


def lock_rows(conn: Connection, table: sa.Table, condition: sa.ColumnElement[bool]) -> None:
    """Hold the rows of ``table`` that meet ``condition`` until the transaction ends, so
    transactions that read them before a change take turns.

    PostgreSQL locks the rows, in primary-key order so that lockers queue rather than deadlock;
    a later statement of the transaction sees what the one before it committed. SQLite has no
    row locks and reads outside any transaction until the first write, so it takes the
    database's write lock with an update that changes nothing (even when no row matches).
    """
    key = list(table.primary_key.columns)
    if conn.dialect.name == "sqlite":
        conn.execute(table.update().where(condition).values({key[0].name: key[0]}))
        return
    conn.execute(sa.select(*key).where(condition).order_by(*key).with_for_update())


@contextmanager
def exclusive(engine: Engine, lock_id: int) -> Iterator[None]:
    """Hold a lock across several transactions, shared by every process on the database.

    Replicas starting together take turns: PostgreSQL through an advisory lock, a SQLite
    file through an exclusive ``flock`` on ``<file>.lock`` beside it (SQLite's own locks last
    one transaction, and preparation spans several).
    """
    if engine.dialect.name == "sqlite":
        with _sqlite_file_lock(engine.url.database, lock_id):
            yield
        return
    with engine.connect() as conn:
        conn.exec_driver_sql(f"SELECT pg_advisory_lock({int(lock_id)})")
        conn.commit()
        try:
            yield
        finally:
            conn.exec_driver_sql(f"SELECT pg_advisory_unlock({int(lock_id)})")
            conn.commit()


@contextmanager
def _sqlite_file_lock(database: str | None, lock_id: int) -> Iterator[None]:
    if not database or database == ":memory:" or database.startswith("file:"):
        # An in-memory database belongs to one process; a URI names no plain file to lock.
        yield
        return
    path = Path(database).resolve()
    lock_path = path.with_name(f"{path.name}.{lock_id}.lock")
    with open(lock_path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def bulk_append(
    conn: Connection, table: sa.Table, columns: Sequence[str], rows: Iterable[tuple]
) -> int:
    """Append many new rows straight through the driver: COPY on PostgreSQL, a prepared
    executemany on SQLite. Returns how many rows were written."""
    names = ", ".join(columns)
    cursor = conn.connection.driver_connection.cursor()
    written = 0
    try:
        if conn.dialect.name == "postgresql":
            with cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
                    written += 1
            return written
        sql = f"INSERT INTO {table.name} ({names}) VALUES ({', '.join('?' * len(columns))})"
        batch: list[tuple] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= 20_000:
                # The driver cursor bypasses the statement events: each batch gets the timeout.
                restart_statement_clock(conn)
                cursor.executemany(sql, batch)
                written += len(batch)
                batch.clear()
        if batch:
            restart_statement_clock(conn)
            cursor.executemany(sql, batch)
            written += len(batch)
        return written
    finally:
        cursor.close()


SQLITE_PAGE_SIZE = 8192
# How long a background task leaves SQLite's write lock free between its transactions.
SQLITE_WRITER_GAP_SECONDS = 0.025


def pause_for_waiting_writers(dialect_name: str) -> None:
    """Between the write transactions of a long background task (the usage ledger's accrual,
    page after page): SQLite lets one writer in at a time, and a writer kept waiting polls for
    the lock (every 100 ms once it has waited a while), so a task that commits and begins again
    at once can keep an agent's ingest out past its busy timeout, a 503. A short pause with the
    lock free lets the waiting writer in. PostgreSQL locks rows, not the database: no pause."""
    if dialect_name == "sqlite":
        time.sleep(SQLITE_WRITER_GAP_SECONDS)


def configure_sqlite(engine: Engine, synchronous: str = "FULL") -> None:
    """Pragmas every SQLite connection needs: WAL, enforced foreign keys, a busy wait.

    ``synchronous`` is FULL by default: in WAL mode NORMAL may lose the last committed
    transactions on power loss, and an answered ingest must survive one.
    """
    if synchronous not in {"EXTRA", "FULL", "NORMAL"}:
        raise ValueError(f"unknown SQLite synchronous mode {synchronous!r}")
    # ``indexed_by`` hints reach the SQL.
    engine.dialect.statement_compiler = _IndexHintingCompiler

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # pragma: no cover - driver hook
        cursor = dbapi_connection.cursor()
        # Pages of 8 KiB hold a workload's row (near 1 KB) with less left over than 4 KiB
        # ones. Only a new, empty database takes it; an existing one keeps its page size.
        cursor.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        # LIKE is case-sensitive on PostgreSQL; make SQLite agree so filters mean one thing.
        cursor.execute("PRAGMA case_sensitive_like=ON")
        cursor.close()


# Keys in a pooled connection's ``info``: its statement timeout, and the current deadline.
_TIMEOUT = "gpufleet.statement_timeout"
_DEADLINE = "gpufleet.statement_deadline"
_UNBOUNDED = "gpufleet.unbounded"
# SQLite calls the progress handler every this many virtual machine instructions: about a
# millisecond's work here (some 80 million a second), so a timeout of seconds is kept to the
# millisecond while the handler costs nothing measurable. Every 1,000 instructions it cost 1 to
# 2 % of a heavy statement (7,000 calls in a 90 ms metrics read).
_PROGRESS_STEPS = 100_000
_PG_QUERY_CANCELED = "57014"


def statement_timeout_options(seconds: float) -> dict[str, str]:
    """PostgreSQL connect arguments that cancel any statement running longer than ``seconds``."""
    if not seconds:
        return {}
    return {"options": f"-c statement_timeout={max(int(seconds * 1000), 1)}"}


def bound_sqlite_statements(engine: Engine, seconds: float) -> None:
    """SQLite has no statement timeout: a progress handler interrupts a statement (its
    execution and the fetching of its rows) once it has run longer than ``seconds``."""
    if not seconds:
        return

    @sa.event.listens_for(engine, "connect")
    def _install(dbapi_connection, record) -> None:  # pragma: no cover - driver hook
        info = record.info
        info[_TIMEOUT] = seconds

        def over_time() -> int:
            deadline = info.get(_DEADLINE)
            return 1 if deadline is not None and time.monotonic() > deadline else 0

        dbapi_connection.set_progress_handler(over_time, _PROGRESS_STEPS)

    @sa.event.listens_for(engine, "before_cursor_execute")
    def _start(conn, _cursor, _statement, _parameters, _context, _executemany) -> None:
        restart_statement_clock(conn)

    @sa.event.listens_for(engine, "checkin")
    def _reset(_dbapi_connection, record) -> None:
        record.info.pop(_UNBOUNDED, None)
        record.info[_DEADLINE] = None


def restart_statement_clock(conn: Connection) -> None:
    """Start the SQLite statement timeout for what the connection runs next."""
    info = conn.info
    timeout = info.get(_TIMEOUT)
    if timeout is not None and not info.get(_UNBOUNDED):
        info[_DEADLINE] = time.monotonic() + timeout


def without_statement_timeout(conn: Connection) -> None:
    """Lift the statement timeout for this connection's current transaction (PostgreSQL) or
    checkout (SQLite): migrations and maintenance may legitimately take longer than a request."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL statement_timeout = 0")
        return
    conn.info[_UNBOUNDED] = True
    conn.info[_DEADLINE] = None


def analyze_after_bulk_load(engine: Engine) -> None:
    """Gather the planner's statistics after a bulk load. PostgreSQL plans over tables it has
    not analyzed as if they held a row or two until autovacuum gets to them, a minute or more
    later: on a freshly seeded demo, node telemetry of use then ran a subquery once per node
    and took minutes. SQLite plans well without statistics, and ANALYZE reads all of a file."""
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as conn:
        without_statement_timeout(conn)
        conn.exec_driver_sql("ANALYZE")


def is_statement_timeout(error: sa.exc.DBAPIError) -> bool:
    """Whether a database error is a statement cancelled by the statement timeout."""
    original = error.orig
    if getattr(original, "sqlstate", None) == _PG_QUERY_CANCELED:
        return True
    return isinstance(original, sqlite3.OperationalError) and str(original) == "interrupted"
