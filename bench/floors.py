"""Honest floors: the server's own statement beside the best plan an expert would write by hand.

A benchmark captures the statement the server sends for a request (a SQLAlchemy event on an
in-process app's engine), then times it through the bare driver next to hand-written candidates
for the same rows: index hints where SQLite needs them (``INDEXED BY``, ``+column`` to keep an
index out of a plan), plain SQL on PostgreSQL, whose planner takes no hints. The fastest
candidate that returns the same ids in the same order is the floor. ``EXPLAIN`` of the server's
statement and of the floor is printed beside the timings.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
import sqlalchemy as sa

from gpufleet.store.tables import workloads
from gpufleet.store.types import sqlite_time

# The columns a listing returns as they are (the packed document among them; search_text,
# the id's key and the anchor are internal).
LISTED_COLUMNS = ", ".join(
    c.name for c in workloads.c if c.name not in ("search_text", "id_key", "seconds_anchor")
)


class Capture:
    """The SQL statements (with parameters) an engine sends to its driver."""

    def __init__(self, engine: sa.Engine) -> None:
        self.statements: list[tuple[str, Any]] = []
        sa.event.listen(engine, "before_cursor_execute", self._record)

    def _record(self, _conn, _cursor, statement, parameters, _context, _many) -> None:
        self.statements.append((statement, parameters))

    def take(self) -> list[tuple[str, Any]]:
        taken, self.statements = self.statements, []
        return taken


@contextmanager
def raw_connection(database_url: str) -> Iterator[Any]:
    """A bare driver connection, set up like the server's (SQLite pragmas)."""
    url = sa.make_url(database_url)
    if url.get_backend_name() == "sqlite":
        conn: Any = sqlite3.connect(url.database, check_same_thread=False)
        for pragma in ("journal_mode=WAL", "foreign_keys=ON", "case_sensitive_like=ON"):
            conn.execute(f"PRAGMA {pragma}")
    else:
        conn = psycopg.connect(url.set(drivername="postgresql").render_as_string(False))
    try:
        yield conn
    finally:
        conn.close()


def is_sqlite(conn: Any) -> bool:
    return isinstance(conn, sqlite3.Connection)


def _named_for(conn: Any, sql: str) -> str:
    """``:name`` parameters (SQLite's style) as psycopg's ``%(name)s``; ``::`` casts stay."""
    if is_sqlite(conn):
        return sql
    return re.sub(r"(?<![:\w]):([A-Za-z_]\w*)", r"%(\1)s", sql.replace("%", "%%"))


def execute(conn: Any, sql: str, parameters: Any, setup: str = "") -> list[tuple]:
    """Rows of one statement in its own transaction, after ``setup`` (planner settings)."""
    cursor = conn.cursor()
    try:
        if setup:
            cursor.execute(setup)
        cursor.execute(sql, parameters)
        return cursor.fetchall()
    finally:
        cursor.close()
        conn.rollback()


def timed(
    conn: Any, statements: Sequence[tuple[str, Any]], repeats: int, setup: str = ""
) -> list[float]:
    """Milliseconds per run of ``statements`` (every row fetched), after one warm-up run."""
    timings = []
    for _ in range(repeats + 1):
        started = time.perf_counter()
        for sql, parameters in statements:
            execute(conn, sql, parameters, setup)
        timings.append((time.perf_counter() - started) * 1000)
    return timings[1:]


def explain(conn: Any, sql: str, parameters: Any, setup: str = "") -> list[str]:
    """The plan the database picks for a statement, one line per step."""
    if is_sqlite(conn):
        rows = execute(conn, f"EXPLAIN QUERY PLAN {sql}", parameters)
        depth = {0: 0}
        lines = []
        for node, parent, _unused, detail in rows:
            depth[node] = depth.get(parent, 0) + 1
            lines.append("  " * (depth[node] - 1) + detail)
        return lines
    return [row[0] for row in execute(conn, f"EXPLAIN (COSTS OFF) {sql}", parameters, setup)]


