"""``gpufleet projects`` against a real demo server whose projects have quotas from a queue."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import httpx
import pytest

from gpufleet.cli import main
from gpufleet.client.project_commands import over_quota
from gpufleet.core.times import format_rfc3339
from gpufleet.demo.organisation import EAST, PROJECTS
from tests.support.databases import ADMIN_ID, ADMIN_SECRET
from tests.support.server import ServerProcess

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(module_database_url: str, tmp_path_factory):
    with ServerProcess(
        module_database_url,
        demo=True,
        demo_workloads=200,
        log_dir=tmp_path_factory.mktemp("server"),
    ) as process:
        yield process


def _unit(project) -> dict:
    return {
        "type": "project",
        "id": project.id,
        "name": project.name,
        "departmentId": project.department.id,
        "departmentName": project.department.name,
        "namespace": project.namespace,
    }


@pytest.fixture(scope="module")
def quotas(server) -> dict[str, float]:
    """A small quota for one of the east cluster's busiest projects, a large one for another."""
    east = [p for p in PROJECTS if p.department.cluster is EAST]
    given = {east[0].name: 1.0, east[1].name: 10_000.0}
    queues = [
        {
            "source": "file",
            "name": project.name,
            "orgUnit": _unit(project),
            "quotas": [{"nodePool": "a100", "gpu": {"deserved": given[project.name]}}],
        }
        for project in east[:2]
    ]
    response = httpx.post(
        f"{server.base_url}/api/v1/ingest/clusters/{EAST.id}/queues",
        json={"observedAt": format_rfc3339(datetime.now(UTC)), "queues": queues},
        headers=server.auth_headers(),
    )
    assert response.status_code == 200 and response.json()["refused"] == [], response.text
    return given


@pytest.fixture
def cli(server, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("GPUFLEET_CONFIG", raising=False)
    monkeypatch.delenv("GPUFLEET_PROFILE", raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO(ADMIN_SECRET + "\n"))
    assert main(["login", server.base_url, "--client-id", ADMIN_ID]) == 0
    capsys.readouterr()

    def run(*argv: str) -> list[dict]:
        assert main(list(argv)) == 0
        return list(csv.DictReader(io.StringIO(capsys.readouterr().out)))

    return run


def test_projects_show_quota_against_allocation(cli, server, quotas):
    listed = httpx.get(
        f"{server.base_url}/api/v1/org-unit/projects",
        params={"limit": 500},
        headers=server.auth_headers(),
    ).json()["projects"]
    rows = {row["PROJECT"]: row for row in cli("projects", "-o", "csv")}
    assert set(rows) == {p["name"] for p in listed}
    for project in listed:
        row = rows[project["name"]]
        allocated = project["status"]["quotaStatus"]["allocated"]["gpu"]
        quota = project["totalResources"]["gpuQuota"]
        assert float(row["ALLOCATED"]) == pytest.approx(allocated)
        assert row["QUOTA"] == ("" if quota is None else f"{quota:g}")
        over = over_quota(quota, allocated)
        assert row["OVER"] == ("" if over is None else f"{over:g}")
    small, large = list(quotas)
    assert rows[large]["OVER"] == ""
    flagged = {row["PROJECT"] for row in cli("projects", "--over", "-o", "csv")}
    assert flagged == {name for name, row in rows.items() if row["OVER"]}
    # The demo's busiest project holds more than the one GPU of its quota.
    assert float(rows[small]["ALLOCATED"]) > quotas[small]
    assert small in flagged


def test_per_pool_rows_and_filters(cli, quotas):
    small = next(iter(quotas))
    pools = cli("projects", "--pools", "-f", f"name=={small}", "-o", "csv")
    assert {row["PROJECT"] for row in pools} == {small}
    a100 = [row for row in pools if row["NODEPOOL"] == "a100"]
    assert a100 and a100[0]["QUOTA"] == "1"
    west = cli("projects", "--cluster", "00000000-0000-4000-8000-000000000000", "-o", "csv")
    assert west == []


def test_over_quota_is_what_lies_beyond_the_quota():
    assert over_quota(None, 5.0) is None
    assert over_quota(4.0, 4.0) is None
    assert over_quota(4.0, 6.5) == 2.5
