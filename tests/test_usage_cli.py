"""``gpufleet usage`` and ``gpufleet reports`` as processes against a real server."""

from __future__ import annotations

import csv
import io
import json
import os
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from gpufleet.client.usage_commands import FIGURES, UNKNOWN, usage_rows, usage_start
from gpufleet.core.times import format_rfc3339
from tests.support.agent_reports import batch, ingest_path, report
from tests.support.databases import ADMIN_ID, ADMIN_SECRET
from tests.support.server import ServerProcess
from tests.test_cli_process import run

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(module_database_url, tmp_path_factory):
    env = {"GPUFLEET_REPORT_INTERVAL_SECONDS": "1"}
    log_dir = tmp_path_factory.mktemp("server")
    with ServerProcess(module_database_url, extra_env=env, log_dir=log_dir) as process:
        # vision: 2 GPUs for two hours, ending an hour ago; speech: 1 GPU for one hour.
        end = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
        plans = [({}, 2.0, 2), ({"projectId": "11", "projectName": "speech"}, 1.0, 1)]
        with httpx.Client(base_url=process.base_url, headers=process.auth_headers()) as http:
            for extra, gpus, hours in plans:
                workload_id = str(uuid.uuid4())
                held = {**extra, "allocatedResources": {"gpu": gpus}}
                for at, phase in ((end - timedelta(hours=hours), "Running"), (end, "Completed")):
                    item = report(workload_id, phase=phase, **held)
                    item["observedAt"] = format_rfc3339(at)
                    assert http.post(ingest_path(), json=batch(item)).status_code == 200
        yield process


@pytest.fixture(scope="module")
def env(server, tmp_path_factory) -> dict[str, str]:
    config = tmp_path_factory.mktemp("cli") / "config.json"
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GPUFLEET_")},
        "GPUFLEET_CONFIG": str(config),
    }
    login = run(environment, "login", server.base_url, "--client-id", ADMIN_ID, stdin=ADMIN_SECRET)
    assert login.returncode == 0, login.stderr
    return environment


def test_usage_by_project_as_json_csv_and_table(env):
    done = run(env, "usage", "--since", "30d", "--group-by", "project", "-o", "json")
    assert done.returncode == 0, done.stderr
    figures = {v["groups"][0]["name"]: v["allocatedGpuHours"] for v in json.loads(done.stdout)}
    assert figures == {"vision": pytest.approx(4.0), "speech": pytest.approx(1.0)}
    done = run(env, "usage", "--since", "30d", "--group-by", "project", "-o", "csv")
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert {r["projectName"]: float(r["allocatedGpuHours"]) for r in rows} == figures
    done = run(env, "usage", "--since", "30d", "--group-by", "project")
    header, first, second = done.stdout.strip().splitlines()[:3]
    assert header.split()[:2] == ["PROJECT", "ALLOCATED"]
    assert first.split()[:2] == ["vision", "4.0"] and second.split()[:2] == ["speech", "1.0"]
    done = run(env, "usage", "--since", "30d")
    assert done.stdout.splitlines()[1].split()[0] == "5.0"


def test_usage_of_one_node_pool_by_project(env):
    # Every workload of the server's cluster runs in its pool "default".
    done = run(
        env, "usage", "--group-by", "project", "-f", "nodepool==default",
        "--filter", "projectName==vision", "-o", "json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (vision,) = json.loads(done.stdout)
    assert vision["allocatedGpuHours"] == pytest.approx(4.0)
    done = run(env, "usage", "-f", "nodepool==a100", "-o", "json")
    assert json.loads(done.stdout)[0]["allocatedGpuHours"] == 0
    done = run(env, "usage", "-f", "nodepool")
    assert done.returncode == 2
    assert "filterBy" in done.stderr


def test_reports_create_wait_list_get_download_delete(env, tmp_path):
    done = run(
        env, "reports", "create", "monthly", "--since", "7d", "--group-by", "Project",
        "--wait", "-o", "json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    created = json.loads(done.stdout)
    assert created["status"] == "Ready"
    listed = run(env, "reports", "list", "-o", "json")
    assert [r["id"] for r in json.loads(listed.stdout)] == [created["id"]]
    got = run(env, "reports", "get", created["id"])
    assert "Ready" in got.stdout and "monthly" in got.stdout
    target = tmp_path / "report.csv"
    assert run(env, "reports", "download", created["id"], "--file", str(target)).returncode == 0
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert sum(float(r["allocatedGpuHours"]) for r in rows) == pytest.approx(5.0)
    assert run(env, "reports", "delete", created["id"]).returncode == 0
    missing = run(env, "reports", "get", created["id"])
    assert missing.returncode == 4


def test_a_null_figure_is_shown_unknown_and_sorted_last():
    # The API answers null for a figure it cannot give; the table says so instead of failing.
    figures = {f: 1.0 for f, _ in FIGURES}
    values = [
        {"groups": [{"name": "lab"}], **figures, "allocatedGpuHours": None},
        {"groups": [{"name": "vision"}], **figures, "usedGpuHours": 0.5},
    ]
    vision, lab = usage_rows(values)
    assert vision[:3] == ["vision", "1.0", "0.5"] and vision[-1] == "50%"
    assert lab[:2] == ["lab", UNKNOWN] and lab[-1] == UNKNOWN


def test_group_by_takes_a_comma_list_as_telemetry_does(env):
    repeated = run(env, "usage", "--group-by", "project", "--group-by", "cluster", "-o", "json")
    assert repeated.returncode == 0, repeated.stderr
    for given in ("project,cluster", "Project, Cluster"):
        done = run(env, "usage", "--group-by", given, "-o", "json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == json.loads(repeated.stdout)
    done = run(env, "usage", "--group-by", "project,colour")
    assert done.returncode == 2 and "argument --group-by: invalid choice" in done.stderr


@pytest.mark.parametrize(
    ("since", "start"),
    [
        (timedelta(hours=24), datetime(2026, 12, 5, 20, 13, tzinfo=UTC)),
        (timedelta(days=7), datetime(2026, 11, 29, 20, 13, tzinfo=UTC)),
        (timedelta(days=30), datetime(2026, 11, 6, tzinfo=UTC)),
        (timedelta(days=90), datetime(2026, 9, 7, tzinfo=UTC)),
    ],
)
def test_a_window_starts_where_the_dashboards_of_that_name_does(since, start):
    # The dashboard draws up to a week by the hour (the API rounds the start down to it) and
    # longer windows by whole UTC days: "30d" on the 6th at 20:13 starts on the 6th of November.
    assert usage_start(datetime(2026, 12, 6, 20, 13, tzinfo=UTC), since) == start