@dataclass(frozen=True, slots=True)
class Candidate:
    """A hand-written statement; ``sql`` takes ``:name`` parameters. ``setup`` runs first in
    the same transaction: PostgreSQL's planner takes no hints, but ``SET LOCAL enable_sort =
    off`` (walk the sort's index) or ``enable_indexscan = off`` (gather by the filter's index,
    then sort) are how one forces either plan by hand."""

    label: str
    sql: str
    setup: str = ""


def epoch_second(conn: Any) -> str:
    """The whole epoch second ``phase_updated_at`` falls in."""
    if is_sqlite(conn):
        return "(phase_updated_at / 1000000)"
    return "floor(extract(epoch FROM phase_updated_at))::bigint"


def stored_time(conn: Any, moment: datetime) -> Any:
    """A time as a parameter of a hand-written statement: SQLite keeps integer microseconds
    since the epoch, PostgreSQL takes the aware datetime."""
    return sqlite_time(moment) if is_sqlite(conn) else moment


def projection(conn: Any) -> str:
    """What a listing returns, written by hand: columns, the document, both time totals (the
    current stretch in whole seconds of the clock, from the phase's second to now's)."""
    since = f"(:now_ms / 1000 - {epoch_second(conn)})"
    if is_sqlite(conn):
        total = "{before} + CASE WHEN phase = '{phase}' THEN max(0, " + since + ") ELSE 0 END"
    else:
        total = "{before} + CASE WHEN phase = '{phase}' THEN greatest(0, " + since + ") ELSE 0 END"
    return (
        f"{LISTED_COLUMNS}, "
        f"{total.format(before='pending_seconds_before', phase='Pending')} AS total_pending, "
        f"{total.format(before='running_seconds_before', phase='Running')} AS total_running"
    )


@dataclass
class Comparison:
    """One request: the API's timings, the server's statement and the floor, with their plans."""

    case: str
    api: list[float]
    server: list[float]
    floor: list[float]
    server_statement: str
    server_plan: list[str]
    floor_label: str
    floor_statement: str
    floor_plan: list[str]
    note: str = ""


def _ids(rows: list[tuple], id_position: int | None) -> list[Any]:
    return rows if id_position is None else [row[id_position] for row in rows]


def best_floor(
    conn: Any,
    server: Sequence[tuple[str, Any]],
    candidates: Sequence[Candidate],
    parameters: dict[str, Any],
    repeats: int,
    id_position: int | None = None,
) -> tuple[list[float], list[float], Candidate | None, str]:
    """Time the server's statements and every candidate; the fastest same-answer candidate wins.

    ``id_position`` picks the column compared between answers (the id of a listing); None
    compares whole rows. A candidate with a different answer is reported, never used.
    """
    server_times = timed(conn, server, repeats)
    expected = _ids(execute(conn, *server[-1]), id_position)
    best: tuple[list[float], Candidate] | None = None
    notes = []
    for candidate in candidates:
        sql = _named_for(conn, candidate.sql)
        answer = execute(conn, sql, parameters, candidate.setup)
        if _ids(answer, id_position) != expected:
            notes.append(f"candidate {candidate.label!r} answers differently; not used")
            continue
        times = timed(conn, [(sql, parameters)], repeats, candidate.setup)
        if best is None or median(times) < median(best[0]):
            best = (times, candidate)
    if best is None:
        return server_times, server_times, None, "; ".join(notes)
    return server_times, best[0], best[1], "; ".join(notes)


def compare(
    conn: Any,
    case: str,
    api: list[float],
    server: Sequence[tuple[str, Any]],
    candidates: Sequence[Candidate],
    parameters: dict[str, Any],
    repeats: int,
    id_position: int | None = None,
) -> Comparison:
    """Everything a floor row prints, for one request."""
    server_times, floor_times, winner, note = best_floor(
        conn, server, candidates, parameters, repeats, id_position
    )
    sql, server_parameters = server[-1]
    floor_sql = _named_for(conn, winner.sql) if winner else sql
    return Comparison(
        case=case,
        api=api,
        server=server_times,
        floor=floor_times,
        server_statement=short_statement(sql),
        server_plan=explain(conn, sql, server_parameters),
        floor_label=winner.label if winner else "the server's statement (no candidate)",
        floor_statement=short_statement(floor_sql),
        floor_plan=(
            explain(conn, floor_sql, parameters, winner.setup)
            if winner
            else explain(conn, sql, server_parameters)
        ),
        note=note,
    )


