"""The demo's nodes and scheduler queues: capacity that what the workloads hold fits into.

Pods that hold resources are placed as a scheduler would: on the first of a pool's open nodes
with room for their GPUs, CPU and memory, else on a new node of the pool, so no node is ever
allocated beyond its capacity and node telemetry adds up to what the workloads hold. Finished
pods keep the node of their pool they last ran on. Each seeding ends by adding spare capacity
(fully free nodes, one not ready, one cordoned, per cluster) and KAI-style queues whose quotas
share each pool among the projects by their weight, so some projects run over their quota.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gpufleet.demo.organisation import CLUSTERS, PROJECTS, Cluster, NodePool
from gpufleet.store.node_ingest import ingest_nodes
from gpufleet.store.pods import pod_holdings
from gpufleet.store.queue_ingest import ingest_queues
from gpufleet.store.tables import POD_HOLDS, nodes, workload_pods

GIB = 2**30
# Open nodes a pod is tried on before a new one is added: first fit over a bounded window
# keeps placement linear in the number of pods however large the fleet grows.
OPEN_NODES = 16
SPARE_NODES_PER_POOL = 2
NODE_POOL_LABEL = "run.ai/node-pool"
# Room left to rounding when fractions of a GPU are added up.
_EPSILON = 1e-6


@dataclass
class DemoNode:
    name: str
    gpus: float
    cpu: float
    memory: float
    free_gpus: float
    free_cpu: float
    free_memory: float

    def fits(self, gpu: float, cpu: float, memory: float) -> bool:
        return (
            gpu <= self.free_gpus + _EPSILON
            and cpu <= self.free_cpu + _EPSILON
            and memory <= self.free_memory + _EPSILON
        )

    def take(self, gpu: float, cpu: float, memory: float) -> None:
        self.free_gpus -= gpu
        self.free_cpu -= cpu
        self.free_memory -= memory


def node_spec(pool: NodePool) -> tuple[float, float, float]:
    """GPUs, CPU cores and memory bytes of one node of the pool."""
    cores = 24.0 * pool.gpus_per_node
    return float(pool.gpus_per_node), cores, 256.0 * GIB * pool.gpus_per_node


@dataclass
class PoolNodes:
    cluster: Cluster
    pool: NodePool
    count: int = 0
    open: list[DemoNode] = field(default_factory=list)
    # Every node name of the pool, for finished pods.
    names: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)

    def new_node(self) -> DemoNode:
        name = f"{self.cluster.name}-{self.pool.name}-{self.count:04d}"
        self.count += 1
        gpus, cpu, memory = node_spec(self.pool)
        node = DemoNode(name, gpus, cpu, memory, gpus, cpu, memory)
        self.names.append(name)
        self.added.append(name)
        return node

    def place(self, gpu: float, cpu: float, memory: float) -> str:
        for node in self.open:
            if node.fits(gpu, cpu, memory):
                node.take(gpu, cpu, memory)
                return node.name
        node = self.new_node()
        node.take(gpu, cpu, memory)
        self.open.append(node)
        if len(self.open) > OPEN_NODES:
            self.open.pop(0)
        return node.name


class DemoFleet:
    """The nodes of every demo pool, loaded once per seeding and grown as pods are placed."""

    def __init__(self) -> None:
        self.pools: dict[tuple[str, str], PoolNodes] = {
            (cluster.id, pool.name): PoolNodes(cluster, pool)
            for cluster in CLUSTERS
            for pool in cluster.nodepools
        }

    @classmethod
    def load(cls, conn: Connection) -> DemoFleet:
        """The fleet as stored: each pool's nodes, the last few open with their free room."""
        fleet = cls()
        held = {
            (row.cluster_id, row.node_name): row
            for row in conn.execute(
                sa.select(
                    workload_pods.c.cluster_id,
                    workload_pods.c.node_name,
                    sa.func.sum(workload_pods.c.allocated_gpu).label("gpu"),
                    sa.func.sum(workload_pods.c.allocated_cpu_cores).label("cpu"),
                    sa.func.sum(workload_pods.c.allocated_memory_bytes).label("memory"),
                )
                .where(POD_HOLDS)
                .group_by(workload_pods.c.cluster_id, workload_pods.c.node_name)
            )
        }
        stored = conn.execute(
            sa.select(nodes.c.cluster_id, nodes.c.nodepool, nodes.c.name)
            .where(nodes.c.deleted_at.is_(None), nodes.c.status == "Ready")
            .where(sa.not_(nodes.c.unschedulable))
            .order_by(nodes.c.name)
        )
        for cluster_id, pool_name, name in stored:
            pool = fleet.pools.get((cluster_id, pool_name))
            if pool is None:
                continue
            pool.count += 1
            pool.names.append(name)
            gpus, cpu, memory = node_spec(pool.pool)
            used = held.get((cluster_id, name))
            node = DemoNode(name, gpus, cpu, memory, gpus, cpu, memory)
            if used is not None:
                node.take(float(used.gpu), float(used.cpu), float(used.memory))
            pool.open.append(node)
            pool.open = pool.open[-OPEN_NODES:]
        return fleet

    def place_pods(self, pods: list[dict[str, Any]]) -> None:
        """Give each bound pod of ``pods`` (demo pod rows) a node and its holdings."""
        for pod in pods:
            if pod["node_name"] is None:
                continue
            pool = self.pools.get((pod["cluster_id"], pod["nodepool"]))
            if pool is None:
                continue
            allocated = pod["document"].get("allocatedResources")
            holdings = pod_holdings(pod["node_name"], pod["k8s_phase"], allocated)
            if pod["deleted_at"] is not None:
                holdings = dict.fromkeys(holdings, 0.0)
            pod.update(holdings)
            if any(holdings.values()):
                pod["node_name"] = pool.place(
                    holdings["allocated_gpu"],
                    holdings["allocated_cpu_cores"],
                    holdings["allocated_memory_bytes"],
                )
            else:
                # A finished pod ran on one of the pool's nodes; which one needs no room now.
                if not pool.names:
                    pool.open.append(pool.new_node())
                pod["node_name"] = pool.names[UUID(pod["id"]).int % len(pool.names)]

    def add_spares(self) -> None:
        """Fully free nodes in every pool, so the fleet has room to grow into."""
        for pool in self.pools.values():
            for _ in range(SPARE_NODES_PER_POOL):
                pool.open.append(pool.new_node())
            pool.open = pool.open[-OPEN_NODES:]

    def write(self, conn: Connection, anchor: datetime) -> None:
        """Report the nodes added since loading, as the agent would."""
        by_cluster: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for pool in self.pools.values():
            for name in pool.added:
                by_cluster[pool.cluster.id].append(_node_report(pool, name, anchor))
            pool.added = []
        for cluster_id, reports in by_cluster.items():
            ingest_nodes(conn, cluster_id, reports, label_key=NODE_POOL_LABEL, now=anchor)


