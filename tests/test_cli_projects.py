"""``gpufleet projects`` against a real demo server whose projects have quotas from a queue."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import httpx
import pytest

from gpufleet.cli import main
from gpufleet.client.project_commands import over_quota
from gpufleet.core.times import format_rfc3339
from gpufleet.demo.organisation import EAST, PROJECTS, WEST
from tests.support.agent_reports import batch, in_project, ingest_path, report
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


@pytest.fixture(scope="module")
def twin(server) -> dict[str, str]:
    """A second ``vision`` project in a second ``research`` department, in the west cluster:
    names that repeat across clusters, as two clusters' own org units do."""
    item = report(
        cluster_id=WEST.id,
        phase="Running",
        **in_project("92", "vision", "90", "research"),
    )
    item["observedAt"] = format_rfc3339(datetime.now(UTC))
    response = httpx.post(
        f"{server.base_url}{ingest_path(WEST.id)}", json=batch(item), headers=server.auth_headers()
    )
    assert response.status_code == 200, response.text
    return {"project": "92", "department": "90"}


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_scope_flags_take_a_name_or_an_id(cli, capsys, server, twin):
    everyone = cli("projects", "-o", "csv")
    east = {p.name for p in PROJECTS if p.department.cluster is EAST}
    for cluster in ("dgx-east", EAST.id):
        assert {
            row["PROJECT"] for row in cli("projects", "--cluster", cluster, "-o", "csv")
        } == east
    research = cli("projects", "--cluster", "dgx-east", "--department", "research", "-o", "csv")
    assert {row["PROJECT"] for row in research} == {
        p.name for p in PROJECTS if p.department.id == "10"
    }
    assert cli("projects", "--department", "10", "-o", "csv") == research
    west = cli("projects", "--cluster", "cloud-west", "--department", "research", "-o", "csv")
    assert [row["PROJECT"] for row in west] == ["vision"]
    assert len(everyone) == len(PROJECTS) + 1
    # A name two clusters share is refused with both; an unknown one with the known names.
    code, out, err = _run(capsys, "projects", "--department", "research")
    assert (code, out) == (2, "") and err.count("\n") == 1
    assert "2 departments are named 'research'" in err
    assert "in cluster dgx-east (10)" in err and "in cluster cloud-west (90)" in err
    code, out, err = _run(capsys, "projects", "--cluster", "dgx-north")
    assert (code, out) == (4, "")
    assert err == "gpufleet: error: no cluster named 'dgx-north'; known: cloud-west, dgx-east\n"
    code, _, err = _run(capsys, "projects", "--department", "reserch")
    assert code == 4 and "no department named 'reserch'; known: " in err and "platform" in err


def test_telemetry_of_a_department_named_is_the_apis_of_its_id(cli, capsys, server, twin):
    params = {"telemetryType": "GPU_ALLOCATION", "departmentId": "10", "clusterId": EAST.id}
    expected = httpx.get(
        f"{server.base_url}/api/v1/workloads/telemetry",
        params=params,
        headers=server.auth_headers(),
    ).json()["values"]
    assert float(expected[0]["value"]) > 0, "the demo's research department holds GPUs"
    code, out, err = _run(
        capsys, "telemetry", "GPU_ALLOCATION", "--cluster", "dgx-east", "--department",
        "research", "-o", "json",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["values"] == expected
    code, out, err = _run(capsys, "telemetry", "GPU_ALLOCATION", "--department", "research")
    assert code == 2 and "2 departments are named 'research'" in err


def test_same_named_projects_are_told_apart_by_their_cluster(cli, twin):
    visions = [row for row in cli("projects", "-o", "csv") if row["PROJECT"] == "vision"]
    assert sorted((row["DEPARTMENT"], row["CLUSTER"]) for row in visions) == [
        ("research", "cloud-west"),
        ("research", "dgx-east"),
    ]
    pools = cli("projects", "--pools", "--cluster", "cloud-west", "-f", "name==vision", "-o", "csv")
    assert {row["CLUSTER"] for row in pools} == {"cloud-west"}


def test_a_grant_scope_takes_a_name(cli, capsys, twin):
    code, out, err = _run(capsys, "access", "service-accounts", "create", "scoped", "-o", "json")
    assert code == 0, err
    (account,) = json.loads(out)
    grant = ["access", "rules", "grant", "--subject-id", account["clientId"], "--role", "Viewer"]
    speech = next(p for p in PROJECTS if p.name == "speech")
    code, out, err = _run(capsys, *grant, "--scope-type", "project", "--scope-id", "speech",
                          "-o", "json")  # fmt: skip
    assert code == 0, err
    assert json.loads(out)[0]["scopeId"] == speech.id
    assert f"project 'speech' is id {speech.id}" in err
    code, out, err = _run(capsys, *grant, "--scope-type", "cluster", "--scope-id", "cloud-west",
                          "-o", "json")  # fmt: skip
    assert code == 0, err
    assert json.loads(out)[0]["scopeId"] == WEST.id
    code, out, err = _run(capsys, *grant, "--scope-type", "project", "--scope-id", "vision")
    assert code == 2 and "2 projects are named 'vision'" in err
    code, out, err = _run(capsys, *grant, "--scope-type", "department", "--scope-id", "nope")
    assert code == 4 and "no department named 'nope'" in err and "--allow-unknown-scope" in err


def test_telemetry_rows_of_a_name_two_clusters_share_carry_their_ids(cli, capsys, twin):
    code, out, err = _run(capsys, "telemetry", "WORKLOADS_COUNT", "--group-by", "DepartmentId")
    assert code == 0, err
    departments = [line.split()[0:2] for line in out.splitlines() if "research" in line]
    assert sorted(departments) == [["research", "(10)"], ["research", "(90)"]]
    assert "platform " in out and "platform (" not in out
