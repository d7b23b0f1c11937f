"""A small organisation varied along every telemetry groupBy, and what telemetry should say.

Shared by the telemetry tests: the expected numbers are computed from the workloads the list
endpoint returns, so the two endpoints are checked against each other.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from gpufleet.store.tables import clusters
from tests.support.factories import CLUSTER_ID, insert, workload

OTHER_CLUSTER = "0b6f0a4e-1a7e-4c41-9d43-5a3c3c1e2f10"
GROUP_FIELDS = {
    "ClusterId": "clusterId",
    "DepartmentId": "departmentId",
    "ProjectId": "projectId",
    "Type": "type",
    "CurrentNodepools": "currentNodePools",
    "Phase": "phase",
    "Category": "category",
}
ALL_GROUPINGS = [(g,) for g in GROUP_FIELDS] + list(itertools.combinations(GROUP_FIELDS, 2))


def seed_organisation(engine) -> None:
    """36 live workloads varied along every groupable field, and 2 deleted ones."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            clusters.insert(),
            [
                {
                    "id": CLUSTER_ID,
                    "name": "prod",
                    "tenant_id": 1,
                    "created_at": now,
                    "updated_at": now,
                },
                {
                    "id": OTHER_CLUSTER,
                    "name": "lab",
                    "tenant_id": 1,
                    "created_at": now,
                    "updated_at": now,
                },
            ],
        )
    pools = [[], ["default"], ["a100", "h100"], ["h100"]]
    phases = ["Running", "Pending", "Completed", "Failed", "Running", "Stopped"]
    items = []
    for n in range(36):
        department = str(1 + n % 3)
        gpus = [0.5, 1.0, 2.0, 0.0, 4.0][n % 5]
        items.append(
            workload(
                clusterId=OTHER_CLUSTER if n % 4 == 0 else CLUSTER_ID,
                departmentId=department,
                departmentName=f"dept-{department}",
                projectId=str(10 + n % 5),
                projectName=f"proj-{10 + n % 5}",
                type=["Training", "Workspace", "Inference"][n % 3],
                category=["Train", "Build", "Deploy"][(n // 3) % 3],
                phase=phases[n % len(phases)],
                currentNodePools=pools[n % len(pools)],
                allocatedResources={"gpu": gpus},
                workloadRequestedResources={"gpu": {"request": gpus + (n % 2)}},
            )
        )
    items.append(workload(deletedAt=now - timedelta(hours=1)))
    items.append(workload(deletedAt=now - timedelta(hours=2), phase="Pending"))
    insert(engine, items)


def group_keys(item: dict, grouping: tuple[str, ...]) -> list[tuple[str, ...]]:
    """The group keys one workload falls in (several for several node pools)."""
    options = []
    for group in grouping:
        value = item[GROUP_FIELDS[group]]
        if group == "CurrentNodepools":
            options.append(value or [""])
        else:
            options.append([value])
    return list(itertools.product(*options))


def expected_values(items, grouping, measure):
    totals: dict[tuple[str, ...], float] = defaultdict(float)
    for item in items:
        for key in group_keys(item, grouping):
            totals[key] += measure(item)
    return dict(totals)
