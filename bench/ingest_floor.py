"""The same-result floor of ingest: a batch written by hand to every table the server writes.

``bench.ingest`` times the server beside two floors. The workloads-only floor upserts the
workloads table alone; this one leaves the database exactly as the server's ingest of the same
batch does (clusters, departments, projects, workloads, phase history, pods, node pools and the
usage ledger's points, live set and hourly rollups), with the same ownership and ordering
checks inside its statements, written as a database expert would: one statement per table per
batch in the fastest form of each dialect (on PostgreSQL every batch travels as one array per
column and is ``unnest``-ed in the statement; on SQLite, in-process, a prepared statement runs
over the rows), the rows converted to the driver's values before the clock starts.

It is written for the batches the benchmark sends: each workload observed at most once per
batch, after its latest ledger point, with its project and department unchanged; a rename is
applied to the unit but not carried into its other workloads' rows, and a late observation is
not placed between ledger points. Doing less than the server in general makes the floor only
faster. ``check_same_result`` proves, before anything is timed, that for these batches it
leaves every table exactly as the server does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa

from gpufleet.core.times import to_ms, truncate_to_ms
from gpufleet.schemas.enums import TERMINAL_PHASES
from gpufleet.store.clusters import LIVENESS_RESOLUTION
from gpufleet.store.ingest import SERVER_COLUMNS, ingest_row
from gpufleet.store.pods import REPORTED_COLUMNS, _pod_row
from gpufleet.store.tables import (
    clusters,
    departments,
    projects,
    usage_hourly,
    usage_open,
    usage_states,
    workload_nodepools,
    workload_phase_history,
    workload_pods,
    workloads,
)
from gpufleet.store.usage_ledger import held_state
from gpufleet.store.workload_documents import nodepool_rows

HOUR_MS = 3_600_000
_TERMINAL = ", ".join(f"'{phase.value}'" for phase in sorted(TERMINAL_PHASES))
_OWNER = ("cluster_id", "department_id", "project_id", "submitter", "type")
_STATE = (*_OWNER, "nodepools", "gpu", "cpu_cores", "memory_gib", "pending")
# An observation as the ledger statements take it: the workload, when it was seen, where a
# first-seen workload's timeline starts, what it held, and in how many node pools.
_OBSERVATION = ("workload_id", "at_ms", "start_ms", *_STATE, "accrues")
# Tables the server's ingest writes, with the columns compared (surrogate ids left out).
COMPARED = (
    clusters,
    departments,
    projects,
    workloads,
    workload_phase_history,
    workload_pods,
    workload_nodepools,
    usage_states,
    usage_open,
    usage_hourly,
)


def _converter(table: sa.Table, column: str, dialect: sa.Dialect) -> Callable[[Any], Any]:
    processor = table.c[column].type.dialect_impl(dialect).bind_processor(dialect)
    return processor or (lambda value: value)


def driver_rows(
    dialect: sa.Dialect, table: sa.Table, columns: Sequence[str], rows: Iterable[Mapping]
) -> list[tuple]:
    """Rows as the driver takes them: each column's bind conversion applied once."""
    convert = [_converter(table, c, dialect) for c in columns]
    return [tuple(f(row[c]) for c, f in zip(columns, convert, strict=True)) for row in rows]


def _newest(reports: Iterable[tuple[str, datetime, dict]]) -> list[dict]:
    newest: dict[str, tuple[datetime, dict]] = {}
    for key, observed, row in reports:
        known = newest.get(key)
        if known is None or observed >= known[0]:
            newest[key] = (observed, row)
    return [newest[key][1] for key in sorted(newest)]


