"""The living demo's simulation over a simulated day: nodes never over-allocated, every phase
change legal for its kind, histories that end in the current phase, pending reasons true at the
time, and the same fleet for the same seed."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from gpufleet.core.times import format_rfc3339
from gpufleet.demo.sim.engine import Simulation
from gpufleet.demo.sim.fleet import EPSILON, GPUS_PER_NODE
from gpufleet.demo.sim.lifecycle import HOLDING, LEGAL
from gpufleet.demo.sim.scheduler import Usage, fits_without
from gpufleet.demo.sim.teams import TEAMS
from gpufleet.schemas.enums import TERMINAL_PHASES, Phase, PhaseReason

START = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)  # a Monday morning
DAY_TICKS = 2 * 60 * 24


def _check_nodes(simulation: Simulation) -> None:
    """What every node holds is what the pods bound to it hold, within its capacity."""
    held: dict[str, list[float]] = {node.id: [0.0] * GPUS_PER_NODE for node in simulation.nodes}
    cpu: Counter[str] = Counter()
    for job in simulation.jobs.values():
        for pod in job.bound:
            if pod.node is None or (not pod.devices and job.gpus):
                continue
            assert job.phase in HOLDING, (job.name, job.phase)
            for device in pod.devices:
                held[pod.node.id][device] += 1.0 if job.gpus >= 1 else job.gpus
            cpu[pod.node.id] += job.cpu
    for node in simulation.nodes:
        assert all(share <= 1 + EPSILON for share in node.devices), node.name
        expected = held[node.id]
        assert all(abs(a - b) < 1e-6 for a, b in zip(node.devices, expected, strict=True))
        assert abs(node.cpu_used - cpu[node.id]) < 1e-6, node.name
        assert node.cpu_used <= node.cpu_cores + EPSILON
        assert node.memory_used <= node.memory_gib + EPSILON


def _check_pending(simulation: Simulation) -> None:
    """A workload waiting since an earlier tick waits for a reason that is true now."""
    usage = Usage(simulation.jobs.values())
    for job in simulation.jobs.values():
        if job.phase != Phase.PENDING or job.since == simulation.now or job.waits == 0:
            continue
        held, non_preemptible = usage.of(job)
        asked = job.requested_gpus
        if job.reason == PhaseReason.NON_PREEMPTIBLE_OVER_QUOTA:
            assert non_preemptible + asked > job.team.quota.get(job.pool, 0)
            assert job.scheduling and job.scheduling[0]["nodePool"] == job.pool
        elif job.reason == PhaseReason.OVER_LIMIT:
            assert held + asked > job.team.limit[job.pool]
        elif job.message.startswith("Not enough free resources"):
            nodes = [n for n in simulation.nodes if n.cluster is job.cluster and n.pool == job.pool]
            assert not fits_without(job, [], nodes), job.message


def _check_history(job) -> None:
    phases = [phase for phase, _ in job.history]
    times = [at for _, at in job.history]
    assert phases[0] == Phase.CREATING
    assert phases[-1] == job.phase
    assert times == sorted(times) and times[0] == job.created_at and times[-1] == job.since
    for before, after in pairwise(phases):
        assert after in LEGAL[job.kind.type].get(before, ()), (job.kind.type, before, after)
    assert not any(phase in TERMINAL_PHASES for phase in phases[:-1])


@pytest.fixture(scope="module")
def day() -> Simulation:
    simulation = Simulation(13, START)
    simulation.queue_lengths = []
    simulation.events = []
    simulation.outages = []
    for tick in range(DAY_TICKS):
        step = simulation.step(sample=tick % 120 == 0)
        simulation.events.extend(event for _, event in step.events)
        simulation.outages.extend((step.at, n.name) for n in step.nodes if not n.ready)
        # Every tick that bound or released something, and now and then the pending ones.
        if step.workloads or step.deleted:
            _check_nodes(simulation)
        if tick % 30 == 0:
            _check_pending(simulation)
            waiting = [j for j in simulation.jobs.values() if j.phase == Phase.PENDING]
            simulation.queue_lengths.append(len(waiting))
    return simulation


def test_a_day_keeps_every_node_within_capacity_and_every_reason_true(day):
    allocated = sum(node.gpu_used for node in day.nodes)
    capacity = GPUS_PER_NODE * len(day.nodes)
    assert 0.2 * capacity < allocated <= capacity


def test_the_queue_is_never_empty(day):
    """Quiet hours included, something waits (the pending view and the overview's queue always
    have a row): the project with queued work asks for more than its deserved GPUs for
    non-preemptible services, and one of them waits with that reason."""
    assert min(day.queue_lengths[1:]) >= 1
    (team,) = [t for t in TEAMS if t.queued]
    pool = team.queued[0].pool
    waiting = [j for j in day.jobs.values() if j.team is team and j.phase == Phase.PENDING]
    assert any(
        j.pool == pool and j.reason == PhaseReason.NON_PREEMPTIBLE_OVER_QUOTA for j in waiting
    )


def test_every_workload_went_through_legal_phases_to_its_current_one(day):
    everyone = [*day.jobs.values(), *day.finished.values()]
    for job in everyone:
        _check_history(job)
        if job.deleted_at is None and job.phase not in TERMINAL_PHASES:
            assert (job.phase in HOLDING) == any(p.node is not None for p in job.bound)
    seen = Counter(phase for job in everyone for phase, _ in job.history)
    # A day shows the life of a fleet: queueing, preemption, failures, stops and updates.
    for phase in (Phase.PENDING, Phase.RUNNING, Phase.COMPLETED, Phase.FAILED, Phase.TERMINATING,
                  Phase.STOPPED, Phase.UPDATING, Phase.DEGRADED, Phase.DELETING):  # fmt: skip
        assert seen[phase] > 0, phase


def test_every_failed_workload_has_a_failed_event_saying_why(day):
    failed = [job for job in day.finished.values() if job.phase == Phase.FAILED]
    assert len(failed) >= 5
    events: dict[str, list[dict]] = {}
    for event in day.events:
        if event["reason"] == "Failed":
            events.setdefault(event["workloadId"], []).append(event)
    for job in failed:
        (event,) = events.pop(job.id)
        assert event["type"] == "Warning", job.name
        assert (event["message"], event["createdAt"]) == (job.message, format_rfc3339(job.since))
    assert events == {}


def test_every_pod_of_a_started_workload_has_its_started_event(day):
    started = {e["involvedObject"]["uid"] for e in day.events if e["reason"] == "Started"}
    running = [
        job
        for job in day.jobs.values()
        if job.phase == Phase.RUNNING and len(job.bound) > 1
        and all(pod.started_at and pod.started_at > START for pod in job.bound)
    ]  # fmt: skip
    assert len(running) >= 3
    for job in running:
        assert {pod.uid for pod in job.bound} <= started, job.name


def test_a_rollout_replaces_the_pods_under_the_new_revision(day):
    rolled = [job for job in day.jobs.values() if job.revision > 1 and job.phase == Phase.RUNNING]
    assert len(rolled) >= 2
    events = {(e["involvedObject"]["uid"], e["reason"]) for e in day.events}
    for job in rolled:
        updated = [at for (phase, at) in job.history if phase == Phase.UPDATING]
        assert updated, job.name
        for pod in job.bound:
            # Created after the last rollout began: by it (or by a later rescheduling).
            assert pod.created_at > updated[-1], job.name
            assert {(pod.uid, "Scheduled"), (pod.uid, "Started")} <= events, job.name
        if job.kind.type == "Inference":
            assert all(f"-{job.revision:05d}-deployment-" in pod.name for pod in job.bound)


def test_a_node_that_stops_reporting_tells_the_workloads_on_it(day):
    assert day.outages
    everyone = {**day.finished, **day.jobs}
    for at, name in day.outages:
        told = [
            event
            for event in day.events
            if event["reason"] == "NodeNotReady" and event["createdAt"] == format_rfc3339(at)
            and name in event["message"]
        ]  # fmt: skip
        # A node that runs work fails first: its outage is seen in its workloads' events.
        assert told, name
        for event in told:
            job = everyone[event["workloadId"]]
            assert event["involvedObject"]["kind"] == "Pod"
            assert event["source"] == "node-controller"
            # Running work on it is rescheduled at that moment.
            moved = [phase for phase, when in job.history if when == at]
            assert moved in ([], [Phase.TERMINATING]), job.name


# Characters of the names Kubernetes generates.
_GEN = "[bcdfghjklmnpqrstvwxz2456789]"
_POD_NAMES = {
    "Job": rf"-{_GEN}{{5}}",
    "Deployment": rf"-{_GEN}{{10}}-{_GEN}{{5}}",
    "NIMService": rf"-{_GEN}{{10}}-{_GEN}{{5}}",
    "Inference": rf"-[0-9]{{5}}-deployment-{_GEN}{{10}}-{_GEN}{{5}}",
    "InferenceService": rf"-predictor-{_GEN}{{10}}-{_GEN}{{5}}",
    "StatefulSet": r"-\d+",
    "Notebook": r"-\d+",
    "LeaderWorkerSet": r"-\d+",
    "Workspace": r"-\d+-\d+",
    "Training": r"-\d+-\d+",
    "Pod": r"(-\d+)?",
    "Distributed": r"-(master|worker)-\d+",
    "PyTorchJob": r"-(master|worker)-\d+",
    "XGBoostJob": r"-(master|worker)-\d+",
    "TFJob": r"-worker-\d+",
    "JAXJob": r"-worker-\d+",
    "MPIJob": r"-worker-\d+",
    "DistributedInference": r"-0(-\d+)?",
    "RayCluster": rf"-(head|gpu-group-worker)-{_GEN}{{5}}",
    "RayJob": rf"-raycluster-{_GEN}{{5}}-(head|gpu-group-worker)-{_GEN}{{5}}",
    "JobSet": rf"-workers-0-\d+-{_GEN}{{5}}",
}


def test_pods_are_named_as_their_kinds_controller_names_them(day):
    seen = set()
    for job in [*day.jobs.values(), *day.finished.values()]:
        pattern = re.compile(re.escape(job.name) + _POD_NAMES[job.kind.type])
        for pod in job.bound:
            assert pattern.fullmatch(pod.name), (job.kind.type, pod.name)
        assert len({pod.name for pod in job.bound}) == len(job.bound), job.name
        seen.add(job.kind.type)
    assert len(seen) >= 12


def test_names_and_submitters_fit_their_teams(day):
    people = {team.project.id: set(team.people) for team in TEAMS}
    for job in [*day.jobs.values(), *day.finished.values()]:
        assert job.name.split("-")[0] in {t.split("-")[0] for t in job.work.topics}
        if job.source in ("CLI", "Control-plane"):
            assert job.submitted_by in people[job.team.project.id]
        assert job.pool in job.team.quota or job.pool in {w.pool for w in job.team.work}


def test_a_warm_up_keeps_the_past_of_the_workloads_still_there_at_the_start():
    """What ran before the start is dropped; what is still there keeps its records and events
    of the warm-up, tick by tick: its phases as they happened (not begun at the start), and
    each pod of a running workload its ``Scheduled`` and ``Started`` events of then."""
    simulation = Simulation(13, START, warm_up=timedelta(hours=6))
    assert simulation.now == START and not simulation.finished
    reported: dict[str, list[tuple[str, str]]] = {}
    events: dict[str, set[tuple[str, str]]] = {}
    for step in simulation.before_start:
        assert step.at <= START and not step.deleted
        for record in step.workloads:
            assert record["observedAt"] == format_rfc3339(step.at)
            reported.setdefault(record["id"], []).append(
                (record["phase"], record["phaseUpdatedAt"])
            )
        for _, event in step.events:
            assert event["createdAt"] == format_rfc3339(step.at)
            involved = event["involvedObject"]["uid"]
            events.setdefault(event["workloadId"], set()).add((involved, event["reason"]))
    assert set(reported) == set(simulation.jobs)
    earlier = [job for job in simulation.jobs.values() if job.since < START]
    assert len(earlier) >= 20
    for job in simulation.jobs.values():
        _check_history(job)
        history = [(phase.value, format_rfc3339(at)) for phase, at in job.history]
        assert list(dict.fromkeys(reported[job.id])) == history, job.name
        if job.phase == Phase.RUNNING:
            for pod in job.bound:
                assert {(pod.uid, "Scheduled"), (pod.uid, "Started")} <= events[job.id], job.name


def test_the_same_seed_gives_the_same_fleet():
    def run(seed: int) -> list:
        simulation = Simulation(seed, START)
        steps = [simulation.step(sample=tick % 60 == 0) for tick in range(240)]
        return [(s.workloads, s.deleted, s.events, s.samples) for s in steps]

    first = run(5)
    assert first == run(5)
    assert first != run(6)


def test_a_start_must_carry_its_time_zone():
    with pytest.raises(ValueError, match="timezone-aware"):
        Simulation(1, START.replace(tzinfo=None))
    assert Simulation(1, START + timedelta(seconds=1)).start.tzinfo is UTC
