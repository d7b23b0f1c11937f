"""The installed ``gpufleet`` program, run as a process against a real demo server.

Covers what a new user meets first: workloads by name, readable telemetry tables with totals,
the wide listing's requested and idle GPUs, the server's warning about unknown parameters,
the help text, the message before login, and shell completion in bash, zsh and fish.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from gpufleet.client.output import Printer, print_workloads
from tests.support.databases import ADMIN_ID, ADMIN_SECRET
from tests.support.demo_server import SERVER_MAINTAINED

pytestmark = pytest.mark.e2e

GPUFLEET = str(Path(sys.executable).with_name("gpufleet"))


def run(env: dict[str, str], *argv: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """``gpufleet ARGV…`` as a process; its stdout is a pipe, so tables are plain text."""
    return subprocess.run(
        [GPUFLEET, *argv],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def demo(demo_module):
    return demo_module


@pytest.fixture(scope="module")
def api(demo_api):
    return demo_api


@pytest.fixture(scope="module")
def env(demo, tmp_path_factory) -> dict[str, str]:
    """The environment of a user logged in to the demo server."""
    config = tmp_path_factory.mktemp("cli") / "config.json"
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GPUFLEET_")},
        "GPUFLEET_CONFIG": str(config),
    }
    login = run(environment, "login", demo.url, "--client-id", ADMIN_ID, stdin=ADMIN_SECRET)
    assert login.returncode == 0, login.stderr
    return environment


def _report(api: httpx.Client, template: dict, **changes) -> dict:
    """Report a copy of a demo workload with ``changes`` through the ingest API."""
    document = api.get(f"/api/v1/workloads/{template['id']}").json()
    for maintained in SERVER_MAINTAINED:
        document.pop(maintained, None)
    observed = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    document.update(id=str(uuid.uuid4()), pods=[], observedAt=observed, **changes)
    answer = api.post(
        f"/api/v1/ingest/clusters/{document['clusterId']}/workloads",
        json={"workloads": [document]},
    )
    assert answer.status_code == 200, answer.text
    return document


@pytest.fixture(scope="module")
def twins(api) -> list[dict]:
    """Two workloads with one name, in two projects of the same cluster."""
    listed = api.get("/api/v1/workloads", params={"limit": 500}).json()["workloads"]
    first = listed[0]
    second = next(
        w
        for w in listed
        if w["clusterId"] == first["clusterId"] and w["projectName"] != first["projectName"]
    )
    name = f"twin-{uuid.uuid4().hex[:6]}"
    return [_report(api, template, name=name) for template in (first, second)]


@pytest.fixture(scope="module")
def big_pending(api) -> dict:
    """A Pending workload asking for 64 GPUs and holding none."""
    template = api.get(
        "/api/v1/workloads", params={"filterBy": "phase==Running", "limit": 1}
    ).json()["workloads"][0]
    return _report(
        api,
        template,
        name=f"big-{uuid.uuid4().hex[:6]}",
        phase="Pending",
        phaseMessage="Waiting for 64 GPUs",
        allocatedResources={"gpu": 0.0},
        workloadRequestedResources={"gpu": {"request": 64.0}},
        currentNodePools=[],
    )


# Item: workloads by name.


def test_get_by_a_unique_name(env, big_pending):
    shown = run(env, "workloads", "get", big_pending["name"])
    assert shown.returncode == 0, shown.stderr
    assert re.search(rf"^ID:\s+{big_pending['id']}$", shown.stdout, re.M)


def test_a_shared_name_lists_the_candidates_and_project_chooses(env, twins):
    name = twins[0]["name"]
    ambiguous = run(env, "workloads", "get", name)
    assert ambiguous.returncode == 2
    assert ambiguous.stdout == ""
    assert ambiguous.stderr.startswith(f"gpufleet: error: 2 workloads are named {name!r}: ")
    for twin in twins:
        assert f"{twin['projectName']}/{name} ({twin['id']})" in ambiguous.stderr
    assert "--project" in ambiguous.stderr
    for twin in twins:
        chosen = run(env, "workloads", "get", name, "--project", twin["projectName"], "-o", "json")
        assert chosen.returncode == 0, chosen.stderr
        assert json.loads(chosen.stdout)["id"] == twin["id"]
    elsewhere = run(env, "workloads", "get", name, "--project", "no-such-project")
    assert elsewhere.returncode == 4
    assert "in project 'no-such-project'" in elsewhere.stderr


def test_metrics_take_a_name_too(env, demo, api):
    charted = run(env, "metrics", demo.charted_name, "--type", "CPU_USAGE_CORES", "-o", "json")
    assert charted.returncode == 0, charted.stderr
    measured = json.loads(charted.stdout)["measurements"]
    assert [m["type"] for m in measured] == ["CPU_USAGE_CORES"]
    assert measured[0]["values"], "the charted workload has CPU samples"
    unknown = run(env, "metrics", "no-such-workload")
    assert unknown.returncode == 4
    assert "no workload named 'no-such-workload'" in unknown.stderr


def test_an_id_in_another_project_is_not_found(env, twins):
    first, second = twins
    wrong = run(env, "workloads", "get", first["id"], "--project", second["projectName"])
    assert wrong.returncode == 4
    assert f"is in project {first['projectName']!r}" in wrong.stderr


# Item: requested and idle GPUs.


def test_wide_shows_requested_and_idle_gpus(env, big_pending):
    wide = run(env, "workloads", "list", "-f", f"name=={big_pending['name']}", "-o", "wide")
    assert wide.returncode == 0, wide.stderr
    header, row = wide.stdout.splitlines()
    assert "REQUESTED GPUS" in header and "IDLE GPUS" in header
    # Right-aligned: the value ends where its header ends.
    end = header.index("REQUESTED GPUS") + len("REQUESTED GPUS")
    assert row[:end].endswith(" 64")


def test_idle_gpus_prefer_the_fractional_figure():
    rows = [
        {"name": "a", "idleAllocatedGpus": 1.5, "idleGpus": 2},
        {"name": "b", "idleGpus": 3},
        {"name": "c"},
    ]
    stream = io.StringIO()
    print_workloads(Printer(stream), rows, "wide")
    lines = stream.getvalue().splitlines()
    end = lines[0].index("IDLE GPUS") + len("IDLE GPUS")
    assert [line[end - 9 : end].strip() for line in lines[1:]] == ["1.5", "3", ""]


def test_get_of_a_pending_job_shows_the_gpus_it_asked_for(env, big_pending):
    shown = run(env, "workloads", "get", big_pending["id"])
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"^GPUs requested:\s+64$", shown.stdout, re.M)
    assert re.search(r"^GPUs allocated:\s+0$", shown.stdout, re.M)


# Item: telemetry tables and the node-pool grouping that used to fail.


def _rows(table: str) -> tuple[str, list[str]]:
    lines = table.splitlines()
    return lines[1], lines[2:]


def test_telemetry_table_has_names_readable_headers_aligned_numbers_and_a_total(env, api):
    grouped = run(env, "telemetry", "WORKLOADS_COUNT", "--group-by", "DepartmentId,ProjectId")
    assert grouped.returncode == 0, grouped.stderr
    header, rows = _rows(grouped.stdout)
    assert header.split() == ["DEPARTMENT", "PROJECT", "WORKLOADS"]
    body = api.get(
        "/api/v1/workloads/telemetry",
        params={"telemetryType": "WORKLOADS_COUNT", "groupBy": "DepartmentId,ProjectId"},
    ).json()
    names = {g["name"] for v in body["values"] for g in v["groups"]}
    ids = {g["value"] for v in body["values"] for g in v["groups"]}
    shown = {cell for row in rows[:-1] for cell in row.split()[:2]}
    assert shown <= names and not (shown & (ids - names))
    end = len(header)
    assert all(len(row) == end for row in rows), "numbers end under the end of their header"
    total = api.get("/api/v1/workloads/count").json()["count"]
    assert rows[-1].split() == ["TOTAL", str(total)]


def test_telemetry_by_node_pool_filtered_by_one(env, api):
    pools = api.get(
        "/api/v1/workloads/telemetry",
        params={"telemetryType": "WORKLOADS_COUNT", "groupBy": "CurrentNodepools"},
    ).json()["values"]
    pool = next(v["groups"][0]["value"] for v in pools if v["groups"][0]["value"])
    shown = run(
        env, "telemetry", "GPU_ALLOCATION", "--group-by", "CurrentNodepools", "--nodepool", pool
    )
    assert shown.returncode == 0, shown.stderr
    header, rows = _rows(shown.stdout)
    assert header.split() == ["NODEPOOL", "GPUS"]
    expected = api.get(
        "/api/v1/workloads/telemetry",
        params={"telemetryType": "GPU_ALLOCATION", "nodepoolName": pool},
    ).json()["values"][0]["value"]
    assert rows[-1].split() == ["TOTAL", expected]
    assert any(row.split()[0] == pool for row in rows[:-1])


# Item: unknown query parameters.


def test_the_server_names_ignored_parameters_and_the_cli_prints_them(env, demo, api):
    answer = api.get("/api/v1/workloads", params={"filterby": "phase==Running", "limit": 1})
    assert answer.status_code == 200
    assert answer.headers["warning"] == '299 - "unknown query parameters ignored: filterby"'
    known = api.get("/api/v1/workloads", params={"filterBy": "phase==Running", "limit": 1})
    assert "warning" not in known.headers
    counted = run(env, "workloads", "count", "--param", "filterby=phase==Running")
    assert counted.returncode == 0, counted.stderr
    assert counted.stderr == ("gpufleet: warning: unknown query parameters ignored: filterby\n")
    assert int(counted.stdout) == api.get("/api/v1/workloads/count").json()["count"]


# Item: messages and help.


def test_before_login_the_message_names_the_client_id_flag(tmp_path):
    env = {"PATH": os.environ["PATH"], "GPUFLEET_CONFIG": str(tmp_path / "none.json")}
    listed = run(env, "workloads", "list")
    assert listed.returncode == 3
    assert "gpufleet login URL --client-id CLIENT_ID" in listed.stderr


def test_help_lists_every_command_in_plain_words():
    from gpufleet.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    shown = run(dict(os.environ), "--help")
    assert shown.returncode == 0
    assert "``" not in shown.stdout
    listed = re.findall(r"^    (\S+)\s+\S", shown.stdout, re.M)
    assert set(commands) <= set(listed)
    assert "completion" in commands


# Item: shell completion.


def _script(shell: str, tmp_path: Path) -> Path:
    made = run(dict(os.environ), "completion", shell)
    assert made.returncode == 0, made.stderr
    path = tmp_path / f"gpufleet.{shell}"
    path.write_text(made.stdout)
    return path


CASES = [
    ("gpufleet wo", {"workloads"}),
    ("gpufleet workloads ", {"list", "get", "count", "events"}),
    ("gpufleet pods ", {"list"}),
    ("gpufleet nodes ", {"list", "get"}),
    ("gpufleet workloads list --so", {"--sort"}),
    ("gpufleet workloads list -o ", {"table", "wide", "json", "yaml", "csv"}),
    ("gpufleet telemetry --group-by Cur", {"CurrentNodepools"}),
    ("gpufleet telemetry ALL", {"ALLOCATION_RATIO"}),
    ("gpufleet completion ", {"bash", "zsh", "fish"}),
]
FILTER_LINE = "gpufleet workloads list -f allocatedG"
FILTER_WORDS = {"allocatedGPU==", "allocatedGPU!=", "allocatedGPU<=", "allocatedGPU>="}


def _bash(script: Path, line: str) -> set[str]:
    program = (
        f"source {script}\n"
        'COMP_LINE="$1"; COMP_POINT=${#1}\n'
        'read -ra COMP_WORDS <<< "$1"; [[ "$1" == *" " ]] && COMP_WORDS+=("")\n'
        "COMP_CWORD=$((${#COMP_WORDS[@]} - 1))\n"
        '_gpufleet; printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(
        ["bash", "-c", program, "bash", line], capture_output=True, text=True, check=True
    )
    return set(done.stdout.split())


def _zsh(script: Path, line: str) -> set[str]:
    # Outside a completion widget compadd does nothing; this one prints what was offered.
    program = (
        "compdef() { : }\n"
        'compadd() { [[ $1 == -S ]] && shift 2; shift; print -l -- "$@" }\n'
        f"source {script}\n"
        'words=(${(z)1}); [[ $1 == *" " ]] && words+=("")\n'
        "CURRENT=${#words}\n"
        "_gpufleet\n"
    )
    done = subprocess.run(
        ["zsh", "-f", "-c", program, "zsh", line], capture_output=True, text=True, check=True
    )
    current = line.split(" ")[-1]
    return {word for word in done.stdout.split() if word.startswith(current)}


def _fish(script: Path, line: str) -> set[str]:
    program = f"source {script}; complete --do-complete $argv[1]"
    done = subprocess.run(
        ["fish", "--no-config", "-c", program, line], capture_output=True, text=True, check=True
    )
    return {entry.split("\t")[0] for entry in done.stdout.splitlines()}


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_offers_commands_flags_choices_and_filters(shell, tmp_path):
    script = _script(shell, tmp_path)
    complete = {"bash": _bash, "zsh": _zsh, "fish": _fish}[shell]
    for line, expected in CASES:
        assert complete(script, line) == expected, line
    assert complete(script, FILTER_LINE) == FILTER_WORDS


def test_completion_filters_come_from_the_field_catalogue(tmp_path):
    from gpufleet.core.workload_fields import QUERY_FIELDS

    script = _script("bash", tmp_path)
    offered = _bash(script, "gpufleet workloads count -f ")
    assert {word.split("=")[0].split("!")[0].split("<")[0].split(">")[0] for word in offered} == {
        f.name for f in QUERY_FIELDS if f.filterable
    }
    assert "phase=@" in offered and "createdAt=@" not in offered