class Batch:
    """One batch converted for the driver before the clock starts, keyed by workload id
    where a statement takes only the workloads the batch really wrote."""

    def __init__(
        self,
        dialect: sa.Dialect,
        cluster_id: str,
        items: Sequence[Mapping[str, Any]],
        now: datetime,
        since: datetime | None,
    ) -> None:
        unique = {str(i["id"]): i for i in sorted(items, key=lambda i: i["observedAt"])}
        items = [unique[key] for key in sorted(unique)]
        self.since_ms = None if since is None else to_ms(since)
        self.cluster = driver_rows(
            dialect,
            clusters,
            ("id", "name", "tenant_id", "created_at", "updated_at", "last_report_at"),
            [
                {
                    "id": cluster_id,
                    "name": cluster_id,
                    "tenant_id": int(items[0]["tenantId"]),
                    "created_at": now,
                    "updated_at": now,
                    "last_report_at": now,
                }
            ],
        )[0] + (_converter(clusters, "last_report_at", dialect)(now - LIVENESS_RESOLUTION),)
        unit = ("id", "name", "cluster_id", "updated_at", "created_at")

        def reported(unit_id: Any, name: str, item: Mapping[str, Any], **extra: Any) -> tuple:
            """A department or project as ``_newest`` takes it: id, observed, row."""
            observed = item["observedAt"]
            row = {"id": str(unit_id), "name": name, "cluster_id": cluster_id}
            row |= {"updated_at": observed, "created_at": observed, **extra}
            return str(unit_id), observed, row

        self.departments = driver_rows(
            dialect,
            departments,
            unit,
            _newest(reported(i["departmentId"], i["departmentName"], i) for i in items),
        )
        self.projects = driver_rows(
            dialect,
            projects,
            (*unit, "department_id", "namespace"),
            _newest(
                reported(
                    i["projectId"],
                    i["projectName"],
                    i,
                    department_id=str(i["departmentId"]),
                    namespace=i["namespace"],
                )
                for i in items
            ),
        )
        self.units = [(str(i["departmentId"]), str(i["projectId"])) for i in items]
        rows = [ingest_row(item) for item in items]
        self.workload_columns = list(rows[0])
        self.workloads = driver_rows(dialect, workloads, self.workload_columns, rows)
        self.ids = [row["id"] for row in rows]
        observed = {str(i["id"]): truncate_to_ms(i["observedAt"]) for i in items}
        pod_columns = (
            "id",
            "workload_id",
            "cluster_id",
            "name",
            "node_name",
            "nodepool",
            "k8s_phase",
            "revision_id",
            "created_at",
            "completed_at",
            "deleted_at",
            "updated_at",
            "k8s_phase_updated_at",
            "allocated_gpu",
            "allocated_cpu_cores",
            "allocated_memory_bytes",
            "document",
        )
        self.pod_columns = pod_columns
        self.pods: dict[str, list[tuple]] = {}
        for item in items:
            key = str(item["id"])
            pod_rows = [
                _pod_row(pod, key, cluster_id, observed[key]) for pod in item.get("pods") or ()
            ]
            converted = driver_rows(dialect, workload_pods, pod_columns[:-1], pod_rows)
            # The document as JSON text (SQLite's JSON column; cast to jsonb on PostgreSQL).
            self.pods[key] = [
                (*values, orjson.dumps(row["document"]).decode())
                for values, row in zip(converted, pod_rows, strict=True)
            ]
        at_converter = _converter(workload_pods, "updated_at", dialect)
        self.observed = {key: at_converter(value) for key, value in observed.items()}
        self.nodepools = {str(i["id"]): [r["nodepool"] for r in nodepool_rows(i)] for i in items}
        self.observations: dict[str, tuple] = {}
        for item in items:
            state = held_state(item)
            at = to_ms(observed[str(item["id"])])
            since = item.get("phaseUpdatedAt")
            start = at
            if state.accrues and isinstance(since, datetime):
                start = min(at, to_ms(since))
            self.observations[str(item["id"])] = (
                str(item["id"]),
                at,
                start,
                *(getattr(state, name) for name in _STATE),
                state.accrues,
            )
        if dialect.name == "postgresql":
            self._json_rows()

    def _json_rows(self) -> None:
        """PostgreSQL: the large batches also as rows of JSON objects keyed by column, bytes as
        ``bytea``'s hex text and a pod's document as its JSON, ready for ``orjson.dumps``."""

        def ready(value: Any) -> Any:
            raw = getattr(value, "obj", value)  # psycopg's Binary wraps the bytes
            if isinstance(raw, bytes | bytearray | memoryview):
                return "\\x" + bytes(raw).hex()
            return value

        self.json_workloads = [
            dict(zip(self.workload_columns, map(ready, row), strict=True)) for row in self.workloads
        ]
        self.json_pods = {
            key: [
                dict(zip(self.pod_columns, (*pod[:-1], orjson.Fragment(pod[-1])), strict=True))
                for pod in pods
            ]
            for key, pods in self.pods.items()
        }
        self.json_observations = {
            key: dict(zip(_OBSERVATION, row, strict=True)) for key, row in self.observations.items()
        }


