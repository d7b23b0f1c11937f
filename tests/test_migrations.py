"""The one migration chain builds exactly the schema that ``store/tables.py`` describes and
carries stored rows forward."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from gpufleet.settings import Settings
from gpufleet.store.engine import create_store_engine
from gpufleet.store.migrate import (
    MIGRATIONS,
    alembic_config,
    current_revision,
    schema_of,
    upgrade,
)
from gpufleet.store.tables import (
    clusters,
    metadata,
    usage_open,
    workload_nodepools,
    workload_phase_history,
    workload_pods,
    workloads,
)
from gpufleet.store.types import UtcDateTime
from gpufleet.store.workload_documents import SecondsBefore
from tests.support.databases import fresh_database
from tests.support.factories import insert, workload


def test_migrated_schema_matches_the_table_definitions(engine):
    with engine.connect() as conn:
        options = {"compare_type": True, "include_object": schema_of(conn.dialect.name)}
        context = MigrationContext.configure(conn, opts=options)
        differences = compare_metadata(context, metadata)
    assert differences == []


def test_every_table_exists_with_its_columns(engine):
    inspector = sa.inspect(engine)
    for table in metadata.sorted_tables:
        columns = {c["name"] for c in inspector.get_columns(table.name)}
        assert columns == {c.name for c in table.columns}, table.name


def _head() -> str:
    (head,) = ScriptDirectory.from_config(alembic_config()).get_heads()
    return head


def test_there_is_one_chain_and_the_database_is_at_its_head(engine):
    scripts = ScriptDirectory.from_config(alembic_config())
    assert len(scripts.get_heads()) == 1
    chain = [script.revision for script in scripts.walk_revisions()]
    assert chain[-1] == "0001"
    # One file per revision, numbered in the order they apply.
    files = sorted(p.name for p in (MIGRATIONS / "versions").glob("0*.py"))
    assert [name[:4] for name in files] == list(reversed(chain))
    assert current_revision(engine) == chain[0] == _head()


def test_upgrading_again_is_harmless(engine):
    upgrade(engine)
    upgrade(engine)
    assert current_revision(engine) == _head()


@pytest.fixture
def empty_engine(request, tmp_path):
    with fresh_database(request, tmp_path, migrated=False) as url:
        engine = create_store_engine(Settings(database_url=url))
        yield engine
        engine.dispose()


def test_pods_and_transitions_of_the_first_schema_are_carried_forward(empty_engine):
    upgrade(empty_engine, "0001")
    workload = str(uuid.uuid4())
    created = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    with empty_engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO workloads (id, tenant_id, cluster_id, name, type, category, "
                "namespace, project_id, project_name, department_id, department_name, source, "
                "phase, k8s_phase, priority_class_name, allocated_gpu, requested_gpu, "
                "running_pods, created_at, updated_at, phase_updated_at, k8s_phase_updated_at, "
                "pending_seconds_before, running_seconds_before, search_text, document) VALUES "
                "(:id, 1, :cluster, 'w', 'Training', 'Train', 'ns', '1', 'p', '2', 'd', 'CLI', "
                "'Running', 'Running', 'train', 1, 1, 1, :t, :t, :t, :t, 0, 0, 'w', '{}')"
            ),
            {"id": workload, "cluster": str(uuid.uuid4()), "t": created},
        )
        conn.execute(
            sa.text(
                "INSERT INTO workload_pods (workload_id, uid, name, node_name, phase, document) "
                "VALUES (:w, 'pod-uid', 'w-0', 'node-1', 'Running', :doc)"
            ),
            {"w": workload, "doc": '{"name": "w-0", "nodepool": "pool-a"}'},
        )
        conn.execute(
            sa.text(
                "INSERT INTO workload_phase_history (workload_id, phase, message, at) VALUES "
                "(:w, 'Pending', NULL, :t), (:w, 'Running', 'started', :t2)"
            ),
            {"w": workload, "t": created, "t2": created + timedelta(seconds=5)},
        )
    upgrade(empty_engine)
    with empty_engine.connect() as conn:
        pod = conn.execute(sa.select(workload_pods)).one()
        history = conn.execute(
            sa.select(workload_phase_history.c.phase, workload_phase_history.c.message).order_by(
                workload_phase_history.c.at
            )
        ).all()
    assert (pod.id, pod.workload_id, pod.name, pod.node_name, pod.k8s_phase) == (
        "pod-uid",
        workload,
        "w-0",
        "node-1",
        "Running",
    )
    assert (pod.nodepool, pod.created_at, pod.deleted_at) == ("pool-a", created, None)
    assert [tuple(row) for row in history] == [("Pending", ""), ("Running", "started")]


def test_access_keys_of_earlier_schemas_start_at_token_generation_zero(empty_engine):
    upgrade(empty_engine, "0002")
    with empty_engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO access_keys (client_id, name, secret_hash, created_at) "
                "VALUES ('ci', 'ci', 'hash', :t)"
            ),
            {"t": datetime(2026, 1, 2, tzinfo=UTC)},
        )
    upgrade(empty_engine)
    with empty_engine.connect() as conn:
        generation = conn.execute(sa.text("SELECT token_generation FROM access_keys")).scalar_one()
        sessions = conn.execute(sa.text("SELECT count(*) FROM refresh_sessions")).scalar_one()
    assert (generation, sessions) == (0, 0)


def test_access_keys_of_earlier_schemas_become_service_accounts_with_their_rules(empty_engine):
    upgrade(empty_engine, "0003")
    created = datetime(2026, 1, 2, tzinfo=UTC)
    with empty_engine.begin() as conn:
        for client_id, name, minutes in (("gf-a", "ci", 0), ("gf-b", "ci", 1), ("gf-c", "ops", 2)):
            conn.execute(
                sa.text(
                    "INSERT INTO access_keys (client_id, name, secret_hash, created_at, "
                    "token_generation) VALUES (:id, :name, 'hash', :t, 3)"
                ),
                {"id": client_id, "name": name, "t": created + timedelta(minutes=minutes)},
            )
        conn.execute(
            sa.text(
                "INSERT INTO access_rules (subject_type, subject_id, role, scope_type, scope_id, "
                "created_at, created_by) VALUES ('accessKey', 'gf-b', 'viewer', 'project', 'p1', "
                ":t, 'admin'), ('group', 'ml', 'researcher', 'tenant', '', :t, 'admin')"
            ),
            {"t": created},
        )
        conn.execute(
            sa.text(
                "INSERT INTO audit_log (at, actor, action, target) VALUES "
                "(:t, 'admin', 'access_key.create', 'gf-b'), (:t, 'gf-b', 'token.issue', 'x')"
            ),
            {"t": created},
        )
    upgrade(empty_engine)
    with empty_engine.connect() as conn:
        keys = conn.execute(
            sa.text(
                "SELECT client_id, id, kind, name, created_by, token_generation, updated_at "
                "FROM access_keys ORDER BY client_id"
            )
        ).all()
        rules = conn.execute(
            sa.text(
                "SELECT subject_type, subject_id, updated_at, deleted_at FROM access_rules "
                "ORDER BY id"
            )
        ).all()
        audit = conn.execute(
            sa.text("SELECT actor, subject_type, action FROM audit_log ORDER BY id")
        ).all()
    # Same credentials, now service accounts with ids; the later duplicate name is renamed.
    assert [(k.client_id, k.kind, k.name, k.token_generation) for k in keys] == [
        ("gf-a", "service-account", "ci", 3),
        ("gf-b", "service-account", "ci-2", 3),
        ("gf-c", "service-account", "ops", 3),
    ]
    assert len({uuid.UUID(k.id) for k in keys}) == 3
    assert [k.created_by for k in keys] == ["bootstrap", "admin", "bootstrap"]
    assert all(k.updated_at is not None for k in keys)
    assert [(r.subject_type, r.subject_id, r.deleted_at) for r in rules] == [
        ("service-account", "gf-b", None),
        ("group", "ml", None),
    ]
    assert all(r.updated_at is not None for r in rules)
    assert [tuple(row) for row in audit] == [
        ("admin", "User", "service_account.create"),
        ("gf-b", "App", "token.issue"),
    ]


def test_the_live_set_and_node_pools_keep_their_rows_without_a_rowid(empty_engine):
    # Stored at the head (whose columns the factories write) and carried back to 0013.
    upgrade(empty_engine)
    stored = insert(empty_engine, [workload(currentNodePools=["a", "b"]), workload()])
    _downgrade(empty_engine, "0013")
    ids = sorted(str(item["id"]) for item in stored)
    with empty_engine.begin() as conn:
        conn.execute(usage_open.insert(), [{"workload_id": w, "at_ms": 7} for w in ids])
        pools = conn.execute(sa.select(workload_nodepools).order_by("workload_id", "nodepool"))
        pools = [tuple(row) for row in pools]
    assert len(pools) >= 2
    upgrade(empty_engine)
    with empty_engine.connect() as conn:
        moved = conn.execute(sa.select(workload_nodepools).order_by("workload_id", "nodepool"))
        assert [tuple(row) for row in moved] == pools
        live = conn.execute(sa.select(usage_open).order_by("workload_id")).all()
        assert [tuple(row) for row in live] == [(w, 7) for w in ids]
        if conn.dialect.name == "sqlite":
            schemas = conn.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE name IN ('usage_open', 'workload_nodepools')"
            ).scalars()
            assert [sql.rstrip().endswith("WITHOUT ROWID") for sql in schemas] == [True, True]
            # A deleted workload still takes its node pools with it.
            conn.execute(sa.text("DELETE FROM workloads WHERE id = :id"), {"id": pools[0][0]})
            left = conn.execute(sa.select(sa.func.count()).select_from(workload_nodepools))
            assert left.scalar_one() < len(pools)


def _downgrade(engine: sa.Engine, revision: str) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def _stored_times(conn: sa.Connection) -> list[tuple]:
    return [
        tuple(row)
        for row in conn.execute(
            sa.select(
                workloads.c.id,
                workloads.c.created_at,
                workloads.c.phase_updated_at,
                workloads.c.completed_at,
                workloads.c.seconds_anchor,
            ).order_by(workloads.c.id)
        )
    ]


def test_times_are_carried_to_integers_and_back_exactly(empty_engine):
    """SQLite's ISO text becomes integer microseconds (and back, downgraded), to the
    microsecond, the time totals' anchor computed from them; PostgreSQL is left as it was."""
    started = datetime(2026, 3, 4, 5, 6, 7, 891000, tzinfo=UTC)
    items = [
        workload(phase="Running", phaseUpdatedAt=started, completedAt=None),
        workload(phase="Pending", phaseUpdatedAt=started + timedelta(milliseconds=1)),
        workload(phase="Completed", completedAt=started.replace(microsecond=0)),
    ]
    upgrade(empty_engine)
    insert(empty_engine, items, {items[0]["id"]: SecondsBefore(running=40)})
    with empty_engine.connect() as conn:
        at_head = _stored_times(conn)
    running = next(row for row in at_head if row[0] == items[0]["id"])
    assert running[2] == started
    assert running[4] == 40 - int(started.timestamp())
    _downgrade(empty_engine, "0014")
    upgrade(empty_engine)
    with empty_engine.connect() as conn:
        assert _stored_times(conn) == at_head
        if conn.dialect.name == "sqlite":
            kinds = conn.exec_driver_sql(
                "SELECT DISTINCT typeof(created_at), typeof(phase_updated_at) FROM workloads"
            ).all()
            assert kinds == [("integer", "integer")]
    if empty_engine.dialect.name == "sqlite":
        _downgrade(empty_engine, "0014")
        with empty_engine.connect() as conn:
            texts = conn.exec_driver_sql(
                "SELECT phase_updated_at, seconds_anchor FROM workloads WHERE id = ?",
                (items[0]["id"],),
            ).one()
        assert tuple(texts) == ("2026-03-04 05:06:07.891000", running[4])


