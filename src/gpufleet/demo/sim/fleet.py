"""The simulated fleet: the nodes of the demo clusters and what their pods hold on them.

Every node has eight GPUs. A pod asks for whole devices, a fraction of one device, or none;
a node places it only where its devices, CPU and memory have room, so no node is ever
allocated beyond its capacity.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import NAMESPACE_URL, uuid5

from gpufleet.demo.organisation import CLUSTERS, Cluster

GPUS_PER_NODE = 8
# Nodes per (cluster, pool): about 120 nodes, 960 GPUs.
POOL_NODES = {
    ("dgx-east", "default"): 16,
    ("dgx-east", "a100"): 24,
    ("dgx-east", "h100"): 20,
    ("cloud-west", "default"): 12,
    ("cloud-west", "l40s"): 24,
    ("cloud-west", "a100"): 24,
}
GPU_TYPES = {
    "default": "NVIDIA-A10G",
    "a100": "NVIDIA-A100-SXM4-80GB",
    "h100": "NVIDIA-H100-80GB-HBM3",
    "l40s": "NVIDIA-L40S",
}
GPU_MEMORY_GIB = {"default": 24, "a100": 80, "h100": 80, "l40s": 48}
# (CPU cores, memory GiB) of a node of the pool.
NODE_SHAPES = {"default": (64, 512), "a100": (128, 1024), "h100": (128, 2048), "l40s": (64, 512)}
# Tolerance for sums of fractions.
EPSILON = 1e-9


@dataclass(slots=True)
class Node:
    """One node and what the pods bound to it hold."""

    id: str
    name: str
    cluster: Cluster
    pool: str
    gpu_memory_gib: int
    cpu_cores: float
    memory_gib: float
    ready: bool = True
    cordoned: bool = False
    # Share of each device held (0 … 1).
    devices: list[float] = field(default_factory=lambda: [0.0] * GPUS_PER_NODE)
    cpu_used: float = 0.0
    memory_used: float = 0.0

    @property
    def schedulable(self) -> bool:
        return self.ready and not self.cordoned

    @property
    def gpu_used(self) -> float:
        return sum(self.devices)

    @property
    def free_devices(self) -> int:
        return sum(1 for held in self.devices if held <= EPSILON)

    def fits(self, gpus: float, cpu: float, memory_gib: float) -> bool:
        """Whether a pod asking this much could be bound here now."""
        if not self.schedulable:
            return False
        if self.cpu_used + cpu > self.cpu_cores + EPSILON:
            return False
        if self.memory_used + memory_gib > self.memory_gib + EPSILON:
            return False
        if gpus >= 1:
            return self.free_devices >= gpus
        if gpus > 0:
            return any(held + gpus <= 1 + EPSILON for held in self.devices)
        return True

    def take(self, gpus: float, cpu: float, memory_gib: float) -> list[int]:
        """Bind a pod that fits; returns the device indices it holds."""
        if gpus >= 1:
            chosen = [i for i, held in enumerate(self.devices) if held <= EPSILON][: int(gpus)]
            for index in chosen:
                self.devices[index] = 1.0
        elif gpus > 0:
            # A fraction shares the fullest device it fits on, keeping whole devices free.
            open_devices = [i for i, h in enumerate(self.devices) if h + gpus <= 1 + EPSILON]
            index = max(open_devices, key=lambda i: (self.devices[i], -i))
            self.devices[index] += gpus
            chosen = [index]
        else:
            chosen = []
        self.cpu_used += cpu
        self.memory_used += memory_gib
        return chosen

    def release(self, gpus: float, devices: list[int], cpu: float, memory_gib: float) -> None:
        """Unbind a pod."""
        for index in devices:
            share = 1.0 if gpus >= 1 else gpus
            self.devices[index] = max(0.0, self.devices[index] - share)
        self.cpu_used = max(0.0, self.cpu_used - cpu)
        self.memory_used = max(0.0, self.memory_used - memory_gib)


def node_id(name: str) -> str:
    """A node's uid: stable for its name."""
    return str(uuid5(NAMESPACE_URL, f"https://demo.gpufleet.invalid/nodes/{name}"))


def build_nodes() -> list[Node]:
    """The fleet as it starts: per cluster one node not ready and one cordoned."""
    nodes = []
    for cluster in CLUSTERS:
        for pool in (p.name for p in cluster.nodepools):
            cores, memory = NODE_SHAPES[pool]
            for number in range(1, POOL_NODES[(cluster.name, pool)] + 1):
                name = f"{cluster.name}-{pool}-{number:02d}"
                nodes.append(
                    Node(node_id(name), name, cluster, pool, GPU_MEMORY_GIB[pool], cores, memory)
                )
    for cluster in CLUSTERS:
        own = [node for node in nodes if node.cluster is cluster]
        own[-1].ready = False
        own[-2].cordoned = True
    return nodes