class SameResultFloor:
    """The hand-written batch write of every table the server's ingest writes."""

    def __init__(self, engine: sa.Engine, cluster_id: str) -> None:
        self.engine = engine
        self.cluster_id = cluster_id
        self.dialect = engine.dialect.name
        self._write = _postgresql if self.dialect == "postgresql" else _sqlite

    def prepare(self, items: Sequence[Mapping], now: datetime, since: datetime | None) -> Batch:
        return Batch(self.engine.dialect, self.cluster_id, items, now, since)

    def write(self, batch: Batch) -> None:
        with self.engine.begin() as conn:
            self._write(conn.connection.driver_connection, self.engine.dialect, batch)


def _owned(batch: Batch, departments_owned: set, projects_owned: set) -> list[int]:
    """Positions of the workloads whose department and project the cluster owns."""
    return [
        n
        for n, (department, project) in enumerate(batch.units)
        if department in departments_owned and project in projects_owned
    ]


def _elapsed(epoch: Callable[[str], str]) -> str:
    """Whole seconds from the stored phase's start to the new observation (0 if negative)."""
    delta = f"({epoch('excluded.observed_at')} - {epoch('w.phase_updated_at')})"
    return f"CASE WHEN {delta} > 0 THEN {delta} / 1000 ELSE 0 END"


def _workload_set(columns: Sequence[str], epoch: Callable[[str], str]) -> str:
    taken = [f"{c} = excluded.{c}" for c in columns if c not in SERVER_COLUMNS]
    changed = "w.phase <> excluded.phase"
    elapsed = _elapsed(epoch)
    return ", ".join(
        [
            *taken,
            f"pending_seconds_before = w.pending_seconds_before + CASE WHEN {changed} "
            f"AND w.phase = 'Pending' THEN {elapsed} ELSE 0 END",
            f"running_seconds_before = w.running_seconds_before + CASE WHEN {changed} "
            f"AND w.phase = 'Running' THEN {elapsed} ELSE 0 END",
            f"phase_updated_at = CASE WHEN {changed} THEN excluded.observed_at "
            "ELSE w.phase_updated_at END",
            "k8s_phase_updated_at = CASE WHEN w.k8s_phase <> excluded.k8s_phase "
            "THEN excluded.observed_at ELSE w.k8s_phase_updated_at END",
            f"completed_at = CASE WHEN excluded.phase NOT IN ({_TERMINAL}) THEN NULL "
            f"WHEN {changed} THEN excluded.observed_at "
            "ELSE coalesce(w.completed_at, excluded.completed_at) END",
        ]
    )


_WORKLOAD_WHERE = (
    "w.cluster_id = excluded.cluster_id "
    "AND (w.observed_at IS NULL OR excluded.observed_at >= w.observed_at)"
)
_UNIT_SET = (
    "name = CASE WHEN {renamed} THEN excluded.name ELSE u.name END, "
    "updated_at = CASE WHEN {renamed} THEN excluded.updated_at ELSE u.updated_at END"
)
# The cluster's liveness, as the route records it after the batch (skipped while recent).
_REPORTED = (
    "last_report_at = excluded.last_report_at WHERE c.last_report_at IS NULL "
    "OR c.last_report_at < {mark}"
)
_RENAMED = "excluded.name <> u.name AND excluded.updated_at > u.updated_at"
_PROJECT_SET = (
    ", department_id = CASE WHEN {renamed} THEN excluded.department_id ELSE u.department_id END"
    ", namespace = CASE WHEN {renamed} THEN excluded.namespace ELSE u.namespace END"
)
_POD_SET = ", ".join(
    [
        *(f"{c} = excluded.{c}" for c in REPORTED_COLUMNS),
        "k8s_phase_updated_at = CASE WHEN p.k8s_phase <> excluded.k8s_phase "
        "THEN excluded.updated_at ELSE p.k8s_phase_updated_at END",
        "created_at = CASE WHEN excluded.created_at < p.created_at "
        "THEN excluded.created_at ELSE p.created_at END",
    ]
)
_POD_WHERE = "p.cluster_id = excluded.cluster_id AND excluded.updated_at >= p.updated_at"
_HOURLY_SET = ", ".join(
    [
        *(
            f"{m} = usage_hourly.{m} + excluded.{m}"
            for m in ("gpu_seconds", "cpu_core_seconds", "memory_gib_seconds", "pending_seconds")
        ),
        *(f"{c} = excluded.{c}" for c in _OWNER),
    ]
)
_HOURLY_COLUMNS = (
    "hour_ms, workload_id, nodepool, cluster_id, department_id, project_id, submitter, type, "
    "gpu_seconds, cpu_core_seconds, memory_gib_seconds, pending_seconds, gpu_utilisation, "
    "idle_share"
)
_STATE_COLUMNS = ", ".join(_STATE)
_ACCRUES = "(l.pending OR l.gpu > 0 OR l.cpu_cores > 0 OR l.memory_gib > 0)"


