"""The real agent process against the Kubernetes emulator and a real gpufleet server.

Objects are created, progressed, failed, suspended and deleted in the emulator; the server's
records must follow, also across an emulator restart (state reset) and a server outage.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from gpufleet.agent.kinds import INVENTORY_KINDS, KINDS
from tests.support.k8s_emulator import (
    KubernetesEmulator,
    Resource,
    resources_from,
    write_kubeconfig,
)
from tests.support.server import ADMIN_ID, ADMIN_SECRET, ServerProcess

pytestmark = pytest.mark.e2e

CLUSTER_ID = "7c1a4f3e-1b2d-4c5e-8f90-a1b2c3d4e5f6"
NAMESPACE = "runai-team-a"
WAIT = 20.0
# Starting a Python process that imports the whole agent can take far longer than any
# single step on a loaded CI machine; waiting longer costs nothing when it is quick.
START_WAIT = 90.0
CONFIG_NAMESPACE = "gpufleet-system"
CONFIGMAP = "gpufleet-departments"
CONFIGMAP_RESOURCE = Resource("", "v1", "ConfigMap", "configmaps")


class AgentProcess:
    """``gpufleet agent`` as a subprocess with test-friendly timings."""

    def __init__(self, server_url: str, kubeconfig: Path, log_path: Path) -> None:
        self.log_path = log_path
        command = [sys.executable, "-m", "gpufleet.cli", "agent"]
        options = {
            "cluster-id": CLUSTER_ID,
            "server": server_url,
            "client-id": ADMIN_ID,
            "client-secret": ADMIN_SECRET,
            "kubeconfig": str(kubeconfig),
            "health-host": "127.0.0.1",
            "health-port": "0",
            "push-interval-seconds": "0.1",
            "full-sync-seconds": "600",
            "metrics-interval-seconds": "1",
            "crd-retry-seconds": "0.5",
            "backoff-max-seconds": "0.5",
            "watch-timeout-seconds": "5",
            "log-level": "debug",
            "department-configmap": f"{CONFIG_NAMESPACE}/{CONFIGMAP}",
        }
        for name, value in options.items():
            command += [f"--{name}", value]
        env = {k: v for k, v in os.environ.items() if not k.startswith("GPUFLEET_")}
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        self.health_url = self._health_url()

    def _health_url(self) -> str:
        deadline = time.monotonic() + START_WAIT
        while time.monotonic() < deadline:
            found = re.search(r"health on port (\d+)", self.log())
            if found:
                return f"http://127.0.0.1:{found.group(1)}"
            assert self.process.poll() is None, self.log()
            time.sleep(0.05)
        raise AssertionError(f"agent did not start:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> int:
        self.process.terminate()
        try:
            return self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


@pytest.fixture(scope="module")
def server(module_database_url: str, tmp_path_factory) -> Iterator[ServerProcess]:
    """One real server for the module; tests use objects of their own, so they do not clash."""
    with ServerProcess(module_database_url, log_dir=tmp_path_factory.mktemp("server")) as process:
        yield process


@pytest.fixture
def emulator() -> Iterator[KubernetesEmulator]:
    resources = [*resources_from(KINDS), *resources_from(INVENTORY_KINDS), CONFIGMAP_RESOURCE]
    # Ray's and Kueue's CRDs are "not installed": the agent must carry on without them.
    installed = [r for r in resources if r.group not in ("ray.io", "kueue.x-k8s.io")]
    served = KubernetesEmulator(resources, installed=installed, bookmark_interval=0.5).start()
    served.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": CONFIGMAP, "namespace": CONFIG_NAMESPACE},
            "data": {
                "mapping.yaml": "projects: {team-a: research}\ndepartments: {research: {id: '3'}}\n"
            },
        }
    )
    yield served
    served.stop()


@pytest.fixture
def agent_for(
    emulator: KubernetesEmulator, tmp_path: Path
) -> Iterator[Callable[..., AgentProcess]]:
    kubeconfig = tmp_path / "kubeconfig"
    write_kubeconfig(kubeconfig, emulator.url)
    started: list[AgentProcess] = []

    def start(server_url: str) -> AgentProcess:
        agent = AgentProcess(server_url, kubeconfig, tmp_path / f"agent-{len(started)}.log")
        started.append(agent)
        return agent

    yield start
    for agent in started:
        agent.stop()


class Records:
    """Reads workload records from the server as the SDK's users would."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        token = httpx.post(
            f"{base_url}/api/v1/token",
            json={
                "grantType": "client_credentials",
                "clientID": ADMIN_ID,
                "clientSecret": ADMIN_SECRET,
            },
        ).json()["accessToken"]
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, workload_id: str) -> dict[str, Any] | None:
        response = httpx.get(
            f"{self.base_url}/api/v1/workloads/{workload_id}", headers=self.headers
        )
        return response.json() if response.status_code == 200 else None

    def wait(
        self, workload_id: str, check: Callable[[dict[str, Any]], bool], agent: AgentProcess
    ) -> dict:
        deadline = time.monotonic() + WAIT
        record = None
        while time.monotonic() < deadline:
            record = self.get(workload_id)
            if record is not None and check(record):
                return record
            time.sleep(0.1)
        raise AssertionError(
            f"record never matched; last {record}\nagent log:\n{agent.log()[-3000:]}"
        )