def test_sqlite_times_of_every_iso_spelling_convert_exactly_and_a_cut_short_run_completes(
    tmp_path,
):
    """Migration 0015 reads what any writer may have left (a 'T', a short fraction, a zone),
    and a run cut short after its first steps (SQLite's driver commits DDL as it goes) is
    completed by the next one."""
    engine = create_store_engine(Settings(database_url=f"sqlite:///{tmp_path / 'old.db'}"))
    upgrade(engine, "0014")
    spellings = {
        "2026-12-06 04:40:02.123456": datetime(2026, 12, 6, 4, 40, 2, 123456, tzinfo=UTC),
        "2026-12-06 04:40:02": datetime(2026, 12, 6, 4, 40, 2, tzinfo=UTC),
        "2026-12-06T04:40:02.5+00:00": datetime(2026, 12, 6, 4, 40, 2, 500000, tzinfo=UTC),
        "2026-12-06 04:40:02.123Z": datetime(2026, 12, 6, 4, 40, 2, 123000, tzinfo=UTC),
        "2026-12-06 06:40:02.25+02:00": datetime(2026, 12, 6, 4, 40, 2, 250000, tzinfo=UTC),
    }
    with engine.begin() as conn:
        for n, text in enumerate(spellings):
            conn.execute(
                sa.text(
                    "INSERT INTO clusters (id, name, tenant_id, created_at, updated_at) "
                    "VALUES (:id, :name, 1, :t, :t)"
                ),
                {"id": f"c{n}", "name": f"cluster-{n}", "t": text},
            )
        # The first steps of a run that was then killed.
        for index in ("ix_workloads_anchor_pending", "ix_workloads_anchor_running"):
            conn.exec_driver_sql(f"DROP INDEX {index}")
        conn.exec_driver_sql("ALTER TABLE workloads DROP COLUMN seconds_anchor")
    upgrade(engine)
    with engine.connect() as conn:
        read = conn.execute(sa.select(clusters.c.id, clusters.c.created_at).order_by("id")).all()
        options = {"compare_type": True, "include_object": schema_of("sqlite")}
        differences = compare_metadata(MigrationContext.configure(conn, opts=options), metadata)
    engine.dispose()
    assert [created for _, created in read] == list(spellings.values())
    assert differences == []