# PostgreSQL: every statement takes its rows as one parameter (one round trip each): the large
# batches as JSON rows, the lists of ids and times as arrays.


def _pg_types(table: sa.Table, columns: Sequence[str], dialect: sa.Dialect) -> list[str]:
    return [table.c[c].type.compile(dialect=dialect) for c in columns]


def _pg_rows(columns: Sequence[str], types: Sequence[str], alias: str = "b") -> str:
    """The rows of one JSON parameter (objects keyed by column) as a table: one text value
    that orjson encodes in one call, where arrays cost psycopg a Python step per element."""
    definitions = ", ".join(f"{c} {t}" for c, t in zip(columns, types, strict=True))
    return f"json_to_recordset(%s::json) AS {alias}({definitions})"


def _json(rows: Sequence[Mapping[str, Any]]) -> str:
    return orjson.dumps(rows).decode()


def _columns(rows: Sequence[tuple], width: int) -> list[list]:
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[]] * width


_PG_OBSERVATION_TYPES = (
    "text",
    "bigint",
    "bigint",
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "float8",
    "float8",
    "float8",
    "boolean",
    "boolean",
)
# Each batch workload's latest ledger point, locked in id order (as the server's ledger and its
# live-usage task lock them, so concurrent writers queue instead of deadlocking).
_PG_LATEST = (
    "latest AS (SELECT s.* FROM usage_states s WHERE (s.workload_id, s.at_ms) IN "
    "(SELECT t.workload_id, max(t.at_ms) FROM usage_states t "
    "WHERE t.workload_id IN (SELECT workload_id FROM b) GROUP BY t.workload_id) "
    "ORDER BY s.workload_id FOR UPDATE)"
)
_PG_BATCH = f"b AS (SELECT * FROM {_pg_rows(_OBSERVATION, _PG_OBSERVATION_TYPES, 'o')})"
_PG_POOLS = "CASE WHEN s.nodepools = '' THEN ARRAY[''] ELSE string_to_array(s.nodepools, ',') END"


def _pg_epoch(column: str) -> str:
    return f"CAST(round(EXTRACT(epoch FROM {column}) * 1000) AS BIGINT)"


def _cluster_sql(mark: str) -> str:
    """The cluster's row: created on first contact, its last report moved on."""
    marks = ", ".join([mark] * 6)
    return (
        "INSERT INTO clusters AS c (id, name, tenant_id, created_at, updated_at, last_report_at) "
        f"VALUES ({marks}) ON CONFLICT (id) DO UPDATE SET {_REPORTED.format(mark=mark)}"
    )


def _units(batch: Batch) -> Iterator[tuple[sa.Table, list, tuple[str, ...], str]]:
    """Departments, then projects: each table, its rows, their columns and the upsert's SET."""
    for table, rows, extra in (
        (departments, batch.departments, ""),
        (projects, batch.projects, _PROJECT_SET),
    ):
        columns = ("id", "name", "cluster_id", "updated_at", "created_at")
        columns += ("department_id", "namespace") if table is projects else ()
        yield table, rows, columns, (_UNIT_SET + extra).format(renamed=_RENAMED)