def job(name: str, gpus: int = 1, **spec: Any) -> dict[str, Any]:
    container = {
        "name": "main",
        "image": "trainer:1",
        "resources": {"limits": {"nvidia.com/gpu": str(gpus)}, "requests": {"cpu": "2"}},
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"user": "alice"}},
        "spec": {"template": {"spec": {"containers": [container]}}, **spec},
    }


def pod_of(owner: dict[str, Any], name: str) -> dict[str, Any]:
    meta = owner["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "ownerReferences": [
                {
                    "apiVersion": owner["apiVersion"],
                    "kind": owner["kind"],
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                }
            ],
        },
        "spec": owner["spec"]["template"]["spec"],
        "status": {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
                }
            ],
        },
    }


RUNNING = {
    "spec": {"nodeName": "gpu-node-1"},
    "status": {
        "phase": "Running",
        "conditions": [
            {"type": "PodScheduled", "status": "True"},
            {"type": "Ready", "status": "True"},
        ],
    },
}


def wait_for_samples(
    base_url: str, headers: dict, workload_id: str, agent: AgentProcess, expected: dict
) -> None:
    """Wait until the newest value of each object-derived metric is the expected one.

    The window starts now, so it only holds samples taken after the state being checked.
    """
    now = datetime.now(UTC)
    params = {
        "metricType": "CPU_REQUEST_CORES,GPU_ALLOCATION,RUNNING_POD_COUNT",
        "start": now.isoformat().replace("+00:00", "Z"),
        "end": (now + timedelta(seconds=60)).isoformat().replace("+00:00", "Z"),
    }
    deadline = time.monotonic() + WAIT
    values: dict[str, list[str]] = {}
    while time.monotonic() < deadline:
        response = httpx.get(
            f"{base_url}/api/v1/workloads/{workload_id}/metrics", params=params, headers=headers
        )
        assert response.status_code in (200, 207), response.text
        values = {
            m["type"]: [
                v["value"] for v in m.get("values") or [] if v.get("value") not in (None, "")
            ]
            for m in response.json()["measurements"]
        }
        newest = {name: float(found[-1]) for name, found in values.items() if found}
        if newest == expected:
            return
        time.sleep(0.3)
    raise AssertionError(f"samples never arrived: {values}\n{agent.log()[-2000:]}")