def short_statement(sql: str) -> str:
    """A statement with its column list elided: what it reads and how is the rest."""
    flat = " ".join(sql.split())
    return re.sub(r"^SELECT .*? FROM workloads\b", "SELECT … FROM workloads", flat, count=1)


def interleaved(actions: list[Callable[[], object]], repeats: int) -> list[list[float]]:
    """Milliseconds of each action per round, the actions taking turns (their order rotating
    each round), so a change of the machine's load weighs on all of them alike."""
    for action in actions:
        action()  # warm connections, caches and plans
    timings: list[list[float]] = [[] for _ in actions]
    for round_ in range(repeats):
        for k in range(len(actions)):
            index = (round_ + k) % len(actions)
            began = time.perf_counter()
            actions[index]()
            timings[index].append((time.perf_counter() - began) * 1000)
    return timings


def median(values: Sequence[float]) -> float:
    return percentile(values, 0.5)


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def print_comparisons(title: str, comparisons: Sequence[Comparison], verbose: bool = True) -> None:
    """The three timings and their ratios per request, then each statement and plan."""
    print(f"\n{title}")
    header = (
        f"{'case':<44} {'API p50':>8} {'p95':>7} {'server':>8} {'p95':>7} {'floor':>8} "
        f"{'p95':>7} {'API/floor':>9} {'server/floor':>12}"
    )
    print(header)
    print("-" * len(header))
    for c in comparisons:
        api50, server50, floor50 = median(c.api), median(c.server), median(c.floor)
        print(
            f"{c.case:<44} {api50:>8.1f} {percentile(c.api, 0.95):>7.1f} {server50:>8.1f} "
            f"{percentile(c.server, 0.95):>7.1f} {floor50:>8.1f} {percentile(c.floor, 0.95):>7.1f} "
            f"{api50 / floor50:>8.2f}x {server50 / floor50:>11.2f}x"
        )
    if verbose:
        print_details(comparisons)


def print_details(comparisons: Sequence[Comparison]) -> None:
    """Each request's statement and plan, and the floor's."""
    for c in comparisons:
        print(f"\n## {c.case}")
        print(f"server statement: {c.server_statement}")
        print("server plan:\n    " + "\n    ".join(c.server_plan))
        print(f"floor ({c.floor_label}): {c.floor_statement}")
        print("floor plan:\n    " + "\n    ".join(c.floor_plan))
        if c.note:
            print(f"note: {c.note}")


def row_key(conn: Any) -> str:
    """What an expert joins a page's keys back to their rows by: SQLite's rowid (held by every
    index entry, the table's own key), PostgreSQL's id key (through its unique index)."""
    return "rowid" if is_sqlite(conn) else "id_key"