_GPU_TYPES = {
    "a100": "NVIDIA-A100-SXM4-80GB",
    "h100": "NVIDIA-H100-80GB-HBM3",
    "l40s": "NVIDIA-L40S",
    "default": "NVIDIA-A10",
}


def _node_report(pool: PoolNodes, name: str, anchor: datetime) -> dict[str, Any]:
    gpus, cpu, memory = node_spec(pool.pool)
    return {
        "id": str(uuid5(UUID(pool.cluster.id), f"node/{name}")),
        "name": name,
        "observedAt": anchor,
        "createdAt": anchor,
        "status": "Ready",
        "unschedulable": False,
        "nodePool": pool.pool.name,
        "gpuType": _GPU_TYPES.get(pool.pool.name, "NVIDIA-A10"),
        "gpuCount": int(gpus),
        "allocatableGpus": gpus,
        "gpuMemoryBytes": pool.pool.gpu_memory_gib * GIB,
        "cpuCores": cpu,
        "allocatableCpuCores": cpu - 2,
        "memoryBytes": int(memory),
        "allocatableMemoryBytes": int(memory - 8 * GIB),
        "nvLinkCliqueId": f"{name.rsplit('-', 1)[0]}-clique" if gpus >= 8 else None,
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
        "taints": [],
    }