def stale_record(base_url: str, headers: dict) -> str:
    """A workload of this cluster on the server that no Kubernetes object backs."""
    from tests.test_agent_kinds import FIXTURES, derive_case, load_case

    record = derive_case(load_case(FIXTURES / "pod" / "succeeded.yaml"))
    record.update(id=str(uuid.uuid4()), clusterId=CLUSTER_ID, phase="Running")
    response = httpx.post(
        f"{base_url}/api/v1/ingest/clusters/{CLUSTER_ID}/workloads",
        json={"workloads": [record]},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    return record["id"]


def test_records_follow_objects_through_their_life(
    emulator: KubernetesEmulator, agent_for, server: ServerProcess
) -> None:
    records = Records(server.base_url)
    drifted = stale_record(server.base_url, records.headers)
    agent = agent_for(server.base_url)
    # The first push is a full sync: what the cluster does not run is marked deleted.
    records.wait(drifted, lambda r: r["deletedAt"] is not None, agent)

    train = emulator.create(job("train", gpus=2))
    train_id = train["metadata"]["uid"]
    record = records.wait(train_id, lambda r: r["phase"] == "Creating", agent)
    assert record["projectName"] == "team-a"
    assert (record["departmentName"], record["departmentId"]) == ("research", "3")
    assert record["clusterId"] == CLUSTER_ID
    assert record["submittedBy"] == "alice"

    emulator.create(pod_of(train, "train-0"))
    record = records.wait(train_id, lambda r: r["phase"] == "Pending", agent)
    assert record["phaseMessage"] == "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."

    emulator.patch("v1", "Pod", NAMESPACE, "train-0", RUNNING)
    emulator.patch("batch/v1", "Job", NAMESPACE, "train", {"status": {"active": 1, "ready": 1}})
    record = records.wait(train_id, lambda r: r["phase"] == "Running", agent)
    assert record["allocatedResources"]["gpu"] == 2.0
    assert record["runningPods"] == 1
    expected = {"CPU_REQUEST_CORES": 2.0, "GPU_ALLOCATION": 2.0, "RUNNING_POD_COUNT": 1.0}
    wait_for_samples(server.base_url, records.headers, train_id, agent, expected)

    emulator.patch(
        "v1", "Pod", NAMESPACE, "train-0", {"status": {"phase": "Succeeded", "conditions": None}}
    )
    emulator.patch(
        "batch/v1",
        "Job",
        NAMESPACE,
        "train",
        {
            "status": {
                "active": 0,
                "ready": 0,
                "succeeded": 1,
                "conditions": [{"type": "Complete", "status": "True"}],
            }
        },
    )
    record = records.wait(train_id, lambda r: r["phase"] == "Completed", agent)
    assert record["completedAt"] is not None

    broken = emulator.create(job("broken"))
    emulator.patch(
        "batch/v1",
        "Job",
        NAMESPACE,
        "broken",
        {
            "status": {
                "conditions": [
                    {
                        "type": "Failed",
                        "status": "True",
                        "reason": "BackoffLimitExceeded",
                        "message": "Job has reached the specified backoff limit",
                    }
                ]
            }
        },
    )
    record = records.wait(broken["metadata"]["uid"], lambda r: r["phase"] == "Failed", agent)
    assert record["phaseMessage"] == "Job has reached the specified backoff limit"

    ft = emulator.create(
        {
            "apiVersion": "kubeflow.org/v1",
            "kind": "PyTorchJob",
            "metadata": {"name": "ft", "namespace": NAMESPACE},
            "spec": {
                "runPolicy": {"suspend": True},
                "pytorchReplicaSpecs": {
                    "Master": {
                        "replicas": 1,
                        "template": {
                            "spec": {"containers": [{"name": "pytorch", "image": "ft:1"}]}
                        },
                    }
                },
            },
        }
    )
    record = records.wait(ft["metadata"]["uid"], lambda r: r["phase"] == "Stopped", agent)
    assert record["type"] == "PyTorchJob"
    assert record["distributedFramework"] == "PyTorch"

    emulator.delete("batch/v1", "Job", NAMESPACE, "broken")
    records.wait(broken["metadata"]["uid"], lambda r: r["deletedAt"] is not None, agent)

    health = httpx.get(agent.health_url + "/healthz").json()
    assert health["status"] == "ok"
    assert "RayCluster.ray.io" in health["unavailableKinds"]
    metrics_text = httpx.get(agent.health_url + "/metrics").text
    assert "gpufleet_agent_push_latency_seconds_count" in metrics_text
    assert 'gpufleet_agent_kind_available{kind="RayCluster.ray.io"} 0.0' in metrics_text


def test_records_follow_an_emulator_restart_that_lost_state(
    emulator: KubernetesEmulator, agent_for, server: ServerProcess
) -> None:
    agent = agent_for(server.base_url)
    records = Records(server.base_url)
    lost = emulator.create(job("lost"))
    records.wait(lost["metadata"]["uid"], lambda r: r["deletedAt"] is None, agent)

    emulator.restart(keep_state=False, downtime=0.5)
    fresh = emulator.create(job("fresh"))

    records.wait(fresh["metadata"]["uid"], lambda r: r["phase"] == "Creating", agent)
    records.wait(lost["metadata"]["uid"], lambda r: r["deletedAt"] is not None, agent)


def test_changes_during_a_server_outage_arrive_when_it_returns(
    emulator: KubernetesEmulator, agent_for, server: ServerProcess, monkeypatch
) -> None:
    agent = agent_for(server.base_url)
    records = Records(server.base_url)
    steady = emulator.create(job("steady"))
    records.wait(steady["metadata"]["uid"], lambda r: r["phase"] == "Creating", agent)

    port = server.port
    server.stop()
    emulator.create(pod_of(steady, "steady-0"))
    emulator.patch("v1", "Pod", NAMESPACE, "steady-0", RUNNING)
    late = emulator.create(job("late"))
    time.sleep(1.0)

    # The same server (same database) comes back on the same address.
    monkeypatch.setattr("tests.support.server.free_port", lambda: port)
    server.start()
    records = Records(server.base_url)
    records.wait(steady["metadata"]["uid"], lambda r: r["phase"] == "Running", agent)
    records.wait(late["metadata"]["uid"], lambda r: r["phase"] == "Creating", agent)
    failures = httpx.get(agent.health_url + "/metrics").text
    assert re.search(
        r'gpufleet_agent_push_failures_total\{cause="unreachable",endpoint="workloads"\} [1-9]',
        failures,
    )


# Regrouping when ownership changes


def owned(owner: dict[str, Any], obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` with ``owner`` as its controller."""
    meta = owner["metadata"]
    reference = {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
    }
    return {**obj, "metadata": {**obj["metadata"], "ownerReferences": [reference]}}


def running_pod(owner: dict[str, Any], name: str, gpus: int) -> dict[str, Any]:
    container = {
        "name": "main",
        "image": "worker:1",
        "resources": {"limits": {"nvidia.com/gpu": str(gpus)}},
    }
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"containers": [container], **RUNNING["spec"]},
        "status": RUNNING["status"],
    }
    return owned(owner, pod)


def pod_names(records: Records, workload_id: str) -> list[str]:
    response = httpx.get(
        f"{records.base_url}/api/v1/workloads/{workload_id}/pods", headers=records.headers
    )
    assert response.status_code == 200, response.text
    return sorted(p["name"] for p in response.json()["pods"])


def holds(gpus: float, running: int):
    return lambda r: r["allocatedResources"]["gpu"] == gpus and r["runningPods"] == running


def gone(record: dict[str, Any] | None) -> bool:
    return record is None or record["deletedAt"] is not None


def wait_gone(records: Records, workload_id: str, agent: AgentProcess) -> None:
    deadline = time.monotonic() + WAIT
    while not gone(records.get(workload_id)):
        assert time.monotonic() < deadline, f"{workload_id} still live\n{agent.log()[-3000:]}"
        time.sleep(0.1)


def deployment(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"replicas": 2},
        "status": {"replicas": 2, "readyReplicas": 2, "availableReplicas": 2},
    }


def test_a_deployment_recreated_after_an_orphaning_delete_adopts_every_pod_at_once(
    emulator: KubernetesEmulator, agent_for, server: ServerProcess
) -> None:
    records = Records(server.base_url)
    agent = agent_for(server.base_url)
    first = emulator.create(deployment("web"))
    replicas = emulator.create(
        owned(
            first,
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {"name": "web-5d8f", "namespace": NAMESPACE},
                "spec": {"replicas": 2},
                "status": {"replicas": 2, "readyReplicas": 2},
            },
        )
    )
    for n in range(2):
        emulator.create(running_pod(replicas, f"web-5d8f-{n}", gpus=1))
    records.wait(first["metadata"]["uid"], holds(2.0, 2), agent)

    # kubectl delete deployment web --cascade=orphan: the garbage collector first drops the
    # ReplicaSet's owner reference, then the Deployment goes.
    emulator.patch(
        "apps/v1",
        "ReplicaSet",
        NAMESPACE,
        "web-5d8f",
        lambda o: o["metadata"].pop("ownerReferences"),
    )
    emulator.delete("apps/v1", "Deployment", NAMESPACE, "web")
    wait_gone(records, first["metadata"]["uid"], agent)
    records.wait(replicas["metadata"]["uid"], holds(2.0, 2), agent)

    # The Deployment again: its controller adopts the ReplicaSet; the pods do not change.
    second = emulator.create(deployment("web"))
    adopted = owned(second, replicas)["metadata"]["ownerReferences"]
    emulator.patch(
        "apps/v1",
        "ReplicaSet",
        NAMESPACE,
        "web-5d8f",
        lambda o: o["metadata"].__setitem__("ownerReferences", adopted),
    )
    records.wait(second["metadata"]["uid"], holds(2.0, 2), agent)
    assert pod_names(records, second["metadata"]["uid"]) == ["web-5d8f-0", "web-5d8f-1"]
    wait_gone(records, replicas["metadata"]["uid"], agent)


RAY_JOB = Resource("ray.io", "v1", "RayJob", "rayjobs")
RAY_CLUSTER = Resource("ray.io", "v1", "RayCluster", "rayclusters")


@pytest.mark.parametrize(
    "install_order",
    [(RAY_CLUSTER, RAY_JOB), (RAY_JOB, RAY_CLUSTER)],
    ids=["cluster-first", "job-first"],
)
def test_a_raycluster_listed_before_or_after_its_rayjob_kind_is_one_workload(
    emulator: KubernetesEmulator, agent_for, server: ServerProcess, install_order
) -> None:
    records = Records(server.base_url)
    agent = agent_for(server.base_url)
    rayjob = emulator.create(
        {
            "apiVersion": "ray.io/v1",
            "kind": "RayJob",
            "metadata": {"name": f"tune-{install_order[0].kind.lower()}", "namespace": NAMESPACE},
            "spec": {"entrypoint": "python tune.py"},
            "status": {"jobStatus": "RUNNING", "jobDeploymentStatus": "Running"},
        }
    )
    cluster = emulator.create(
        owned(
            rayjob,
            {
                "apiVersion": "ray.io/v1",
                "kind": "RayCluster",
                "metadata": {"name": f"{rayjob['metadata']['name']}-rc", "namespace": NAMESPACE},
                "spec": {},
                "status": {"state": "ready"},
            },
        )
    )
    names = [f"{cluster['metadata']['name']}-{n}" for n in range(3)]
    for name in names:
        emulator.create(running_pod(cluster, name, gpus=2))
    first, second = install_order
    emulator.install(first)
    if first is RAY_CLUSTER:
        # RayJob is not listed yet: the RayCluster is a workload of its own, for now.
        records.wait(cluster["metadata"]["uid"], holds(6.0, 3), agent)
    else:
        records.wait(rayjob["metadata"]["uid"], lambda r: r["deletedAt"] is None, agent)
    emulator.install(second)
    records.wait(rayjob["metadata"]["uid"], holds(6.0, 3), agent)
    assert pod_names(records, rayjob["metadata"]["uid"]) == names
    # Never two live workloads for one job: the RayCluster's own record is gone.
    wait_gone(records, cluster["metadata"]["uid"], agent)


def _node(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {"run.ai/node-pool": "a100", "nvidia.com/gpu.product": "NVIDIA-A100"},
        },
        "spec": {},
        "status": {
            "capacity": {"cpu": "64", "memory": "512Gi", "nvidia.com/gpu": "8"},
            "allocatable": {"cpu": "63", "memory": "500Gi", "nvidia.com/gpu": "8"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
        },
    }


def test_nodes_and_queues_follow_the_cluster(
    emulator: KubernetesEmulator, agent_for, server: ServerProcess
) -> None:
    """Node added, not ready, cordoned and deleted; a KAI queue gives its project a quota."""
    records = Records(server.base_url)
    agent = agent_for(server.base_url)
    name = f"gpu-{uuid.uuid4().hex[:6]}"

    def node_matches(check: Callable[[list[dict[str, Any]]], bool]) -> None:
        deadline = time.monotonic() + WAIT
        found: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            response = httpx.get(
                f"{server.base_url}/api/v1/nodes",
                params={"filterBy": f"name=={name}"},
                headers=records.headers,
            )
            found = response.json()["nodes"]
            if check(found):
                return
            time.sleep(0.1)
        raise AssertionError(f"nodes never matched: {found}\n{agent.log()[-3000:]}")

    emulator.create(_node(name))
    node_matches(lambda n: len(n) == 1 and n[0]["status"] == "Ready" and n[0]["nodePool"] == "a100")

    def not_ready(node: dict[str, Any]) -> None:
        node["status"]["conditions"][0].update(status="False", reason="KubeletNotReady")

    emulator.patch("v1", "Node", "", name, not_ready)
    node_matches(lambda n: n and n[0]["status"] == "NotReady")
    taint = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}
    emulator.patch("v1", "Node", "", name, {"spec": {"unschedulable": True, "taints": [taint]}})
    node_matches(lambda n: n and n[0]["taints"] == [taint])
    emulator.delete("v1", "Node", "", name)
    node_matches(lambda n: n == [])

    queue = {
        "apiVersion": "scheduling.run.ai/v2",
        "kind": "Queue",
        "metadata": {"name": "team-a"},
        "spec": {"parentQueue": "research", "resources": {"gpu": {"quota": 6, "limit": 10}}},
    }
    emulator.create(queue)
    deadline = time.monotonic() + WAIT
    resources: list = []
    while time.monotonic() < deadline:
        response = httpx.get(
            f"{server.base_url}/api/v1/org-unit/projects",
            params={"filterBy": "name==team-a"},
            headers=records.headers,
        )
        projects = response.json()["projects"]
        resources = projects[0]["resources"] if projects else []
        if any(r["gpu"]["deserved"] == 6 for r in resources):
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"quota never arrived: {resources}\n{agent.log()[-3000:]}")
    assert projects[0]["parentId"] == "3"
