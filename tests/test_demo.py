"""The demo organisation: deterministic, consistent, valid against the contract, and seedable."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from gpufleet.cli import main as cli_main
from gpufleet.core.roles import TENANT_ID
from gpufleet.demo import seed as demo_seed
from gpufleet.demo.organisation import CLUSTERS, DEPARTMENTS, PROJECTS
from gpufleet.demo.resources import HOLDING_PHASES
from gpufleet.demo.seed import seed_demo, seed_if_empty
from gpufleet.demo.workloads import DemoWorkload, generate_workloads
from gpufleet.schemas.enums import TERMINAL_PHASES, Phase
from gpufleet.schemas.workloads import QUANTITY_PATTERN, WorkloadDetailed
from gpufleet.settings import Settings
from gpufleet.store.engine import create_store_engine
from gpufleet.store.tables import (
    clusters,
    created_on,
    departments,
    projects,
    workload_nodepools,
    workloads,
)
from tests.support.reference import ReferenceValidators, load_reference

ANCHOR = datetime(2026, 3, 14, 15, 9, tzinfo=UTC)
QUANTITY = re.compile(QUANTITY_PATTERN)


def generated(seed: int, count: int, anchor: datetime = ANCHOR) -> list[dict[str, Any]]:
    return [workload.wire for workload in generate_workloads(seed, 0, count, anchor)]


@pytest.fixture(scope="module")
def simulated() -> list[DemoWorkload]:
    """A few thousand workloads of two seeds: every invariant is checked on each of them."""
    return [*generate_workloads(1, 0, 2500, ANCHOR), *generate_workloads(2, 0, 1500, ANCHOR)]


@pytest.fixture(scope="module")
def sample(simulated) -> list[dict[str, Any]]:
    """The wire documents of ``simulated``."""
    return [workload.wire for workload in simulated]


# Determinism


def test_same_seed_and_anchor_give_the_same_workloads():
    assert generated(11, 300) == generated(11, 300)


def test_a_workload_does_not_depend_on_the_batch_it_is_generated_in():
    whole = list(generate_workloads(11, 0, 120, ANCHOR))
    pieces = [
        workload
        for start in range(0, 120, 50)
        for workload in generate_workloads(11, start, min(50, 120 - start), ANCHOR, run_start=0)
    ]
    assert pieces == whole


def test_different_seeds_give_different_workloads():
    first, second = generated(11, 200), generated(12, 200)
    assert not {w["id"] for w in first} & {w["id"] for w in second}
    assert [w["type"] for w in first] != [w["type"] for w in second]


def test_the_anchor_moves_every_time_with_it():
    later = ANCHOR + timedelta(days=3)
    for before, after in zip(generated(5, 100), generated(5, 100, later), strict=True):
        assert after["id"] == before["id"]
        assert after["createdAt"] - before["createdAt"] == timedelta(days=3)
        assert after["phaseUpdatedAt"] - before["phaseUpdatedAt"] == timedelta(days=3)


# The shape of the organisation


def test_every_phase_appears_in_a_hundred_workloads():
    for seed in (1, 2, 3):
        phases = {w["phase"] for w in generated(seed, 100) if w["deletedAt"] is None}
        assert phases == {phase.value for phase in Phase}


def test_the_phase_mix_is_realistic(sample):
    share = Counter(w["phase"] for w in sample)
    total = len(sample)
    assert share["Running"] / total > 0.25
    assert share["Completed"] / total > 0.15
    assert 0.03 < share["Pending"] / total < 0.2
    assert 0.02 < share["Failed"] / total < 0.15
    rare = ("Creating", "Resuming", "Stopping", "Deleting", "Terminating", "Unknown")
    assert all(share[phase] / total < 0.03 for phase in rare)


def test_native_and_third_party_kinds_are_both_present(sample):
    types = Counter(w["type"] for w in sample)
    native = {"Workspace", "Training", "Distributed", "Inference", "DistributedInference"}
    third_party = {"Job", "PyTorchJob", "MPIJob", "TFJob", "RayCluster", "RayJob", "Deployment"}
    third_party |= {"StatefulSet", "InferenceService", "LeaderWorkerSet", "NIMService", "Pod"}
    assert native <= set(types)
    assert third_party <= set(types)
    for item in sample:
        assert item["category"] in ("Build", "Train", "Deploy")
        if item["type"] not in native and item["type"] != "NIMService":
            assert item["source"] == "Other"
        assert (item["priority"] < 100) == item["preemptible"]


def test_distributed_kinds_name_their_framework(sample):
    frameworks = {"PyTorch", "MPI", "TF", "XGBoost", "JAX"}
    for item in sample:
        if item["type"] in ("Distributed", "PyTorchJob", "MPIJob", "TFJob", "XGBoostJob"):
            assert item["distributedFramework"] in frameworks
        elif item["type"] in ("Workspace", "Inference", "Deployment", "Pod"):
            assert item["distributedFramework"] is None


def test_workloads_belong_to_the_organisation(sample):
    by_id = {project.id: project for project in PROJECTS}
    for item in sample:
        project = by_id[item["projectId"]]
        assert item["projectName"] == project.name
        assert item["namespace"] == f"runai-{project.name}"
        assert item["departmentId"] == project.department.id
        assert item["clusterId"] == project.department.cluster.id
        # The server's one tenant, the one its access rules name.
        assert item["tenantId"] == TENANT_ID
        pools = {pool.name for pool in project.department.cluster.nodepools}
        assert set(item["requestedNodePools"]) <= pools
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", item["name"]), item["name"]
    assert len({item["name"] for item in sample[:2500]}) == 2500


# Time


def test_timestamps_are_ordered_and_never_after_the_anchor(sample):
    for item in sample:
        created, phase_at = item["createdAt"], item["phaseUpdatedAt"]
        assert created <= phase_at <= item["k8sPhaseUpdatedAt"] <= item["updatedAt"] <= ANCHOR
        for condition in item["conditions"]:
            assert created <= condition["lastTransitionTime"] <= item["updatedAt"]
        if item["deletedAt"] is not None:
            assert item["updatedAt"] <= item["deletedAt"] <= ANCHOR


def test_completed_at_exactly_on_finished_workloads(sample):
    for item in sample:
        if item["phase"] in TERMINAL_PHASES:
            assert item["completedAt"] == item["phaseUpdatedAt"]
        else:
            assert item["completedAt"] is None


def test_some_workloads_are_deleted_and_they_are_settled(sample):
    deleted = [item for item in sample if item["deletedAt"] is not None]
    assert 0.02 < len(deleted) / len(sample) < 0.1
    for item in deleted:
        assert item["phase"] in ("Completed", "Failed", "Stopped")
        assert item["runningPods"] == 0
        assert item["allocatedResources"]["gpu"] == 0


def test_accumulated_times_fit_in_the_life_of_the_workload(simulated):
    for workload in simulated:
        item, pending, running = workload.wire, workload.before.pending, workload.before.running
        assert pending >= 0 and running >= 0
        lived = (item["phaseUpdatedAt"] - item["createdAt"]).total_seconds()
        assert pending + running <= lived
        if item["phase"] in ("Completed", "Degraded", "Stopping", "Updating"):
            assert running > 0, item
        if item["phase"] == "Creating":
            assert pending == running == 0


# Resources


def test_gpu_requests_match_allocations(sample):
    modes = Counter()
    for item in sample:
        requested = item["workloadRequestedResources"]
        per_pod = item["podsRequestedResources"]
        allocated = item["allocatedResources"]
        pods = item["requestedPods"]["number"]
        kind = requested.get("gpuRequestType")
        holding = item["phase"] in HOLDING_PHASES and item["deletedAt"] is None
        if kind == "portion":
            each = per_pod["gpu"]["request"]
            modes["whole" if each >= 1 else "fraction"] += 1
            assert (each >= 1 and each == int(each)) or each in (0.25, 0.5)
            assert requested["gpu"]["request"] == pytest.approx(each * pods)
            expected = requested["gpu"]["request"] if holding else 0
            assert allocated["gpu"] == pytest.approx(expected)
        elif kind == "memory":
            modes["memory"] += 1
            assert re.fullmatch(r"\d+Gi", per_pod["gpuMemory"]["request"])
            assert "gpu" not in per_pod
            assert (allocated["gpu"] > 0) == holding
            assert allocated["gpu"] <= pods
        else:
            modes["none"] += 1
            assert allocated["gpu"] == 0
        if not holding:
            assert item["runningPods"] == 0
            assert not item.get("currentNodePools")
        else:
            assert item["currentNodePools"][0] in item["requestedNodePools"]
        assert 0 <= item["runningPods"] <= pods
        if item["phase"] == "Running":
            assert item["runningPods"] == pods
        idle = item.get("idleAllocatedGpus")
        if idle is not None:
            assert 0 < idle <= allocated["gpu"]
            assert item.get("idleGpus", 0) <= idle
    assert all(modes[mode] > 50 for mode in ("whole", "fraction", "memory", "none")), modes


def test_quantities_match_the_reference_pattern(sample):
    for item in sample:
        for resources in (item["workloadRequestedResources"], item["podsRequestedResources"]):
            for field in ("gpuMemory", "cpuMemory"):
                for value in (resources.get(field) or {}).values():
                    assert value is None or QUANTITY.fullmatch(value), value
            for extended in resources.get("extendedResources") or []:
                assert isinstance(extended["quantity"], str)
        for field in ("gpuMemory", "cpuMemory"):
            assert QUANTITY.fullmatch(item["allocatedResources"][field])


def test_pending_workloads_explain_themselves(sample):
    pending = [item for item in sample if item["phase"] == "Pending"]
    with_reason = [item for item in pending if item["phaseReason"] is not None]
    assert all(item["phaseMessage"] for item in pending)
    assert 0.5 < len(with_reason) / len(pending) < 0.95
    for item in with_reason:
        messages = item["pendingSchedulingMessages"]
        assert [m["nodePool"] for m in messages] == item["requestedNodePools"]
        assert messages[0]["phaseReason"] == item["phaseReason"]
        if not item["preemptible"]:
            continue
        assert item["phaseReason"] == "OverLimit"
    for item in sample:
        if item["phase"] != "Pending":
            assert item["phaseReason"] is None
            assert item["pendingSchedulingMessages"] is None


def test_optional_details_appear_on_some_workloads(sample):
    present = Counter(key for item in sample for key, value in item.items() if value)
    for key in ("guaranteedRuntimeEndsAt", "aiApplicationId", "idleAllocatedGpus", "urls"):
        assert present[key] > 10, key
    for key in ("environments", "datasources", "externalConnections", "sourceApi"):
        assert present[key] > 10, key
    assert any(not item["submittedBy"].isascii() for item in sample if item["submittedBy"])
    assert any(not item["phaseMessage"].isascii() for item in sample if item["phaseMessage"])


# The contract


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_generated_workload_validates_as_workload_detailed(seed):
    for item in generated(seed, 1000):
        WorkloadDetailed.model_validate(item)


@pytest.fixture(scope="module")
def reference_validators():
    validators = ReferenceValidators(load_reference("workloads-openapi.json"))
    return validators.response("/api/v1/workloads"), validators.schema("WorkloadDetailed")


def test_api_output_of_a_seeded_store_validates_against_the_reference(
    client, engine, reference_validators
):
    list_validator, detail_validator = reference_validators
    seed_demo(engine, workloads=400, seed=4)
    seen = 0
    for deleted in ("false", "true"):
        offset = 0
        while offset is not None:
            response = client.get(
                "/api/v1/workloads", params={"limit": 500, "offset": offset, "deleted": deleted}
            )
            assert response.status_code == 200, response.text
            body = response.json()
            list_validator.validate(body)
            seen += len(body["workloads"])
            offset = body.get("next")
    assert seen == 400
    rows = _stored(engine)
    for row in rows[::20]:
        response = client.get(f"/api/v1/workloads/{row['id']}")
        assert response.status_code == 200, response.text
        detail_validator.validate(response.json())


def test_deleted_workloads_are_listed_only_when_asked_for(client, engine):
    seed_demo(engine, workloads=300, seed=8, metrics_history=False)
    live = client.get("/api/v1/workloads/count").json()["count"]
    gone = client.get("/api/v1/workloads/count", params={"deleted": "true"}).json()["count"]
    assert live + gone == 300
    assert 0 < gone < 40
    listed = client.get("/api/v1/workloads", params={"deleted": "true", "limit": 500}).json()
    assert all(item["deletedAt"] for item in listed["workloads"])


def test_the_server_totals_continue_the_simulated_history(client, engine):
    anchor = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=5)
    simulated = generate_workloads(6, 0, 200, anchor, run_start=0)
    expected = {workload.wire["id"]: workload for workload in simulated}
    seed_demo(engine, workloads=200, seed=6, anchor=anchor, metrics_history=False)
    listed = client.get("/api/v1/workloads", params={"limit": 500}).json()["workloads"]
    for item in listed:
        source = expected[item["id"]]
        pending, running = source.before.pending, source.before.running
        in_phase = (datetime.now(UTC) - source.wire["phaseUpdatedAt"]).total_seconds()
        if item["phase"] == "Pending":
            assert pending + in_phase - 120 <= item["totalPendingTimeSeconds"] <= pending + in_phase
            assert item["totalRunningTimeSeconds"] == running
        elif item["phase"] == "Running":
            assert running + in_phase - 120 <= item["totalRunningTimeSeconds"] <= running + in_phase
            assert item["totalPendingTimeSeconds"] == pending
        else:
            assert item["totalPendingTimeSeconds"] == pending
            assert item["totalRunningTimeSeconds"] == running


# Seeding


def _stored(engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(row) for row in conn.execute(sa.select(workloads)).mappings()]


def _organisation_counts(engine) -> tuple[int, int, int]:
    with engine.connect() as conn:
        return tuple(
            conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            for table in (clusters, departments, projects)
        )


def test_seeding_writes_the_organisation_once(engine):
    seed_demo(engine, workloads=20, seed=1, anchor=ANCHOR, metrics_history=False)
    seed_demo(engine, workloads=20, seed=2, anchor=ANCHOR, metrics_history=False)
    assert _organisation_counts(engine) == (len(CLUSTERS), len(DEPARTMENTS), len(PROJECTS))
    assert len(CLUSTERS) == 2 and len(DEPARTMENTS) == 3 and len(PROJECTS) >= 10


def test_seeding_again_adds_without_colliding(engine):
    assert seed_demo(engine, workloads=150, seed=3, anchor=ANCHOR, metrics_history=False) == 150
    assert seed_demo(engine, workloads=150, seed=3, anchor=ANCHOR, metrics_history=False) == 150
    rows = _stored(engine)
    assert len(rows) == 300
    assert len({row["id"] for row in rows}) == 300
    assert len({row["name"] for row in rows}) == 300


def test_a_seeded_store_is_reproducible(engine):
    seed_demo(engine, workloads=120, seed=9, anchor=ANCHOR, metrics_history=False)
    expected = {item["id"] for item in generated(9, 120)}
    assert {row["id"] for row in _stored(engine)} == expected


def test_seed_if_empty_only_seeds_an_empty_store(engine):
    assert seed_if_empty(engine, workloads=50, seed=1, anchor=ANCHOR, metrics_history=False) == 50
    assert seed_if_empty(engine, workloads=50, seed=2, anchor=ANCHOR, metrics_history=False) == 0
    assert len(_stored(engine)) == 50


def test_every_batch_is_handed_to_the_after_batch_hook(engine):
    calls: list[tuple[int, datetime]] = []

    def after_batch(conn, batch, anchor):
        # Inside the batch's transaction: the batch is already visible.
        stored = conn.execute(sa.select(sa.func.count()).select_from(workloads)).scalar_one()
        assert stored >= len(batch)
        calls.append((len(batch), anchor))

    seed_demo(
        engine,
        workloads=130,
        seed=2,
        anchor=ANCHOR,
        batch_size=50,
        after_batch=after_batch,
        metrics_history=False,
    )
    assert calls == [(50, ANCHOR), (50, ANCHOR), (30, ANCHOR)]


def test_a_bulk_load_generates_alongside_and_rebuilds_every_index(engine, monkeypatch):
    monkeypatch.setattr(demo_seed, "BULK_LOAD_FROM", 100)
    seed_demo(engine, workloads=120, seed=2, anchor=ANCHOR, batch_size=50, metrics_history=False)
    inspector = sa.inspect(engine)
    for table in (workloads, workload_nodepools):
        stored = {index["name"] for index in inspector.get_indexes(table.name)}
        assert {i.name for i in table.indexes if created_on(i, engine.dialect.name)} <= stored
    # Generated in another process, yet exactly the workloads of the serial generator.
    expected = {item["id"]: item["name"] for item in generated(2, 120)}
    assert {row["id"]: row["name"] for row in _stored(engine)} == expected


def test_bad_arguments_are_refused(engine):
    with pytest.raises(ValueError, match="negative"):
        seed_demo(engine, workloads=-1, seed=1)
    with pytest.raises(ValueError, match="timezone"):
        seed_demo(engine, workloads=1, seed=1, anchor=datetime(2026, 1, 1))
    assert seed_demo(engine, workloads=0, seed=1, metrics_history=False) == 0


def test_the_cli_seeds_a_database(database_url, capsys):
    arguments = ["demo", "seed", "--workloads", "300", "--seed", "3"]
    assert cli_main([*arguments, "--database-url", database_url]) == 0
    assert "seeded 300 workloads" in capsys.readouterr().out
    engine = create_store_engine(Settings(database_url=database_url))
    try:
        rows = _stored(engine)
        assert len(rows) == 300
        assert {row["phase"] for row in rows} == {phase.value for phase in Phase}
    finally:
        engine.dispose()


def test_progress_without_a_terminal_is_a_line_every_tenth(engine, capsys):
    seed_demo(
        engine,
        workloads=200,
        seed=1,
        anchor=ANCHOR,
        batch_size=20,
        progress=True,
        metrics_history=False,
    )
    lines = capsys.readouterr().err.splitlines()
    assert lines[-1] == "seeded 200 of 200 demo workloads"
    assert len([line for line in lines if line.startswith("seeded ")]) == 10


# Pods, history and events of the demo's workloads


def _details(client, workload_id: str) -> tuple[list, list, list]:
    base = f"/api/v1/workloads/{workload_id}"
    pods = client.get(f"{base}/pods", params={"limit": 500}).json()["pods"]
    history = client.get(f"{base}/history", params={"limit": 500}).json()["records"]
    events = client.get(f"{base}/events", params={"limit": 500}).json()["events"]
    return pods, history, events


def test_every_demo_workload_has_consistent_pods_history_and_events(client, engine):
    adjacent = ReferenceValidators(load_reference("runai-adjacent-openapi.json"))
    seed_demo(engine, workloads=240, seed=5, metrics_history=False)
    listed = client.get("/api/v1/workloads", params={"limit": 500}).json()["workloads"]
    by_phase: dict[str, list[dict]] = {}
    for item in listed:
        by_phase.setdefault(item["phase"], []).append(item)
    # A few of every phase: enough for each rule, cheap enough to read one by one.
    chosen = [item for items in by_phase.values() for item in items[:4]]
    reasons: Counter = Counter()
    for item in chosen:
        pods, history, events = _details(client, item["id"])
        running = [p for p in pods if p["k8sPhase"] == "Running"]
        assert len(running) == item["runningPods"], item["id"]
        placed = [p for p in pods if p["nodeName"] and p["k8sPhase"] in ("Running", "Pending")]
        gpus = sum((p.get("allocatedResources") or {}).get("gpu") or 0 for p in placed)
        assert gpus == pytest.approx(item["allocatedResources"]["gpu"] or 0), item["id"]
        assert all(p["nodeName"] for p in running)
        phases = [r["spec"]["phaseUpdate"] for r in history if r["meta"]["type"] == "PhaseUpdate"]
        assert phases[0]["phase"] == item["phase"]
        assert phases[-1]["phase"] == "Creating"
        assert history[-1]["meta"]["creationTimestamp"] == item["createdAt"]
        reasons.update(f"{item['phase']}:{e['reason']}" for e in events)
        if item["phase"] == "Pending":
            failed = [e for e in events if e["reason"] == "FailedScheduling"]
            assert failed and "Insufficient nvidia.com/gpu" in failed[0]["message"]
        if item["phase"] == "Failed":
            assert {e["reason"] for e in events} & {"OOMKilled", "BackOff"}
        base = "/api/v1/workloads/{workloadId}"
        adjacent.response(f"{base}/pods").validate({"pods": pods})
        adjacent.response(f"{base}/history").validate({"records": history})
        adjacent.response(f"{base}/events").validate({"events": events})
    assert reasons["Running:Scheduled"] > 0
    assert reasons["Failed:OOMKilled"] + reasons["Failed:BackOff"] > 0