def _postgresql(driver: Any, dialect: sa.Dialect, batch: Batch) -> None:
    driver.execute(_cluster_sql("%s"), batch.cluster)
    owned = {}
    for table, rows, columns, assigned in _units(batch):
        source = _pg_rows(columns, _pg_types(table, columns, dialect))
        owned[table.name] = {
            row[0]
            for row in driver.execute(
                f"INSERT INTO {table.name} AS u ({', '.join(columns)}) SELECT * FROM {source} "
                f"ON CONFLICT (id) DO UPDATE SET {assigned} "
                "WHERE u.cluster_id = excluded.cluster_id RETURNING u.id",
                [_json([dict(zip(columns, row, strict=True)) for row in rows])],
            )
        }
    kept = _owned(batch, owned["departments"], owned["projects"])
    columns = batch.workload_columns
    source = _pg_rows(columns, _pg_types(workloads, columns, dialect))
    returned = driver.execute(
        f"INSERT INTO workloads AS w ({', '.join(columns)}) SELECT * FROM {source} "
        f"ON CONFLICT (id) DO UPDATE SET {_workload_set(columns, _pg_epoch)} "
        f"WHERE {_WORKLOAD_WHERE} RETURNING w.id, w.phase, w.phase_message, w.phase_updated_at",
        [_json([batch.json_workloads[n] for n in kept])],
    ).fetchall()
    applied = sorted(row[0] for row in returned)
    driver.execute(
        "INSERT INTO workload_phase_history (workload_id, phase, message, at) "
        "SELECT * FROM json_to_recordset(%s::json) "
        "AS b(workload_id varchar, phase varchar, message text, at timestamptz) "
        "ON CONFLICT (workload_id, at, phase) DO NOTHING",
        [
            _json(
                [
                    {"workload_id": w, "phase": phase, "message": message, "at": at}
                    for w, phase, message, at in sorted(
                        (r[0], r[1], r[2] or "", r[3]) for r in returned
                    )
                ]
            )
        ],
    )
    pods = sorted(pod for key in applied for pod in batch.pods[key])
    pod_types = [*_pg_types(workload_pods, batch.pod_columns[:-1], dialect), "jsonb"]
    pod_rows = sorted(
        (pod for key in applied for pod in batch.json_pods[key]), key=lambda pod: pod["id"]
    )
    driver.execute(
        f"INSERT INTO workload_pods AS p ({', '.join(batch.pod_columns)}) "
        f"SELECT * FROM {_pg_rows(batch.pod_columns, pod_types)} "
        f"ON CONFLICT (id) DO UPDATE SET {_POD_SET} WHERE {_POD_WHERE}",
        [_json(pod_rows)],
    )
    driver.execute(
        "UPDATE workload_pods p SET deleted_at = b.at, updated_at = b.at "
        "FROM unnest(%s::varchar[], %s::timestamptz[]) AS b(workload_id, at) "
        "WHERE p.workload_id = b.workload_id AND p.deleted_at IS NULL "
        "AND p.id <> ALL(%s::varchar[])",
        [applied, [batch.observed[key] for key in applied], [pod[0] for pod in pods]],
    )
    pools = [(key, pool) for key in applied for pool in batch.nodepools[key]]
    driver.execute(
        "WITH gone AS (DELETE FROM workload_nodepools n WHERE n.workload_id = ANY(%s::varchar[]) "
        "AND (n.workload_id, n.nodepool) NOT IN "
        "(SELECT * FROM unnest(%s::varchar[], %s::varchar[]))) "
        "INSERT INTO workload_nodepools (workload_id, nodepool) "
        "SELECT * FROM unnest(%s::varchar[], %s::varchar[]) ON CONFLICT DO NOTHING",
        [applied, *_columns(pools, 2), *_columns(pools, 2)],
    )
    # The ledger takes every observation of the cluster's own workloads.
    observations = _columns([batch.observations[batch.ids[n]] for n in kept], len(_OBSERVATION))
    observed = _json([batch.json_observations[batch.ids[n]] for n in kept])
    since = batch.since_ms if batch.since_ms is not None else -(2**62)
    # Rollups first: they read the latest points as they were before this observation.
    driver.execute(
        f"WITH {_PG_BATCH}, {_PG_LATEST}, "
        "held AS ("
        f"SELECT l.workload_id, l.until_ms AS start_ms, b.at_ms AS end_ms, "
        f"{', '.join('l.' + c for c in _STATE)} FROM b JOIN latest l "
        f"ON l.workload_id = b.workload_id WHERE b.at_ms > l.until_ms AND {_ACCRUES} "
        "UNION ALL "
        f"SELECT b.workload_id, b.start_ms, b.at_ms, {', '.join('b.' + c for c in _STATE)} "
        "FROM b WHERE b.accrues AND b.start_ms < b.at_ms AND NOT EXISTS "
        "(SELECT 1 FROM latest l WHERE l.workload_id = b.workload_id)), "
        "clamped AS (SELECT s.*, greatest(s.start_ms, %s) AS from_ms, "
        f"{_PG_POOLS} AS pools FROM held s), "
        "pieces AS (SELECT s.*, h AS hour_ms, pool, "
        "(least(s.end_ms, h + 3600000) - greatest(s.from_ms, h))::float8 / 1000.0 "
        "/ cardinality(s.pools) AS share FROM clamped s "
        "CROSS JOIN generate_series(s.from_ms - s.from_ms %% 3600000, s.end_ms - 1, 3600000) h "
        "CROSS JOIN unnest(s.pools) pool WHERE s.end_ms > s.from_ms) "
        f"INSERT INTO usage_hourly ({_HOURLY_COLUMNS}) "
        "SELECT p.hour_ms, p.workload_id, p.pool, p.cluster_id, p.department_id, "
        "p.project_id, p.submitter, p.type, p.share * p.gpu, p.share * p.cpu_cores, "
        "p.share * p.memory_gib, CASE WHEN p.pending THEN p.share ELSE 0.0 END, "
        "m.gpu_utilisation, m.idle_share FROM pieces p LEFT JOIN usage_utilisation m "
        "ON m.workload_id = p.workload_id AND m.hour_ms = p.hour_ms "
        "ORDER BY p.workload_id, p.hour_ms, p.pool "
        f"ON CONFLICT (hour_ms, workload_id, nodepool) DO UPDATE SET {_HOURLY_SET}",
        [observed, since],
    )
    # The new points, and the previous latest point accrued up to each.
    driver.execute(
        f"WITH {_PG_BATCH}, {_PG_LATEST} "
        f"INSERT INTO usage_states (workload_id, at_ms, until_ms, {_STATE_COLUMNS}) "
        "SELECT * FROM ("
        f"SELECT b.workload_id, CASE WHEN EXISTS (SELECT 1 FROM latest l WHERE "
        "l.workload_id = b.workload_id) THEN b.at_ms ELSE b.start_ms END AS at_ms, "
        "b.at_ms AS until_ms, "
        f"{', '.join('b.' + c for c in _STATE)} FROM b "
        "UNION ALL "
        f"SELECT l.workload_id, l.at_ms, b.at_ms, {', '.join('l.' + c for c in _STATE)} "
        "FROM b JOIN latest l ON l.workload_id = b.workload_id WHERE b.at_ms > l.until_ms"
        ") points ORDER BY workload_id, at_ms "
        "ON CONFLICT (workload_id, at_ms) DO UPDATE SET until_ms = excluded.until_ms",
        [observed],
    )
    # The live set: each observed workload's new latest point, while it holds something.
    live = [o for o in zip(*observations, strict=True) if o[-1]] if observations[0] else []
    driver.execute(
        "WITH gone AS (DELETE FROM usage_open WHERE workload_id = ANY(%s::varchar[])) "
        "INSERT INTO usage_open (workload_id, at_ms) "
        "SELECT * FROM unnest(%s::varchar[], %s::bigint[]) "
        "ON CONFLICT (workload_id) DO UPDATE SET at_ms = excluded.at_ms",
        [
            [o[0] for o in zip(*observations, strict=True) if not o[-1]] if observations[0] else [],
            [o[0] for o in live],
            [o[1] for o in live],
        ],
    )


