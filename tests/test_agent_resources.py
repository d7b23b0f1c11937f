"""Requested and allocated resources: quantities, GPU sharing annotations, templates."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gpufleet.agent.kinds import BY_KEY
from gpufleet.agent.resources import images_of, pod_resources, templates_of
from gpufleet.core.quantities import format_bytes, parse_quantity


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("500m", Decimal("0.5")),
        ("2", Decimal(2)),
        (3, Decimal(3)),
        (1.5, Decimal("1.5")),
        ("2Gi", Decimal(2 * 2**30)),
        ("512Mi", Decimal(512 * 2**20)),
        ("1G", Decimal(10**9)),
        ("100k", Decimal(100_000)),
        ("1e3", Decimal(1000)),
        ("250u", Decimal("0.00025")),
    ],
)
def test_quantities_parse(raw: object, expected: Decimal) -> None:
    assert parse_quantity(raw) == expected


@pytest.mark.parametrize(
    "raw", ["", " ", "abc", "-1", "1Zi", "1e999999", "NaN", "inf", None, True, [], "1'; DROP TABLE"]
)
def test_malformed_quantities_are_ignored(raw: object) -> None:
    assert parse_quantity(raw) is None


def test_bytes_format_in_the_largest_exact_unit() -> None:
    assert format_bytes(2 * 2**30) == "2Gi"
    assert format_bytes(1536 * 2**20) == "1536Mi"
    assert format_bytes(1000) == "1000"
    assert format_bytes(0) == "0"
    assert format_bytes(None) is None


def spec(*containers: dict, init: tuple[dict, ...] = ()) -> dict:
    return {"containers": list(containers), "initContainers": list(init)}


def container(requests: dict | None = None, limits: dict | None = None) -> dict:
    return {
        "name": "c",
        "image": "i",
        "resources": {"requests": requests or {}, "limits": limits or {}},
    }


def test_containers_sum_and_init_containers_raise_the_floor() -> None:
    result = pod_resources(
        spec(
            container({"cpu": "1", "memory": "1Gi"}),
            container({"cpu": "500m"}, {"cpu": "2"}),
            init=(container({"cpu": "4"}),),
        ),
        {},
    )
    assert result.cpu_request == Decimal(4)
    assert result.memory_request == Decimal(2**30)
    assert result.cpu_limit == Decimal(2)


def test_whole_gpus_are_a_portion_request() -> None:
    result = pod_resources(spec(container(limits={"nvidia.com/gpu": "4"})), {})
    assert (result.gpu_request, result.gpu_request_type) == (Decimal(4), "portion")
    assert result.requested_wire()["gpu"] == {"request": 4.0, "limit": 4.0}


def test_fraction_times_devices_with_limit() -> None:
    annotations = {
        "gpu-fraction": "0.5",
        "gpu-fraction-num-devices": "3",
        "gpu-fraction-limit": "0.75",
    }
    result = pod_resources(spec(container()), annotations)
    assert result.gpu_request == Decimal("1.5")
    assert result.gpu_limit == Decimal("2.25")
    assert result.gpu_request_type == "portion"


def test_gpu_memory_in_mib_per_device() -> None:
    result = pod_resources(
        spec(container()), {"gpu-memory": "2048", "gpu-fraction-num-devices": "2"}
    )
    assert result.gpu_request_type == "memory"
    assert result.requested_wire()["gpuMemory"]["request"] == "4Gi"
    assert result.requested_wire()["gpu"]["request"] is None


@pytest.mark.parametrize("bad", ["1.5", "0", "-0.5", "half", "1e400"])
def test_bad_fractions_do_not_count(bad: str) -> None:
    result = pod_resources(spec(container()), {"gpu-fraction": bad})
    assert result.gpu_request == 0
    assert result.gpu_request_type is None


def test_mig_and_other_extended_resources_are_listed() -> None:
    result = pod_resources(
        spec(container(limits={"nvidia.com/mig-1g.10gb": "2", "example.com/fpga": "1"})), {}
    )
    assert result.requested_wire()["extendedResources"] == [
        {"resource": "example.com/fpga", "quantity": "1", "exclude": False},
        {"resource": "nvidia.com/mig-1g.10gb", "quantity": "2", "exclude": False},
    ]
    assert result.gpu_request == 0


def test_add_sums_pods_and_keeps_unset_limits_unset() -> None:
    total = pod_resources(spec(container({"cpu": "1"})), {})
    total.add(pod_resources(spec(container({"cpu": "2"})), {}), times=3)
    assert total.cpu_request == Decimal(7)
    assert total.cpu_limit is None
    assert total.requested_wire()["cpu"] == {"request": 7.0, "limit": None}


def test_templates_of_ray_cluster_count_hosts() -> None:
    cluster = {
        "spec": {
            "headGroupSpec": {"template": {"spec": spec(container())}},
            "workerGroupSpecs": [
                {"replicas": 2, "numOfHosts": 2, "template": {"spec": spec(container())}},
                {"replicas": 1, "template": {"spec": spec(container())}},
            ],
        }
    }
    assert [t.pods for t in templates_of(BY_KEY["RayCluster.ray.io"], cluster)] == [1, 4, 1]


def test_templates_of_lws_multiply_groups_by_size() -> None:
    lws = {
        "spec": {"replicas": 3, "leaderWorkerTemplate": {"size": 4, "workerTemplate": {"spec": {}}}}
    }
    assert [
        t.pods for t in templates_of(BY_KEY["LeaderWorkerSet.leaderworkerset.x-k8s.io"], lws)
    ] == [12]


def test_templates_tolerate_garbage_replica_counts() -> None:
    job = {"spec": {"parallelism": "many", "template": {"spec": spec(container())}}}
    assert [t.pods for t in templates_of(BY_KEY["Job.batch"], job)] == [1]
    job["spec"]["parallelism"] = -5
    assert [t.pods for t in templates_of(BY_KEY["Job.batch"], job)] == [0]


def test_images_in_order_without_duplicates() -> None:
    specs = [
        {
            "initContainers": [{"image": "init:1"}],
            "containers": [{"image": "a:1"}, {"image": "b:1"}],
        },
        {"containers": [{"image": "a:1"}, {"name": "no-image"}]},
    ]
    assert images_of(specs) == ["init:1", "a:1", "b:1"]
