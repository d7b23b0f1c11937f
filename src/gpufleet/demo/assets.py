"""Environments, data sources, connections and URLs of simulated workloads.

Environments and data sources are control-plane assets, so only native workloads have them;
their ids come from the workload's random stream like everything else.
"""

from __future__ import annotations

import random
from typing import Any
from uuid import NAMESPACE_URL, uuid5

from gpufleet.demo.catalog import WorkloadKind
from gpufleet.demo.organisation import Cluster, Project
from gpufleet.demo.weighted import pick_one

_DATASOURCES = (
    ("pvc", "datasets-shared"),
    ("pvc", "hf-cache"),
    ("pvc", "checkpoints"),
    ("git", "training-recipes"),
    ("s3", "raw-images"),
    ("nfs", "team-home"),
)
_ENVIRONMENTS = {
    "Workspace": ("jupyter-lab", "jupyter-notebook", 8888),
    "Training": ("pytorch", "tensorboard", 6006),
    "Distributed": ("pytorch-distributed", "tensorboard", 6006),
    "Inference": ("vllm-server", "custom-url", 8000),
    "DistributedInference": ("vllm-multinode", "custom-url", 8000),
}
# A few AI applications group deployed workloads; ids are stable so names always match.
AI_APPLICATIONS = tuple(
    (str(uuid5(NAMESPACE_URL, f"https://demo.gpufleet.invalid/ai-applications/{name}")), name)
    for name in ("rag-assistant", "support-copilot", "doc-search")
)


_VERSION_4 = (0x4 << 76) | (0x8 << 60)
_VERSION_MASK = ~((0xF << 76) | (0xC << 60))


def random_uuid(rng: random.Random) -> str:
    """A version-4 UUID drawn from ``rng`` (so it is reproducible)."""
    # The bit operations of UUID(int=…, version=4), without building the object.
    digits = f"{(rng.getrandbits(128) & _VERSION_MASK) | _VERSION_4:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def service_url(name: str, project: Project, cluster: Cluster) -> str:
    return f"https://{name}-{project.name}.{cluster.name}.inference.example.com"


def environments(
    rng: random.Random, kind: WorkloadKind, name: str, project: Project, cluster: Cluster
) -> list[dict[str, Any]] | None:
    """The environment assets of a native workload, with the connections they expose."""
    spec = _ENVIRONMENTS.get(kind.type)
    if spec is None:
        return None
    env_name, tool, port = spec
    connection: dict[str, Any] = {
        "name": tool,
        "toolType": tool,
        "connectionType": "ExternalUrl",
        "url": f"https://{cluster.name}.example.com/{project.namespace}/{name}/{tool}",
        "authorizationType": pick_one(rng, ("authenticatedUsers", "authorizedUsersOrGroups")),
        "containerPort": port,
    }
    if connection["authorizationType"] == "authorizedUsersOrGroups":
        connection["authorizedGroups"] = [project.department.name]
    if kind.type in ("Inference", "DistributedInference"):
        connection["connectionType"] = "ServingPort"
        connection["url"] = service_url(name, project, cluster)
    if kind.multi_pod and kind.type == "Distributed":
        return [
            {"name": env_name, "id": random_uuid(rng), "replicaType": "Master"},
            {
                "name": env_name,
                "id": random_uuid(rng),
                "replicaType": "Worker",
                "connections": [connection],
            },
        ]
    environment = {"name": env_name, "id": random_uuid(rng), "connections": [connection]}
    if kind.type == "DistributedInference":
        environment["replicaType"] = "Leader"
    return [environment]


def datasources(rng: random.Random) -> list[dict[str, Any]] | None:
    """Zero to three data sources mounted by a native workload."""
    count = pick_one(rng, (0, 1, 1, 2, 3))
    if count == 0:
        return None
    # Consecutive entries from a random start: distinct, and cheaper than Random.sample.
    first = int(rng.random() * len(_DATASOURCES))
    chosen = (_DATASOURCES[(first + step) % len(_DATASOURCES)] for step in range(count))
    return [{"type": kind, "name": name, "id": random_uuid(rng)} for kind, name in chosen]


def external_connections(rng: random.Random, name: str) -> list[dict[str, Any]] | None:
    """An experiment tracker link on some training workloads."""
    if rng.random() >= 0.15:
        return None
    return [
        {
            "name": "wandb",
            "toolType": "wandb",
            "connectionType": "ExternalUrl",
            "url": f"https://wandb.example.com/runs/{name}",
            "authorizationType": "public",
        }
    ]
