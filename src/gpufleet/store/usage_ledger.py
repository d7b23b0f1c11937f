"""The usage ledger: each workload's timeline of held resources, accrued into hourly rollups.

Every observation of a workload (an ingest, a deletion) is a point on its timeline: from that
moment on it held this allocation, in these node pools, for this project. A state row knows how
far it has been added to the rollups (``until_ms``), so the ledger moves by differences only:

* an observation after the latest point first accrues the latest state up to it, then starts a
  new point (also when nothing changed: a late observation may yet fall between the two);
* an observation that arrives late, between two known points, takes over the stretch up to the
  next point: the earlier state's share of it is subtracted and the new state's added;
* the live part (running and pending workloads) is extended to "now" by ``advance_open``.

Nothing is ever recomputed from scratch, and replays are harmless: an observation equal to the
state already recorded at that moment changes nothing. Runs of equal points older than a day
are merged by ``compact_states`` (the retention task), so the timeline keeps one point per
change, not per observation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gpufleet.core.quantities import parse_quantity
from gpufleet.core.times import to_ms
from gpufleet.schemas.enums import TERMINAL_PHASES, Phase
from gpufleet.store.clusters import usage_floors
from gpufleet.store.dialect import (
    batch_parameters,
    batch_table,
    bulk_append,
    one_of,
    one_of_parameter,
    update_many,
    upsert,
    write_many,
)
from gpufleet.store.tables import usage_open, usage_states
from gpufleet.store.usage_rollups import RollupDeltas
from gpufleet.store.workload_documents import first_requested_pool

S = usage_states.c
OPEN = usage_open.c
_TERMINAL = frozenset(phase.value for phase in TERMINAL_PHASES)
_GIB = 2**30
_CHUNK = 500
# Workloads whose timelines one step of ``compact_states`` reads.
COMPACT_PAGE = 1000


@dataclass(frozen=True, slots=True)
class HeldState:
    """What a workload held from one moment on, and whom it is accounted to."""

    cluster_id: str
    department_id: str
    project_id: str
    submitter: str
    type: str
    nodepools: str
    gpu: float = 0.0
    cpu_cores: float = 0.0
    memory_gib: float = 0.0
    pending: bool = False

    @property
    def accrues(self) -> bool:
        return self.pending or self.gpu > 0 or self.cpu_cores > 0 or self.memory_gib > 0

    def same_as(self, other: HeldState) -> bool:
        # Two states that accrue nothing are the same whoever they belong to.
        return self == other or not (self.accrues or other.accrues)

    def released(self) -> HeldState:
        return replace(self, gpu=0.0, cpu_cores=0.0, memory_gib=0.0, pending=False)

    def pools(self) -> list[str]:
        return self.nodepools.split(",") if self.nodepools else [""]


@dataclass(frozen=True, slots=True)
class Observation:
    """A workload seen at ``at_ms`` holding ``state``; ``since_ms`` is when its current phase
    began, from where a workload seen for the first time is accounted."""

    workload_id: str
    at_ms: int
    state: HeldState
    since_ms: int | None = None


def held_state(wire: Mapping[str, Any]) -> HeldState:
    """The state a wire-shaped workload reports: a finished workload holds nothing."""
    phase = str(wire["phase"])
    holds = phase not in _TERMINAL
    allocated = (wire.get("allocatedResources") or {}) if holds else {}
    memory = parse_quantity(allocated.get("cpuMemory"))
    pools = dict.fromkeys(str(p) for p in wire.get("currentNodePools") or [] if p)
    pending = phase == Phase.PENDING.value
    if pending and not pools and (asked := first_requested_pool(wire)):
        # A pending workload waits in the first pool it asks for, as its request is counted.
        pools = {asked: None}
    return HeldState(
        cluster_id=str(wire["clusterId"]),
        department_id=str(wire["departmentId"]),
        project_id=str(wire["projectId"]),
        submitter=str(wire.get("submittedBy") or ""),
        type=str(wire["type"]),
        nodepools=",".join(pools),
        gpu=float(allocated.get("gpu") or 0.0),
        cpu_cores=float(allocated.get("cpu") or 0.0),
        memory_gib=float(memory) / _GIB if memory is not None else 0.0,
        pending=pending,
    )


def observation_of(wire: Mapping[str, Any], observed_at: datetime) -> Observation:
    since = wire.get("phaseUpdatedAt")
    return Observation(
        str(wire["id"]),
        to_ms(observed_at),
        held_state(wire),
        to_ms(since) if isinstance(since, datetime) else None,
    )


@dataclass(slots=True)
class _Point:
    at_ms: int
    until_ms: int
    state: HeldState
    stored: bool = True
    changed: bool = False


def _point(row: Any) -> _Point:
    state = HeldState(
        row.cluster_id,
        row.department_id,
        row.project_id,
        row.submitter,
        row.type,
        row.nodepools,
        row.gpu,
        row.cpu_cores,
        row.memory_gib,
        bool(row.pending),
    )
    return _Point(int(row.at_ms), int(row.until_ms), state)


def record_observations(
    conn: Connection, observations: Iterable[Observation], since_ms: int | None = None
) -> None:
    """Move the ledger by a batch of observations (any order, replays allowed); caller commits.

    Runs inside the transaction that stored the workloads, after their rows were written (and,
    on PostgreSQL, locked), so concurrent writers of one workload take turns. Nothing before
    ``since_ms`` (the retention's horizon), nor before the moment a cluster's usage is accounted
    from (``store.clusters.account_usage_from``), is added to the rollups.
    """
    by_workload: dict[str, list[Observation]] = {}
    for observation in observations:
        by_workload.setdefault(observation.workload_id, []).append(observation)
    ids = sorted(by_workload)
    floors = usage_floors(conn) if ids else {}
    for offset in range(0, len(ids), _CHUNK):
        chunk = ids[offset : offset + _CHUNK]
        latest = _latest_points(conn, chunk)
        deltas, writes = RollupDeltas(since_ms, floors), _Writes()
        for workload_id in chunk:
            timeline = _Timeline(conn, workload_id, latest.get(workload_id), deltas)
            for observation in sorted(by_workload[workload_id], key=lambda o: o.at_ms):
                timeline.observe(observation)
            timeline.writes(writes)
            deltas.spill(conn)
        writes.run(conn)
        deltas.apply(conn)


def _latest_points(conn: Connection, ids: Sequence[str]) -> dict[str, _Point]:
    statement = _latest_points_statement(conn.dialect.name)
    return {row.workload_id: _point(row) for row in conn.execute(statement, {"ids": list(ids)})}


@cache
def _latest_points_statement(dialect: str) -> sa.Select:
    """Each listed workload's (``ids``) latest point, locked in id order."""
    newest = (
        sa.select(S.workload_id, sa.func.max(S.at_ms).label("at_ms"))
        .where(one_of_parameter(dialect, S.workload_id, "ids"))
        .group_by(S.workload_id)
        .subquery()
    )
    return (
        sa.select(usage_states)
        .join(newest, sa.and_(S.workload_id == newest.c.workload_id, S.at_ms == newest.c.at_ms))
        .order_by(S.workload_id)
        .with_for_update(of=usage_states)
    )


class _Timeline:
    """One workload's points as far as a batch touches them, and the writes they need."""

    def __init__(
        self, conn: Connection, workload_id: str, latest: _Point | None, deltas: RollupDeltas
    ) -> None:
        self._conn = conn
        self._id = workload_id
        self._latest = latest
        self._deltas = deltas
        self._touched: list[_Point] = [latest] if latest else []

    def _accrue(self, state: HeldState, start: int, end: int, sign: float = 1.0) -> None:
        if end > start and state.accrues:
            self._deltas.add(self._id, state, start, end, sign)

    def _move(self, old: HeldState, new: HeldState, start: int, end: int) -> None:
        """The stretch [start, end) was accounted to ``old``; it belongs to ``new``."""
        if old == new:
            return
        self._accrue(old, start, end, -1.0)
        self._accrue(new, start, end)

    def _new_point(self, at_ms: int, until_ms: int, state: HeldState) -> _Point:
        point = _Point(at_ms, until_ms, state, stored=False, changed=True)
        self._touched.append(point)
        return point

    def observe(self, observation: Observation) -> None:
        latest, at, state = self._latest, observation.at_ms, observation.state
        if latest is None:
            start = at
            if state.accrues and observation.since_ms is not None:
                start = min(at, observation.since_ms)
            self._latest = self._new_point(start, at, state)
            self._accrue(state, start, at)
        elif at >= latest.at_ms:
            self._after_latest(latest, at, state)
        else:
            self._late(at, state)

    def _after_latest(self, latest: _Point, at: int, state: HeldState) -> None:
        if at > latest.until_ms:
            self._accrue(latest.state, latest.until_ms, at)
            latest.until_ms, latest.changed = at, True
        if at == latest.at_ms and latest.state.same_as(state):
            return
        if at == latest.at_ms:
            self._move(latest.state, state, latest.at_ms, latest.until_ms)
            latest.state, latest.changed = state, True
            return
        # The live part may already run past ``at``: that stretch changes hands.
        self._move(latest.state, state, at, latest.until_ms)
        until = latest.until_ms
        latest.until_ms, latest.changed = at, True
        self._latest = self._new_point(at, until, state)

    def _late(self, at: int, state: HeldState) -> None:
        before, after = self._neighbours(at)
        if before is None:
            # Earlier than anything known: it held ``state`` until the first point.
            assert after is not None
            self._accrue(state, at, after.at_ms)
            self._new_point(at, after.at_ms, state)
            return
        if before.at_ms == at and before.state.same_as(state):
            return
        if before.at_ms == at:
            self._move(before.state, state, at, before.until_ms)
            before.state, before.changed = state, True
            return
        self._move(before.state, state, at, before.until_ms)
        until = before.until_ms
        before.until_ms, before.changed = at, True
        self._new_point(at, until, state)

    def _neighbours(self, at: int) -> tuple[_Point | None, _Point | None]:
        """The stored or new point at or before ``at`` and the first one after it."""
        known = {p.at_ms: p for p in self._touched}
        rows = self._conn.execute(
            sa.select(usage_states)
            .where(
                S.workload_id == self._id,
                S.at_ms.in_(
                    [
                        sa.select(sa.func.max(S.at_ms))
                        .where(S.workload_id == self._id, S.at_ms <= at)
                        .scalar_subquery(),
                        sa.select(sa.func.min(S.at_ms))
                        .where(S.workload_id == self._id, S.at_ms > at)
                        .scalar_subquery(),
                    ]
                ),
            )
            .with_for_update()
        )
        for row in rows:
            if int(row.at_ms) not in known:
                point = _point(row)
                known[point.at_ms] = point
                self._touched.append(point)
        before = max((p for p in known.values() if p.at_ms <= at), default=None, key=_at)
        after = min((p for p in known.values() if p.at_ms > at), default=None, key=_at)
        return before, after

    def writes(self, batch: _Writes) -> None:
        """Add this timeline's inserts, updates and live-set change to ``batch``."""
        for point in self._touched:
            row = {"workload_id": self._id, "at_ms": point.at_ms, "until_ms": point.until_ms}
            row.update(_state_columns(point.state))
            if not point.stored:
                batch.inserts.append(row)
            elif point.changed:
                batch.updates.append(row)
        latest = max(self._touched, key=_at, default=None)
        if latest is None or (latest.stored and not latest.changed):
            return
        batch.closed.append(self._id)
        if latest.state.accrues:
            batch.opened.append({"workload_id": self._id, "at_ms": latest.at_ms})


@dataclass(slots=True)
class _Writes:
    inserts: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    opened: list[dict[str, Any]] = field(default_factory=list)

    def run(self, conn: Connection) -> None:
        if conn.dialect.name == "postgresql":
            if self.inserts or self.updates or self.closed:
                self._in_one(conn.dialect, conn)
            return
        if self.inserts:
            write_many(conn, usage_states.insert(), self.inserts)
        if self.updates:
            update_many(conn, usage_states, _KEY, self.updates)
        if self.closed:
            conn.execute(
                usage_open.delete().where(
                    one_of(conn.dialect.name, usage_open.c.workload_id, self.closed)
                )
            )
        if self.opened:
            write_many(conn, usage_open.insert(), self.opened)

    def _in_one(self, dialect: sa.Dialect, conn: Connection) -> None:
        """PostgreSQL: the points and the live set written by one statement (``_WRITES``)."""
        live = {row["workload_id"] for row in self.opened}
        closed = [workload_id for workload_id in self.closed if workload_id not in live]
        conn.execute(
            _WRITES,
            {
                "closed": sorted(closed),
                **batch_parameters(dialect, usage_states, _POINT, self.updates, "changed"),
                **batch_parameters(dialect, usage_open, _OPEN, self.opened, "live"),
                **batch_parameters(dialect, usage_states, _POINT, self.inserts, "points"),
            },
        )


def _writes_in_one() -> sa.Insert:
    """The new points are inserted, the changed ones updated, the workloads no longer live
    (``closed``) leave the live set and the live ones are put in it at their latest point:
    four disjoint sets of rows, so the statement never writes one row twice."""
    changed = batch_table(usage_states, _POINT, name="changed")
    update = (
        usage_states.update()
        .where(S.workload_id == changed.c.workload_id, S.at_ms == changed.c.at_ms)
        .values({name: changed.c[name] for name in _POINT if name not in _KEY})
        .cte("updated")
    )
    gone = (
        usage_open.delete()
        .where(one_of_parameter("postgresql", OPEN.workload_id, "closed"))
        .cte("closed")
    )
    opened = batch_table(usage_open, _OPEN, name="live")
    put = (
        upsert("postgresql", usage_open, ["workload_id"], ["at_ms"])
        .from_select(list(_OPEN), sa.select(opened.c.workload_id, opened.c.at_ms))
        .cte("opened")
    )
    new = batch_table(usage_states, _POINT, name="points")
    return (
        usage_states.insert()
        .from_select(list(_POINT), sa.select(*(new.c[name] for name in _POINT)))
        .add_cte(update, gone, put)
    )


_KEY = ("workload_id", "at_ms")


def _at(point: _Point) -> int:
    return point.at_ms


def _state_columns(state: HeldState) -> dict[str, Any]:
    return {
        "cluster_id": state.cluster_id,
        "department_id": state.department_id,
        "project_id": state.project_id,
        "submitter": state.submitter,
        "type": state.type,
        "nodepools": state.nodepools,
        "gpu": state.gpu,
        "cpu_cores": state.cpu_cores,
        "memory_gib": state.memory_gib,
        "pending": state.pending,
    }


def record_releases(
    conn: Connection, releases: Mapping[str, datetime], since_ms: int | None = None
) -> None:
    """Deleted workloads hold nothing from their deletion time on (``releases`` maps each id
    to it; see ``record_observations``): a deletion reported late takes back the stretch the
    live part already accrued past it."""
    ids = sorted(releases)
    for offset in range(0, len(ids), _CHUNK):
        latest = _latest_points(conn, ids[offset : offset + _CHUNK])
        record_observations(
            conn,
            (
                Observation(workload_id, to_ms(releases[workload_id]), point.state.released())
                for workload_id, point in latest.items()
            ),
            since_ms,
        )


def advance_open(
    conn: Connection, now: datetime, limit: int = 5000, since_ms: int | None = None
) -> int:
    """Accrue the live part: every workload still holding something, up to ``now`` (nothing
    before ``since_ms``, the retention's horizon).

    Returns how many workloads moved. The latest points are locked first and then checked to
    be still the latest, so an ingest that added a newer point meanwhile is not accrued twice.
    """
    now_ms = to_ms(now)
    candidates = (
        sa.select(usage_states)
        .join(usage_open, sa.and_(OPEN.workload_id == S.workload_id, OPEN.at_ms == S.at_ms))
        .where(S.until_ms < now_ms)
        .order_by(S.workload_id)
        .limit(limit)
        .with_for_update(of=usage_states)
    )
    rows = conn.execute(candidates).all()
    if not rows:
        return 0
    still_open = {
        (r.workload_id, int(r.at_ms))
        for r in conn.execute(
            sa.select(OPEN.workload_id, OPEN.at_ms).where(
                one_of_parameter(conn.dialect.name, OPEN.workload_id, "ids")
            ),
            {"ids": [r.workload_id for r in rows]},
        )
    }
    deltas = RollupDeltas(since_ms, usage_floors(conn))
    moved = []
    for row in rows:
        point = _point(row)
        if (row.workload_id, point.at_ms) not in still_open or point.until_ms >= now_ms:
            continue
        deltas.add(row.workload_id, point.state, point.until_ms, now_ms, 1.0)
        deltas.spill(conn)
        moved.append({"w": row.workload_id, "a": point.at_ms})
    if moved:
        conn.execute(
            usage_states.update()
            .where(S.workload_id == sa.bindparam("w"), S.at_ms == sa.bindparam("a"))
            .values(until_ms=now_ms),
            moved,
        )
        deltas.apply(conn)
    return len(moved)


def delete_states_before(conn: Connection, cutoff_ms: int) -> int:
    """Retention: drop points whose stretch ended before ``cutoff_ms`` and that are not the
    latest of their workload (the latest keeps the timeline going)."""
    later = usage_states.alias("later")
    has_later = (
        sa.select(sa.literal(1))
        .where(later.c.workload_id == S.workload_id, later.c.at_ms > S.at_ms)
        .exists()
    )
    result = conn.execute(sa.delete(usage_states).where(S.until_ms < cutoff_ms, has_later))
    return int(result.rowcount or 0)


def start_timelines(conn: Connection, observations: Sequence[Observation]) -> int:
    """Begin the timelines of workloads the ledger has never seen, straight through the driver
    (the demo and benchmarks seed many at once): one point each from its observation, live
    when it holds something. Returns how many began."""
    if not observations:
        return 0
    columns = ("workload_id", "at_ms", "until_ms", *_state_columns(observations[0].state))
    rows = (
        (o.workload_id, o.at_ms, o.at_ms, *_state_columns(o.state).values()) for o in observations
    )
    begun = bulk_append(conn, usage_states, columns, rows)
    live = ((o.workload_id, o.at_ms) for o in observations if o.state.accrues)
    bulk_append(conn, usage_open, ("workload_id", "at_ms"), live)
    return begun


def compact_states(conn: Connection, before_ms: int, page: int = COMPACT_PAGE) -> int:
    """Merge runs of equal points that began before ``before_ms`` (observations that late are
    not expected): a point equal to the one before it goes, and that one reaches as far.
    The latest point of a workload is kept. Returns how many points went.

    Workloads are taken ``page`` at a time, by id, so what is held in memory is one page's
    redundant points, however many workloads the ledger has."""
    went, after = 0, ""
    while True:
        ids = list(
            conn.execute(
                sa.select(S.workload_id)
                .where(S.workload_id > after)
                .group_by(S.workload_id)
                .order_by(S.workload_id)
                .limit(page)
            ).scalars()
        )
        if not ids:
            return went
        went += _compact_range(conn, ids[0], ids[-1], before_ms)
        after = ids[-1]


def _compact_range(conn: Connection, first: str, last: str, before_ms: int) -> int:
    """``compact_states`` for the workloads whose ids lie in [first, last] (whole timelines)."""
    columns = [S[name] for name in _STATE_NAMES]
    previous = [sa.func.lag(c).over(partition_by=S.workload_id, order_by=S.at_ms) for c in columns]
    following = sa.func.lead(S.at_ms).over(partition_by=S.workload_id, order_by=S.at_ms)
    ordered = (
        sa.select(
            S.workload_id,
            S.at_ms,
            following.label("next_at"),
            *(c.label(f"p_{i}") for i, c in enumerate(previous)),
            *(c.label(f"c_{i}") for i, c in enumerate(columns)),
        )
        .where(S.workload_id.between(first, last))
        .subquery()
    )
    equal = sa.and_(*(ordered.c[f"p_{i}"] == ordered.c[f"c_{i}"] for i in range(len(columns))))
    redundant = conn.execute(
        sa.select(ordered.c.workload_id, ordered.c.at_ms).where(
            ordered.c.at_ms < before_ms, ordered.c.next_at.is_not(None), equal
        )
    ).all()
    for offset in range(0, len(redundant), _CHUNK):
        chunk = redundant[offset : offset + _CHUNK]
        conn.execute(
            sa.delete(usage_states).where(
                S.workload_id == sa.bindparam("w"), S.at_ms == sa.bindparam("a")
            ),
            [{"w": w, "a": a} for w, a in chunk],
        )
        workloads = sorted({w for w, _ in chunk})
        later = usage_states.alias("later")
        next_at = (
            sa.select(sa.func.min(later.c.at_ms))
            .where(later.c.workload_id == S.workload_id, later.c.at_ms > S.at_ms)
            .scalar_subquery()
        )
        # Points whose successor went now reach to the next one that stayed.
        conn.execute(
            usage_states.update()
            .where(S.workload_id.in_(workloads), next_at.is_not(None), S.until_ms != next_at)
            .values(until_ms=next_at)
        )
    return len(redundant)


_STATE_NAMES = (
    "cluster_id",
    "department_id",
    "project_id",
    "submitter",
    "type",
    "nodepools",
    "gpu",
    "cpu_cores",
    "memory_gib",
    "pending",
)
_POINT = ("workload_id", "at_ms", "until_ms", *_STATE_NAMES)
_OPEN = ("workload_id", "at_ms")
# PostgreSQL: built once, every batch runs it.
_WRITES = _writes_in_one()