def _unavailable(cluster: Cluster, anchor: datetime) -> list[dict[str, Any]]:
    """One node that stopped reporting and one an administrator cordoned, both empty."""
    pool = PoolNodes(cluster, cluster.nodepools[-1])
    down = _node_report(pool, f"{cluster.name}-{pool.pool.name}-down", anchor)
    down["status"] = "NotReady"
    down["conditions"] = [
        {"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown",
         "message": "Kubelet stopped posting node status."}
    ]  # fmt: skip
    down["taints"] = [{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]
    cordoned = _node_report(pool, f"{cluster.name}-{pool.pool.name}-maintenance", anchor)
    cordoned["unschedulable"] = True
    cordoned["taints"] = [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]
    return [down, cordoned]


def _pool_capacity(conn: Connection) -> dict[tuple[str, str], float]:
    statement = (
        sa.select(nodes.c.cluster_id, nodes.c.nodepool, sa.func.sum(nodes.c.gpu_count))
        .where(nodes.c.deleted_at.is_(None))
        .group_by(nodes.c.cluster_id, nodes.c.nodepool)
    )
    return {(c, p): float(total) for c, p, total in conn.execute(statement)}


def demo_queues(cluster: Cluster, capacity: dict[tuple[str, str], float]) -> list[dict]:
    """KAI-style queues: one per department, one per project beneath it, with each pool's
    GPUs shared by project weight (some projects get less than their share, some more)."""
    members = [p for p in PROJECTS if p.department.cluster is cluster]
    weights = sum(p.weight for p in members)
    rng = random.Random(UUID(cluster.id).int)
    queues: list[dict] = []
    departments: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for project in members:
        quotas = []
        for pool in cluster.nodepools:
            share = capacity.get((cluster.id, pool.name), 0.0) * project.weight / weights
            deserved = float(round(share * rng.choice((0.4, 0.6, 0.8, 1.0))))
            departments[project.department.id][pool.name] += deserved
            quotas.append(
                {
                    "nodePool": pool.name,
                    "gpu": {
                        "deserved": deserved,
                        "limit": -1.0 if rng.random() < 0.5 else deserved * 2,
                        "overQuotaWeight": float(rng.choice((1, 2, 3))),
                    },
                }
            )
        queues.append(
            {
                "source": "kai",
                "name": project.name,
                "parentName": project.department.name,
                "orgUnit": {
                    "type": "project",
                    "id": project.id,
                    "name": project.name,
                    "departmentId": project.department.id,
                    "departmentName": project.department.name,
                    "namespace": project.namespace,
                },
                "quotas": quotas,
            }
        )
    for department in {p.department for p in members}:
        pools = departments[department.id]
        queues.append(
            {
                "source": "kai",
                "name": department.name,
                "orgUnit": {"type": "department", "id": department.id, "name": department.name},
                "quotas": [
                    {"nodePool": name, "gpu": {"deserved": gpus, "overQuotaWeight": 1.0}}
                    for name, gpus in sorted(pools.items())
                ],
            }
        )
    return queues


def finish_fleet(conn: Connection, fleet: DemoFleet, anchor: datetime) -> None:
    """Spare and unavailable nodes, then queues sized to the final capacity."""
    fleet.add_spares()
    fleet.write(conn, anchor)
    for cluster in CLUSTERS:
        ingest_nodes(
            conn, cluster.id, _unavailable(cluster, anchor), label_key=NODE_POOL_LABEL, now=anchor
        )
    capacity = _pool_capacity(conn)
    for cluster in CLUSTERS:
        ingest_queues(
            conn, cluster.id, demo_queues(cluster, capacity), observed_at=anchor, now=anchor
        )