def list_candidates(
    conn: Any, where: str, order: str, walks: Sequence[str], *, keys_first: bool = True
) -> list[Candidate]:
    """A listing written by hand, once per plan an expert would try.

    On SQLite each index of ``walks`` is forced with ``INDEXED BY``; on PostgreSQL the plain
    statement is tried as the planner takes it, with the sort forbidden (walk the sort's index)
    and with index scans forbidden (bitmap by the filter, then sort). With ``keys_first`` (an
    order of stored columns) each is also tried as a deferred join: the page's keys found
    first, then only the page's rows read.
    """
    head = f"SELECT {projection(conn)} FROM workloads"
    tail = f"WHERE {where} ORDER BY {order} LIMIT :limit OFFSET :offset"

    key = row_key(conn)

    def deferred(hint: str = "") -> str:
        # The page's keys first (skipping the offset along narrow key rows), then its rows.
        keys = f"SELECT {key} AS row_key FROM workloads{hint} {tail}"
        return (
            f"{head} JOIN ({keys}) AS page_keys ON workloads.{key} = page_keys.row_key "
            f"ORDER BY {order}"
        )

    if is_sqlite(conn):
        hints = {
            "": "as the planner takes it",
            **{f" INDEXED BY {i}": f"INDEXED BY {i}" for i in walks},
        }
        candidates = [Candidate(label, f"{head}{hint} {tail}") for hint, label in hints.items()]
        if keys_first:
            candidates += [Candidate(f"keys first{hint}", deferred(hint)) for hint in hints]
        return candidates
    sql = f"{head} {tail}"
    candidates = [
        Candidate("as the planner takes it", sql),
        Candidate("enable_sort=off", sql, "SET LOCAL enable_sort = off"),
        Candidate("enable_indexscan=off", sql, "SET LOCAL enable_indexscan = off"),
    ]
    if keys_first:
        # The page's keys as one array, each row looked up by its key.
        keys = f"SELECT {key} FROM workloads {tail}"
        as_array = f"{head} WHERE {key} = ANY(ARRAY({keys})) ORDER BY {order}"
        candidates += [
            Candidate("keys first, then rows", deferred()),
            Candidate("keys first, enable_sort=off", deferred(), "SET LOCAL enable_sort = off"),
            Candidate("keys first as an array, then rows", as_array),
        ]
    return candidates


def timed_candidates(conn: Any, phase: str, before: str, descending: bool) -> list[Candidate]:
    """A page of live workloads by a total of time in ``phase``, written by hand.

    Plainly (the total computed for every row, then sorted), and as an expert would merge the
    walks: the workloads in the phase along their anchor's partial index (the total is the
    anchor plus now's second), the others along their stored seconds' partial index, and the
    few whose phase began after now's second by ``phase_updated_at``; each walk stops after
    ``:depth`` rows. ``:began`` is the first moment after now's second.
    """
    direction = "DESC" if descending else "ASC"
    total = "total_running" if phase == "Running" else "total_pending"
    plain = list_candidates(
        conn, "deleted_at IS NULL", f"{total} {direction}, id_key {direction}", (), keys_first=False
    )
    sqlite = is_sqlite(conn)

    joined_by = row_key(conn)

    def walk(index: str, where: str, key: str, value: str) -> str:
        hint = f" INDEXED BY {index}" if sqlite and index else ""
        return (
            f"SELECT * FROM (SELECT id_key, {value} AS v, {joined_by} AS row_key "
            f"FROM workloads{hint} WHERE {where} "
            f"ORDER BY {key} {direction}, id_key {direction} LIMIT :depth) AS walk"
        )

    plus = "+" if sqlite else ""
    live = f"{plus}deleted_at IS NULL"
    walks = " UNION ALL ".join(
        [
            walk(
                f"ix_workloads_anchor_{phase.lower()}",
                f"phase = '{phase}' AND {plus}phase_updated_at < :began AND {live}",
                "seconds_anchor",
                "seconds_anchor + :now_ms / 1000",
            ),
            walk(
                f"ix_workloads_{before}_id_key_deleted_at",
                f"phase != '{phase}' AND {live}",
                before,
                before,
            ),
            walk(
                "",
                f"{plus}phase = '{phase}' AND phase_updated_at >= :began AND deleted_at IS NULL",
                before,
                before,
            ),
        ]
    )
    merged = (
        f"SELECT {projection(conn)} FROM workloads JOIN (SELECT id_key, v, row_key "
        f"FROM ({walks}) AS m ORDER BY v {direction}, id_key {direction} "
        f"LIMIT :limit OFFSET :offset) AS p ON workloads.{joined_by} = p.row_key "
        f"ORDER BY p.v {direction}, p.id_key {direction}"
    )
    return [*plain, Candidate("merged walks of the partial indexes", merged)]
