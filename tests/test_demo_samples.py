"""The demo's samples of steady work read as a real job's do when sampled every 30 seconds:
an evaluation or checkpoint dip lasts minutes rather than one sample, and GPU memory, which a
framework's allocator holds once taken, does not follow the dips; a pod's GPUs are labelled by
their index on the node, as dcgm-exporter labels them."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from itertools import groupby

import pytest

from gpufleet.demo.sim.engine import Simulation
from gpufleet.demo.sim.samples import DIP_SECONDS
from gpufleet.demo.sim.teams import STEADY
from gpufleet.metrics.types import PodMetricType as PM
from gpufleet.metrics.types import WorkloadMetricType as M

START = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)  # a Tuesday morning
HOUR_TICKS = 120


@pytest.fixture(scope="module")
def steady_hour() -> dict[str, dict[str, list[float]]]:
    """Per steady workload running the whole hour: its GPU 0 utilisation and memory, and its
    CPU memory, every 30 seconds."""
    simulation = Simulation(5, START, warm_up=timedelta(hours=6))
    series: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for _ in range(HOUR_TICKS):
        step = simulation.step(sample=True, pods=False)
        for _, sample in step.samples:
            labels = sample.get("labels") or {}
            if labels.get("gpu", "0") != "0":
                continue
            series[sample["workloadId"]][sample["type"]].append(sample["value"])
    steady = {job.id for job in simulation.jobs.values() if job.work.character == STEADY}
    return {
        wid: types
        for wid, types in series.items()
        if wid in steady and len(types[M.GPU_UTILIZATION.value]) == HOUR_TICKS
    }


def test_a_dip_lasts_its_window_not_one_sample(steady_hour):
    assert len(steady_hour) >= 5
    per_window = DIP_SECONDS // 30
    dips = 0
    for workload_id, types in steady_hour.items():
        low = [busy < 60 for busy in types[M.GPU_UTILIZATION.value]]
        runs = [(key, len(list(run))) for key, run in groupby(low)]
        for index, (dipped, length) in enumerate(runs):
            if not dipped:
                continue
            dips += 1
            at_an_edge = index in (0, len(runs) - 1)
            assert at_an_edge or length % per_window == 0, (workload_id, runs)
    # Some dips happened in the hour: the test saw what it checks.
    assert dips >= 3


def test_memory_is_held_through_the_dips(steady_hour):
    for workload_id, types in steady_hour.items():
        for metric_type in (M.GPU_MEMORY_USAGE_BYTES, M.CPU_MEMORY_USAGE_BYTES):
            values = types[metric_type.value]
            assert max(values) <= 1.04 * min(values), (workload_id, metric_type)


def test_a_pods_gpus_are_labelled_by_their_index_on_the_node():
    simulation = Simulation(5, START, warm_up=timedelta(hours=6))
    step = simulation.step(sample=True)
    pods = {pod.uid: (job, pod) for job in simulation.jobs.values() for pod in job.bound}
    holders: dict[tuple[str, str], set[str]] = defaultdict(set)
    for _, sample in step.samples:
        if sample["type"] != PM.GPU_UTILIZATION_PER_GPU.value:
            continue
        job, pod = pods[sample["podId"]]
        gpu = sample["labels"]["gpu"]
        assert gpu in {str(index) for index in pod.devices}, (pod.name, gpu, pod.devices)
        if job.gpus >= 1:
            holders[(pod.node.name, gpu)].add(pod.uid)
    # Pods holding whole GPUs on one node report different devices, not each its own 0, 1, …
    assert len(holders) > 20
    assert all(len(uids) == 1 for uids in holders.values()), holders