# SQLite, in-process: one prepared statement run over the rows (an executemany), or one
# multi-row statement where its answer is needed.


def _sqlite_epoch(column: str) -> str:
    return f"({column} / 1000)"


def _marks(count: int) -> str:
    return "(" + ", ".join("?" * count) + ")"


def _sqlite(driver: Any, _dialect: sa.Dialect, batch: Batch) -> None:
    cursor = driver.cursor()
    try:
        _sqlite_batch(cursor, batch)
    finally:
        cursor.close()


def _sqlite_values(
    cursor: Any, head: str, tail: str, rows: Sequence[tuple], width: int
) -> list[tuple]:
    """One multi-row statement per 30,000 parameters (SQLite takes 32,766), its answer."""
    step = max(1, 30_000 // width)
    answer: list[tuple] = []
    for start in range(0, len(rows), step):
        chunk = rows[start : start + step]
        cursor.execute(
            f"{head} VALUES {', '.join([_marks(width)] * len(chunk))} {tail}",
            [value for row in chunk for value in row],
        )
        answer.extend(cursor.fetchall())
    return answer


def _sqlite_batch(cursor: Any, batch: Batch) -> None:
    cursor.execute(_cluster_sql("?"), batch.cluster)
    owned = {}
    for table, rows, columns, assigned in _units(batch):
        owned[table.name] = {
            row[0]
            for row in _sqlite_values(
                cursor,
                f"INSERT INTO {table.name} AS u ({', '.join(columns)})",
                f"ON CONFLICT (id) DO UPDATE SET {assigned} "
                "WHERE u.cluster_id = excluded.cluster_id RETURNING id",
                rows,
                len(columns),
            )
        }
    kept = _owned(batch, owned["departments"], owned["projects"])
    columns = batch.workload_columns
    returned = _sqlite_values(
        cursor,
        f"INSERT INTO workloads AS w ({', '.join(columns)})",
        f"ON CONFLICT (id) DO UPDATE SET {_workload_set(columns, _sqlite_epoch)} "
        f"WHERE {_WORKLOAD_WHERE} RETURNING id, phase, phase_message, phase_updated_at",
        [batch.workloads[n] for n in kept],
        len(columns),
    )
    applied = sorted(row[0] for row in returned)
    cursor.executemany(
        "INSERT INTO workload_phase_history (workload_id, phase, message, at) "
        "VALUES (?, ?, ?, ?) ON CONFLICT (workload_id, at, phase) DO NOTHING",
        sorted((r[0], r[1], r[2] or "", r[3]) for r in returned),
    )
    pods = sorted(pod for key in applied for pod in batch.pods[key])
    cursor.executemany(
        f"INSERT INTO workload_pods AS p ({', '.join(batch.pod_columns)}) "
        f"VALUES {_marks(len(batch.pod_columns))} "
        f"ON CONFLICT (id) DO UPDATE SET {_POD_SET} WHERE {_POD_WHERE}",
        pods,
    )
    cursor.executemany(
        "UPDATE workload_pods SET deleted_at = ?1, updated_at = ?1 "
        "WHERE workload_id = ?2 AND deleted_at IS NULL "
        "AND id NOT IN (SELECT value FROM json_each(?3))",
        [
            (
                batch.observed[key],
                key,
                orjson.dumps([pod[0] for pod in batch.pods[key]]).decode(),
            )
            for key in applied
        ],
    )
    cursor.executemany(
        "DELETE FROM workload_nodepools WHERE workload_id = ?1 "
        "AND nodepool NOT IN (SELECT value FROM json_each(?2))",
        [(key, orjson.dumps(batch.nodepools[key]).decode()) for key in applied],
    )
    cursor.executemany(
        "INSERT INTO workload_nodepools (workload_id, nodepool) VALUES (?, ?) "
        "ON CONFLICT DO NOTHING",
        [(key, pool) for key in applied for pool in batch.nodepools[key]],
    )
    observations = [batch.observations[batch.ids[n]] for n in kept]
    since = batch.since_ms if batch.since_ms is not None else -(2**62)
    names = {name: n + 1 for n, name in enumerate(_OBSERVATION)}
    b = {name: f"?{number}" for name, number in names.items()}
    since_mark = f"?{len(_OBSERVATION) + 1}"
    latest = "SELECT * FROM usage_states s WHERE s.workload_id = ?1 ORDER BY s.at_ms DESC LIMIT 1"
    new_state = ", ".join(f"{b[c]} AS {c}" for c in _STATE)
    cursor.executemany(
        f"WITH RECURSIVE l AS ({latest}), "
        "held AS ("
        f"SELECT l.until_ms AS start_ms, {b['at_ms']} AS end_ms, "
        f"{', '.join('l.' + c for c in _STATE)} FROM l "
        f"WHERE {b['at_ms']} > l.until_ms AND {_ACCRUES} "
        "UNION ALL "
        f"SELECT {b['start_ms']}, {b['at_ms']}, {new_state} "
        f"WHERE {b['accrues']} AND {b['start_ms']} < {b['at_ms']} "
        "AND NOT EXISTS (SELECT 1 FROM l)), "
        f"clamped AS (SELECT h.*, max(h.start_ms, {since_mark}) AS from_ms FROM held h), "
        "hours(hour_ms) AS (SELECT from_ms - from_ms % 3600000 FROM clamped "
        "UNION ALL SELECT hour_ms + 3600000 FROM hours, clamped "
        "WHERE hour_ms + 3600000 < clamped.end_ms), "
        "split(pool, rest) AS (SELECT NULL, nodepools || ',' FROM clamped "
        "UNION ALL SELECT substr(rest, 1, instr(rest, ',') - 1), "
        "substr(rest, instr(rest, ',') + 1) FROM split WHERE rest <> ''), "
        "pools AS (SELECT pool FROM split WHERE pool IS NOT NULL), "
        "pieces AS (SELECT c.*, hours.hour_ms, pools.pool, "
        "(min(c.end_ms, hours.hour_ms + 3600000) - max(c.from_ms, hours.hour_ms)) / 1000.0 "
        "/ (SELECT count(*) FROM pools) AS share FROM clamped c, hours, pools "
        "WHERE c.end_ms > c.from_ms) "
        f"INSERT INTO usage_hourly ({_HOURLY_COLUMNS}) "
        f"SELECT p.hour_ms, ?1, p.pool, p.cluster_id, p.department_id, "
        "p.project_id, p.submitter, p.type, p.share * p.gpu, p.share * p.cpu_cores, "
        "p.share * p.memory_gib, CASE WHEN p.pending THEN p.share ELSE 0.0 END, "
        "m.gpu_utilisation, m.idle_share FROM pieces p LEFT JOIN usage_utilisation m "
        "ON m.workload_id = ?1 AND m.hour_ms = p.hour_ms WHERE true "
        f"ON CONFLICT (hour_ms, workload_id, nodepool) DO UPDATE SET {_HOURLY_SET}",
        [(*o, since) for o in observations],
    )
    cursor.executemany(
        f"WITH l AS ({latest}) "
        f"INSERT INTO usage_states (workload_id, at_ms, until_ms, {_STATE_COLUMNS}) "
        f"SELECT ?1, CASE WHEN EXISTS (SELECT 1 FROM l) THEN {b['at_ms']} "
        f"ELSE {b['start_ms']} END, {b['at_ms']}, {', '.join(b[c] for c in _STATE)} "
        "UNION ALL "
        f"SELECT l.workload_id, l.at_ms, {b['at_ms']}, {', '.join('l.' + c for c in _STATE)} "
        f"FROM l WHERE {b['at_ms']} > l.until_ms "
        "ON CONFLICT (workload_id, at_ms) DO UPDATE SET until_ms = excluded.until_ms",
        [o[:-1] for o in observations],
    )
    cursor.executemany(
        "DELETE FROM usage_open WHERE workload_id = ?",
        [(o[0],) for o in observations if not o[-1]],
    )
    cursor.executemany(
        "INSERT INTO usage_open (workload_id, at_ms) VALUES (?, ?) "
        "ON CONFLICT (workload_id) DO UPDATE SET at_ms = excluded.at_ms",
        [(o[0], o[1]) for o in observations if o[-1]],
    )


def table_rows(conn: sa.Connection, table: sa.Table) -> list[tuple]:
    """Every row of ``table`` (its surrogate id left out), floats rounded, in order."""
    columns = [c for c in table.c if not (c.name == "id" and c.autoincrement is True)]
    if table is workload_phase_history:
        columns = [c for c in table.c if c.name != "id"]

    def value(v: Any) -> Any:
        if isinstance(v, float):
            return float(f"{v:.9g}") if math.isfinite(v) else v
        if isinstance(v, dict | list):
            return orjson.dumps(v, option=orjson.OPT_SORT_KEYS)
        return v

    rows = conn.execute(sa.select(*columns)).all()
    return sorted((tuple(value(v) for v in row) for row in rows), key=repr)


def differences(left: sa.Engine, right: sa.Engine) -> list[str]:
    """Tables whose rows differ between two databases, with a first differing row of each."""
    found = []
    with left.connect() as a, right.connect() as b:
        for table in COMPARED:
            ours, theirs = table_rows(a, table), table_rows(b, table)
            if ours != theirs:
                only = sorted(set(ours) ^ set(theirs), key=repr)
                found.append(
                    f"{table.name}: {len(ours)} rows against {len(theirs)}; "
                    f"first difference {only[:2]}"
                )
    return found


def check_same_result(
    server: sa.Engine,
    floor: sa.Engine,
    cluster_id: str,
    batches: Sequence[Sequence[Mapping[str, Any]]],
    since: datetime | None,
) -> None:
    """Write the same batches (parsed, in order) through the server's ingest into one empty
    database and through the floor into another, and raise unless every table the server
    writes holds the same rows in both."""
    from gpufleet.store.clusters import mark_reported
    from gpufleet.store.ingest import ingest_workloads

    same = SameResultFloor(floor, cluster_id)
    for items in batches:
        now = max(item["observedAt"] for item in items)
        with server.begin() as conn:
            ingest_workloads(conn, cluster_id, items, now=now, usage_since=since)
        with server.begin() as conn:
            mark_reported(conn, cluster_id, now)
        same.write(same.prepare(items, now, since))
    found = differences(server, floor)
    if found:
        raise AssertionError("the same-result floor differs:\n  " + "\n  ".join(found))