def test_live_workloads_take_their_first_requested_node_pool_from_their_documents(empty_engine):
    gone = datetime(2026, 3, 4, tzinfo=UTC)
    items = [
        workload(phase="Pending", requestedNodePools=["h100", "a100"], currentNodePools=[]),
        workload(phase="Running", requestedNodePools=[], currentNodePools=["a100"]),
        workload(phase="Running", requestedNodePools=["h100"], deletedAt=gone),
        # Stored before ingest checked pool names: one no pool column holds counts in none.
        workload(phase="Pending", requestedNodePools=["x" * 300], currentNodePools=[]),
    ]
    upgrade(empty_engine)
    insert(empty_engine, items)
    _downgrade(empty_engine, "0016")
    upgrade(empty_engine)
    with empty_engine.connect() as conn:
        pools = dict(conn.execute(sa.select(workloads.c.id, workloads.c.requested_nodepool)).all())
    assert [pools[item["id"]] for item in items] == ["h100", None, None, None]


def test_rules_granted_twice_keep_their_oldest_copy_in_force(empty_engine):
    upgrade(empty_engine, "0019")
    created = datetime(2026, 1, 2, tzinfo=UTC)
    rules = sa.table(
        "access_rules",
        *(
            sa.column(name)
            for name in ("subject_type", "subject_id", "role", "scope_type", "scope_id")
        ),
        sa.column("created_at", UtcDateTime),
        sa.column("updated_at", UtcDateTime),
        sa.column("deleted_at", UtcDateTime),
        sa.column("created_by"),
    )
    grant = {"subject_type": "user", "role": "viewer", "scope_type": "project", "scope_id": "p1"}
    times = {"created_at": created, "updated_at": created, "created_by": "admin"}
    with empty_engine.begin() as conn:
        conn.execute(
            rules.insert(),
            [
                {**grant, **times, "subject_id": "ann", "deleted_at": None},  # kept
                {**grant, **times, "subject_id": "ann", "deleted_at": created},  # revoked before
                {**grant, **times, "subject_id": "ann", "deleted_at": None},  # a copy: revoked
                {**grant, **times, "subject_id": "bob", "deleted_at": None},  # another subject
            ],
        )
    upgrade(empty_engine)
    with empty_engine.connect() as conn:
        kept = conn.execute(
            sa.select(sa.column("id"), sa.column("subject_id"), rules.c.deleted_at)
            .select_from(rules)
            .order_by(sa.column("id"))
        ).all()
    assert [(row.subject_id, row.deleted_at is None) for row in kept] == [
        ("ann", True),
        ("ann", False),
        ("ann", False),
        ("bob", True),
    ]
    assert kept[1].deleted_at == created and kept[2].deleted_at > created
