"""The fixed organisation every demo workload belongs to, and writing it to the store.

The organisation does not depend on the seed: seeding more workloads with another seed lands
them in the same tenant, clusters, departments and projects.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import NAMESPACE_URL, uuid5

from sqlalchemy import Table
from sqlalchemy.engine import Connection

from gpufleet.core.roles import TENANT_ID
from gpufleet.demo.weighted import Weighted
from gpufleet.store.dialect import insert_ignoring_conflicts
from gpufleet.store.tables import clusters, departments, projects


@dataclass(frozen=True, slots=True)
class NodePool:
    name: str
    gpu_memory_gib: int
    gpus_per_node: int


@dataclass(frozen=True, slots=True)
class Cluster:
    id: str
    name: str
    nodepools: tuple[NodePool, ...]


@dataclass(frozen=True, slots=True)
class Department:
    id: str
    name: str
    cluster: Cluster


@dataclass(frozen=True, slots=True)
class Project:
    id: str
    name: str
    department: Department
    # Relative share of the organisation's workloads submitted in this project.
    weight: float

    @property
    def namespace(self) -> str:
        return f"runai-{self.name}"


def _cluster_id(name: str) -> str:
    # Stable across runs and seeds, so the organisation rows are written once.
    return str(uuid5(NAMESPACE_URL, f"https://demo.gpufleet.invalid/clusters/{name}"))


EAST = Cluster(
    _cluster_id("dgx-east"),
    "dgx-east",
    (NodePool("default", 24, 4), NodePool("a100", 80, 8), NodePool("h100", 80, 8)),
)
WEST = Cluster(
    _cluster_id("cloud-west"),
    "cloud-west",
    (NodePool("default", 24, 4), NodePool("l40s", 48, 4), NodePool("a100", 80, 8)),
)
CLUSTERS = (EAST, WEST)

RESEARCH = Department("10", "research", EAST)
PLATFORM = Department("20", "platform", EAST)
APPLIED = Department("30", "applied-ml", WEST)
DEPARTMENTS = (RESEARCH, PLATFORM, APPLIED)

PROJECTS = (
    Project("11", "llm-pretrain", RESEARCH, 3.0),
    Project("12", "vision", RESEARCH, 2.0),
    Project("13", "speech", RESEARCH, 1.0),
    Project("14", "rl-agents", RESEARCH, 1.0),
    Project("21", "inference-prod", PLATFORM, 2.0),
    Project("22", "inference-staging", PLATFORM, 1.0),
    Project("23", "notebooks", PLATFORM, 2.0),
    Project("24", "ci-gpu", PLATFORM, 0.5),
    Project("31", "recsys", APPLIED, 1.5),
    Project("32", "fraud-detection", APPLIED, 1.0),
    Project("33", "search-ranking", APPLIED, 1.0),
    Project("34", "nlp-apps", APPLIED, 1.5),
)
PROJECT_CHOICE = Weighted((project, project.weight) for project in PROJECTS)

# People who submit through the CLI or the UI; a few names are not ASCII on purpose.
SUBMITTERS = (
    "alice@example.com",
    "bob.nguyen@example.com",
    "carmen.ruiz@example.com",
    "dmitri.volkov@example.com",
    "erin@example.com",
    "farah.haddad@example.com",
    "gustavo@example.com",
    "hana.sato@example.com",
    "ivan.petrov@example.com",
    "jules.martin@example.com",
    "kofi.mensah@example.com",
    "lena.schmidt@example.com",
    "zoë.lefèvre@example.com",
    "søren.østergaard@example.com",
    "李伟@example.com",
    "researcher",
    "mlops-bot",
)
# Who applies third-party resources with kubectl, Helm or an operator.
OPERATORS = (
    "system:serviceaccount:argocd:argocd-application-controller",
    "system:serviceaccount:kubeflow:training-operator",
    "system:serviceaccount:ci:gpu-runner",
    "kubernetes-admin",
    "alice@example.com",
    "hana.sato@example.com",
)


def write_organisation(conn: Connection, anchor: datetime) -> None:
    """Insert the clusters, departments and projects; rows that already exist are kept."""
    since = anchor - timedelta(days=120)
    stamps = {"created_at": since, "updated_at": since}
    _insert_new(
        conn,
        clusters,
        [{"id": c.id, "name": c.name, "tenant_id": TENANT_ID, **stamps} for c in CLUSTERS],
    )
    _insert_new(
        conn,
        departments,
        [{"id": d.id, "name": d.name, "cluster_id": d.cluster.id, **stamps} for d in DEPARTMENTS],
    )
    _insert_new(
        conn,
        projects,
        [
            {
                "id": p.id,
                "name": p.name,
                "department_id": p.department.id,
                "cluster_id": p.department.cluster.id,
                "namespace": p.namespace,
                **stamps,
            }
            for p in PROJECTS
        ],
    )


def _insert_new(conn: Connection, table: Table, rows: list[dict]) -> None:
    """Insert the rows whose id the table does not hold yet."""
    conn.execute(insert_ignoring_conflicts(conn.dialect.name, table, ["id"]), rows)
