"""The terminal client against a real ``gpufleet serve --demo`` process.

Commands run through ``gpufleet.cli.main`` (the function the ``gpufleet`` script calls, whose
return value is the exit code), plus a few through a real subprocess. Outputs are parsed back
and compared with what the API returns for the same request.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import yaml

import gpufleet
from gpufleet.cli import main
from gpufleet.client.charts import Series, braille_rows, format_number, render_chart
from gpufleet.client.config import load_config
from gpufleet.client.exit_codes import ExitCode, exit_code_for_status
from gpufleet.client.http import ClientError, error_message
from gpufleet.client.metric_commands import metric_series, parse_since, value_unit
from gpufleet.client.output import Printer, print_workloads
from tests.support.databases import ADMIN_ID, ADMIN_SECRET
from tests.support.demo_server import demo_server
from tests.support.ports import free_port

pytestmark = pytest.mark.e2e

# Computed against each request's "now" (or recomputed by a background task), so two
# requests a moment apart may differ there.
MOVING_FIELDS = (
    "totalPendingTimeSeconds",
    "totalRunningTimeSeconds",
    "idleGpus",
    "idleAllocatedGpus",
)
ANSI = re.compile(r"\x1b\[")


def stable(workload: dict) -> dict:
    return {k: v for k, v in workload.items() if k not in MOVING_FIELDS}


@pytest.fixture(scope="module")
def demo(request, tmp_path_factory):
    with demo_server(request, tmp_path_factory) as server:
        yield server


@pytest.fixture(scope="module")
def api(demo):
    with demo.api() as client:
        yield client


@pytest.fixture
def config_path(tmp_path, monkeypatch):
    path = tmp_path / "xdg" / "gpufleet" / "config.json"
    monkeypatch.delenv("GPUFLEET_CONFIG", raising=False)
    monkeypatch.delenv("GPUFLEET_PROFILE", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    return path


def run(capsys, *argv: str, stdin: str | None = None, monkeypatch=None) -> tuple[int, str, str]:
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def cli(demo, config_path, capsys, monkeypatch):
    """Run client commands logged in to the demo server; returns (exit code, stdout, stderr)."""
    code, _, err = run(
        capsys,
        "login",
        demo.url,
        "--client-id",
        ADMIN_ID,
        stdin=ADMIN_SECRET + "\n",
        monkeypatch=monkeypatch,
    )
    assert code == 0, err
    return lambda *argv: run(capsys, *argv)


def test_login_writes_a_private_profile_with_a_working_token(
    demo, config_path, capsys, monkeypatch
):
    code, out, err = run(
        capsys,
        "login",
        demo.url + "/",
        "--client-id",
        ADMIN_ID,
        "--profile",
        "lab",
        stdin=ADMIN_SECRET + "\n",
        monkeypatch=monkeypatch,
    )
    assert (code, err) == (0, "")
    assert "profile 'lab'" in out
    assert stat.S_IMODE(config_path.stat().st_mode) == 0o600
    config = load_config(config_path)
    assert config.current == "lab"
    profile = config.profiles["lab"]
    assert (profile.url, profile.client_id, profile.client_secret) == (
        demo.url,
        ADMIN_ID,
        ADMIN_SECRET,
    )

    code, out, _ = run(capsys, "token")
    assert code == 0
    token = out.strip()
    answer = httpx.get(
        demo.url + "/api/v1/workloads/count", headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 200


def test_login_with_a_wrong_secret_is_an_auth_error_and_writes_nothing(
    demo, config_path, capsys, monkeypatch
):
    code, out, err = run(
        capsys,
        "login",
        demo.url,
        "--client-id",
        "nobody-at-all",
        "--client-secret",
        "wrong",
    )
    assert code == 3
    assert out == ""
    assert err.startswith("gpufleet: error: login refused") and err.count("\n") == 1
    assert not config_path.exists()


@pytest.mark.parametrize("suffix", ["/api/v1", "/api/v1/"])
def test_login_to_the_api_prefix_saves_the_server_root(demo, config_path, capsys, suffix):
    code, out, err = run(
        capsys, "login", demo.url + suffix, "--client-id", ADMIN_ID, "--client-secret", ADMIN_SECRET
    )
    assert code == 0, err
    assert load_config(config_path).profiles["default"].url == demo.url
    assert out.startswith(f"Logged in to {demo.url} as ")


def test_login_to_a_url_with_a_path_hints_at_the_root(demo, config_path, capsys):
    code, out, err = run(
        capsys, "login", demo.url + "/gpufleet", "--client-id", ADMIN_ID, "--client-secret", "x"
    )
    assert (code, out) == (4, "")
    assert err.count("\n") == 1
    assert f"has a path: give the server's root URL, e.g. {demo.url}" in err
    assert not config_path.exists()


@pytest.mark.parametrize(
    ("url", "expected"),
    [("ftp://example.org", 2), ("localhost:8080", 2), ("http://127.0.0.1:{port}", 5)],
)
def test_login_to_a_bad_or_unreachable_url(config_path, capsys, url, expected):
    url = url.format(port=free_port())
    code, _, err = run(capsys, "login", url, "--client-id", "a", "--client-secret", "b")
    assert code == expected
    assert err.startswith("gpufleet: error: ") and err.count("\n") == 1


def test_commands_before_login_say_so(config_path, capsys):
    code, _, err = run(capsys, "workloads", "list")
    assert code == 3
    assert "not logged in" in err


def test_list_json_yaml_and_csv_are_what_the_api_returns(cli, api):
    params = {"sortBy": "name", "limit": 20, "filterBy": "phase!=Running"}
    expected = api.get("/api/v1/workloads", params=params).json()["workloads"]
    assert len(expected) == 20
    argv = ("workloads", "list", "--sort", "name", "--limit", "20", "-f", "phase!=Running")

    code, out, err = cli(*argv, "-o", "json")
    assert (code, err) == (0, "")
    as_json = json.loads(out)
    assert [stable(w) for w in as_json] == [stable(w) for w in expected]

    code, out, _ = cli(*argv, "-o", "yaml")
    assert code == 0
    assert [stable(w) for w in yaml.safe_load(out)] == [stable(w) for w in expected]

    code, out, _ = cli(*argv, "-o", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["id"], r["name"], r["phase"], r["projectName"]) for r in rows] == [
        (w["id"], w["name"], w["phase"], w["projectName"]) for w in expected
    ]


def test_table_and_wide_are_plain_text_when_not_a_terminal(cli, api):
    expected = api.get("/api/v1/workloads", params={"sortBy": "name", "limit": 7}).json()
    code, out, _ = cli("workloads", "list", "--sort", "name", "--limit", "7")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "TYPE", "PROJECT", "PHASE", "GPUS", "AGE"]
    assert [line.split()[0] for line in lines[1:]] == [w["name"] for w in expected["workloads"]]
    assert not ANSI.search(out)

    code, out, _ = cli("workloads", "list", "--sort", "name", "--limit", "7", "-o", "wide")
    assert code == 0
    assert "SUBMITTED BY" in out.splitlines()[0]
    # Clusters by name, as nodes list and nodepools show them.
    names = {c["uuid"]: c["name"] for c in api.get("/api/v1/clusters").json()}
    for workload, line in zip(expected["workloads"], out.splitlines()[1:], strict=True):
        assert workload["id"] in line
        assert f" {names[workload['clusterId']]} " in line and workload["clusterId"] not in line


def test_desc_and_offset_page_through_the_same_order(cli, api):
    expected = api.get(
        "/api/v1/workloads", params={"sortBy": "createdAt", "sortOrder": "desc", "limit": 10}
    ).json()["workloads"]
    code, out, _ = cli(
        "workloads",
        "list",
        "--sort",
        "createdAt",
        "--desc",
        "--limit",
        "5",
        "--offset",
        "5",
        "-o",
        "json",
    )
    assert code == 0
    assert [w["id"] for w in json.loads(out)] == [w["id"] for w in expected[5:]]


def test_all_walks_every_page(cli, api):
    total = api.get("/api/v1/workloads/count", params={"filterBy": "phase!=Running"}).json()
    assert total["count"] > 37 * 2  # several pages of 37
    code, out, err = cli(
        "workloads", "list", "--all", "--limit", "37", "-f", "phase!=Running", "-o", "json"
    )
    assert (code, err) == (0, "")  # no progress bar when stderr is not a terminal
    ids = [w["id"] for w in json.loads(out)]
    assert len(ids) == len(set(ids)) == total["count"]


def test_count_matches_the_api(cli, api):
    for filters in ([], ["phase==Pending"], ["phase==Running", "projectName=@a"]):
        expected = api.get("/api/v1/workloads/count", params={"filterBy": filters}).json()
        argv = [arg for f in filters for arg in ("-f", f)]
        code, out, _ = cli("workloads", "count", *argv)
        assert code == 0
        assert int(out) == expected["count"]
    code, out, _ = cli("workloads", "count", "-o", "json")
    assert json.loads(out) == api.get("/api/v1/workloads/count").json()


def test_get_describes_a_workload_and_prints_it_as_json(cli, api, demo):
    expected = api.get(f"/api/v1/workloads/{demo.charted_id}").json()
    code, out, _ = cli("workloads", "get", demo.charted_id)
    assert code == 0
    assert re.search(rf"^Name:\s+{re.escape(expected['name'])}$", out, re.M)
    assert re.search(r"^Phase:\s+Running$", out, re.M)
    (cluster,) = [
        c for c in api.get("/api/v1/clusters").json() if c["uuid"] == expected["clusterId"]
    ]
    assert re.search(rf"^Cluster:\s+{cluster['name']} \({cluster['uuid']}\)$", out, re.M)
    code, out, _ = cli("workloads", "get", demo.charted_id, "-o", "json")
    assert stable(json.loads(out)) == stable(expected)


def test_get_shows_pending_scheduling_messages(cli, api):
    pending = api.get(
        "/api/v1/workloads", params={"filterBy": "phase==Pending", "limit": 100}
    ).json()["workloads"]
    detailed = [api.get(f"/api/v1/workloads/{w['id']}").json() for w in pending[:30]]
    with_messages = [w for w in detailed if w.get("pendingSchedulingMessages")]
    assert with_messages, "the demo should have pending workloads with scheduling messages"
    workload = with_messages[0]
    code, out, _ = cli("workloads", "get", workload["id"])
    assert code == 0
    assert "Pending scheduling messages:" in out
    assert workload["pendingSchedulingMessages"][0]["reason"] in out


@pytest.mark.parametrize(
    ("argv", "expected_code", "mentions"),
    [
        (("workloads", "get", "00000000-0000-4000-8000-000000000000"), 4, "not found"),
        (("workloads", "get", "no-such-workload"), 4, "no workload named 'no-such-workload'"),
        (("workloads", "list", "-f", "bogus==1"), 2, "filterBy"),
        (("workloads", "list", "-f", "name=='; DROP TABLE workloads; --"), 0, None),
        (("workloads", "list", "-f", "name==ñø-✓-名前"), 0, None),
        (("workloads", "list", "--sort", "nonsense"), 2, "sortBy"),
        (("workloads", "list", "--offset", "-1"), 2, "offset"),
        (("workloads", "count", "--profile", "nope"), 3, "no profile named 'nope'"),
        (("workloads", "list", "--limit", "100000"), 2, "limit"),
        (("telemetry", "GPU_ALLOCATION", "--group-by", "Colour"), 2, "groupBy"),
        (("metrics", "00000000-0000-4000-8000-000000000000"), 4, "not found"),
        (("metrics", "{id}", "--type", "NOT_A_TYPE"), 2, "metricType"),
        (("metrics", "{id}", "--since", "soon"), 2, "--since"),
    ],
)
def test_errors_are_one_line_with_a_meaningful_exit_code(cli, demo, argv, expected_code, mentions):
    code, out, err = cli(*(arg.format(id=demo.charted_id) for arg in argv))
    assert code == expected_code, err
    if mentions is None:
        assert out == ""
        assert err == "No workloads found.\n"
        return
    assert out == ""
    assert err.startswith("gpufleet: error: ") and err.count("\n") == 1
    assert mentions in err


def test_telemetry_groups_add_up_to_the_count(cli, api):
    code, out, _ = cli("telemetry", "WORKLOADS_COUNT", "--group-by", "Phase", "-o", "json")
    assert code == 0
    body = json.loads(out)
    total = api.get("/api/v1/workloads/count").json()["count"]
    assert sum(int(v["value"]) for v in body["values"]) == total

    code, out, _ = cli("telemetry", "WORKLOADS_COUNT", "--group-by", "Phase")
    assert code == 0
    assert out.splitlines()[1].split() == ["PHASE", "WORKLOADS"]
    assert re.search(r"^Running\s+\d+$", out, re.M)
    assert re.search(rf"^TOTAL\s+{total}$", out, re.M)

    code, out, _ = cli(
        "telemetry", "GPU_ALLOCATION", "--group-by", "DepartmentId,ProjectId", "-o", "csv"
    )
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows and set(rows[0]) == {
        "DepartmentId",
        "DepartmentIdName",
        "ProjectId",
        "ProjectIdName",
        "value",
    }


def test_metrics_draws_one_chart_per_series(cli, demo):
    code, out, err = cli(
        "metrics",
        demo.charted_id,
        "--type",
        "GPU_UTILIZATION,CPU_USAGE_CORES",
        "--since",
        "6h",
        "--width",
        "70",
        "--height",
        "5",
    )
    assert (code, err) == (0, "")
    titles = [line for line in out.splitlines() if line.startswith(("GPU_", "CPU_"))]
    assert [t.split("  ")[0] for t in titles] == [
        "GPU_UTILIZATION gpu=0",
        "GPU_UTILIZATION gpu=1",
        "CPU_USAGE_CORES",
    ]
    assert all(" min " in t and " max " in t and " last " in t for t in titles)
    chart_rows = [line for line in out.splitlines() if "┤" in line]
    assert len(chart_rows) == 3 * 5
    # Braille dots other than the blank cell: the lines were really drawn.
    assert all(re.search("[\u2801-\u28ff]", row) for row in chart_rows)
    assert max(len(line) for line in out.splitlines()) <= 70


def test_metrics_json_is_the_api_answer(cli, demo):
    code, out, _ = cli(
        "metrics", demo.charted_id, "--type", "GPU_UTILIZATION", "-o", "json", "--samples", "12"
    )
    assert code == 0
    body = json.loads(out)
    series = [m for m in body["measurements"] if m["type"] == "GPU_UTILIZATION"]
    assert sorted(m["labels"]["gpu"] for m in series) == ["0", "1"]
    assert all(len(m["values"]) <= 12 for m in series)


def test_an_expired_cached_token_is_replaced_and_saved(cli, config_path):
    config = load_config(config_path)
    old = config.profiles["default"].token
    raw = json.loads(config_path.read_text())
    raw["profiles"]["default"]["token_expires_at"] = 0
    config_path.write_text(json.dumps(raw))
    code, out, _ = cli("token")
    assert code == 0
    fresh = load_config(config_path).profiles["default"]
    assert out.strip() == fresh.token
    assert fresh.token_expires_at > 0
    assert old is not None


def test_a_rejected_cached_token_is_renewed_once(cli, config_path):
    raw = json.loads(config_path.read_text())
    raw["profiles"]["default"]["token"] = "not.a.token"
    config_path.write_text(json.dumps(raw))
    code, out, _ = cli("workloads", "count")
    assert code == 0 and int(out) > 0
    assert load_config(config_path).profiles["default"].token != "not.a.token"


def test_a_server_that_went_away_is_unavailable(cli, config_path):
    raw = json.loads(config_path.read_text())
    raw["profiles"]["default"]["url"] = f"http://127.0.0.1:{free_port()}"
    config_path.write_text(json.dumps(raw))
    code, _, err = cli("workloads", "list")
    assert code == 5
    assert err.startswith("gpufleet: error: cannot connect to")


def test_the_installed_entry_point_reports_exit_codes(cli, config_path, demo):
    env = {**os.environ, "GPUFLEET_CONFIG": str(config_path)}
    command = [sys.executable, "-m", "gpufleet.cli"]
    ok = subprocess.run(
        [*command, "workloads", "count", "-f", "phase==Running"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert int(ok.stdout) > 0
    missing = subprocess.run(
        [*command, "workloads", "get", "00000000-0000-4000-8000-000000000000"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert missing.returncode == 4
    assert missing.stdout == ""
    with pytest.raises(SystemExit) as usage:
        main(["workloads", "list", "-o", "xml"])
    assert usage.value.code == 2


# The pieces below need no server.


def test_braille_chart_of_a_rising_series_starts_low_and_ends_high():
    rows = braille_rows([0, 1, 2, 3, 4, 5, 6, 7], width=4, height=2)
    assert len(rows) == 2 and all(len(row) == 4 for row in rows)
    blank = "\u2800"
    assert rows[1][0] != blank and rows[0][0] == blank  # first point at the bottom
    assert rows[0][-1] != blank and rows[1][-1] == blank  # last point at the top


def test_a_flat_or_empty_series_still_renders():
    flat = render_chart(Series("FLAT", [3.0] * 10), width=30, height=3)
    assert "min 3  max 3  last 3" in flat[0]
    assert any(ch != "\u2800" for ch in flat[2].split("┤")[1])  # drawn across the middle
    assert render_chart(Series("NONE", [float("nan")]), width=30)[1].strip() == (
        "(no data in this range)"
    )


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [(1536 * 1024**2, "bytes", "1.5GiB"), (42.123, "%", "42.1%"), (0.25, "cores", "0.25 cores")],
)
def test_chart_labels_carry_units(value, unit, text):
    assert format_number(value, unit) == text


@pytest.mark.parametrize(
    ("metric_type", "unit"),
    [
        ("GPU_UTILIZATION", "%"),
        ("GPU_MEMORY_USAGE_BYTES", "bytes"),
        ("NVLINK_BANDWIDTH_TOTAL", "bytes/s"),
        ("NIM_TIME_TO_FIRST_TOKEN_SECONDS_PERCENTILES", "s"),
        # A histogram's values count requests; seconds are the unit of its bucket bounds.
        ("NIM_TIME_TO_FIRST_TOKEN_SECONDS", ""),
        ("NIM_REQUEST_SUCCESS_TOTAL", ""),
        ("A_TYPE_OF_A_NEWER_SERVER_SECONDS", ""),
    ],
)
def test_chart_units_come_from_the_metric_catalogue(metric_type, unit):
    assert value_unit(metric_type) == unit


def test_histogram_charts_are_titled_by_bucket_and_count_requests():
    body = {
        "histogram": [
            {
                "type": "NIM_TIME_TO_FIRST_TOKEN_SECONDS",
                "values": [
                    {"timestamp": "t0", "data": {"0.01": "696", "+Inf": "900"}},
                    {"timestamp": "t1", "data": {"0.01": "37", "+Inf": "183"}},
                ],
            },
            {
                "type": "NIM_TIME_TO_FIRST_TOKEN_SECONDS_PERCENTILES",
                "values": [{"timestamp": "t0", "data": {"p90": "0.25"}}],
            },
        ]
    }
    charts = metric_series(body)
    assert [(c.title, c.unit) for c in charts] == [
        ("NIM_TIME_TO_FIRST_TOKEN_SECONDS bucket le=0.01 s", ""),
        ("NIM_TIME_TO_FIRST_TOKEN_SECONDS bucket le=+Inf", ""),
        ("NIM_TIME_TO_FIRST_TOKEN_SECONDS_PERCENTILES p90", "s"),
    ]
    title = render_chart(charts[0], width=100)[0]
    assert "min 37  max 696  last 37" in title


def test_large_counts_and_long_titles_stay_readable():
    assert [format_number(v) for v in (3263, 12_345, 4_500_000)] == ["3263", "12.3k", "4.5M"]
    lines = render_chart(Series("A_LONG_TITLE gpu=0", [1.0, 2.0], unit="%"), width=30)
    assert lines[:2] == ["A_LONG_TITLE gpu=0", "min 1%  max 2%  last 2%"]


@pytest.mark.parametrize("width", [50, 60, 100])
def test_the_time_axis_never_runs_two_timestamps_together(width):
    first, last = "2026-12-06T08:25:29.000Z", "2026-12-06T09:22:29.000Z"
    axis = render_chart(Series("T", [1.0, 2.0], first, last), width=width)[-1].strip()
    assert axis == first or (axis.startswith(first + " ") and axis.endswith(" " + last))


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("6h", 21600), ("1h30m", 5400)])
def test_since_accepts_durations(text, seconds):
    assert parse_since(text).total_seconds() == seconds


@pytest.mark.parametrize(
    "text", ["", "6", "h", "-1h", "6 hours", "0m", "99999999d", "3000000000000000000000d"]
)
def test_since_rejects_anything_else(text):
    with pytest.raises(ClientError) as failure:
        parse_since(text)
    assert failure.value.exit_code == 2


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_tables_on_a_terminal_colour_phases_and_fit_its_width(monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")
    stream = _Terminal()
    printer = Printer(stream)
    workload = {
        "name": "a-very-long-workload-name-" * 4,
        "type": "Training",
        "projectName": "vision",
        "phase": "Failed",
        "allocatedResources": {"gpu": 2},
        "createdAt": "2020-01-01T00:00:00Z",
    }
    print_workloads(printer, [workload], "table")
    out = stream.getvalue()
    assert ANSI.search(out)  # coloured
    plain = ANSI.sub("", re.sub(r"\x1b\[[0-9;]*m", "", out))
    assert max(len(line) for line in plain.splitlines()) <= 60
    assert "Failed" in plain and "…" in plain  # the long name is cut, not wrapped


@pytest.mark.parametrize(
    ("status", "code"),
    [(400, 2), (401, 3), (403, 3), (404, 4), (409, 2), (429, 5), (500, 1), (503, 5), (504, 5)],
)
def test_http_statuses_map_to_exit_codes(status, code):
    assert exit_code_for_status(status) == code


def test_error_lines_use_the_error_shape_and_survive_other_bodies():
    shaped = httpx.Response(400, json={"code": 400, "message": "Bad\nthing", "details": "x"})
    assert error_message(shaped) == "HTTP 400: Bad thing (x)"
    html = httpx.Response(502, text="<html>proxy says no</html>")
    assert error_message(html) == "HTTP 502: Bad Gateway"


def test_events_and_get_show_why_a_workload_is_pending(cli, api):
    pending = api.get(
        "/api/v1/workloads", params={"filterBy": "phase==Pending", "limit": 1}
    ).json()["workloads"][0]
    expected = api.get(f"/api/v1/workloads/{pending['id']}/events").json()["events"]
    code, out, _ = cli("workloads", "events", pending["id"], "-o", "json")
    assert code == 0
    assert json.loads(out) == expected
    code, out, _ = cli("workloads", "events", pending["id"])
    assert code == 0 and "FailedScheduling" in out and "Insufficient nvidia.com/gpu" in out
    code, out, _ = cli("workloads", "get", pending["id"])
    assert code == 0
    latest = out.split("Latest events:", 1)[1]
    assert "FailedScheduling" in latest


def test_fleet_events_are_the_apis_with_its_filters(cli, api):
    warnings = {"type": "Warning", "limit": 500}
    expected = api.get("/api/v1/events", params=warnings).json()["events"]
    assert expected, "the demo's pending workloads have FailedScheduling warnings"
    code, out, _ = cli("events", "--type", "Warning", "--limit", "500", "-o", "json")
    assert code == 0
    assert json.loads(out) == expected
    # A project by its name, its events only; the table names each event's workload.
    project = expected[0]["projectName"]
    mine = api.get(
        "/api/v1/events", params={"projectId": expected[0]["projectId"], "limit": 5}
    ).json()["events"]
    code, out, _ = cli("events", "--project", project, "--limit", "5")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:5] == ["TIME", "TYPE", "REASON", "PROJECT", "WORKLOAD"]
    rows = lines[1 : 1 + len(mine)]
    for event, line in zip(mine, rows, strict=True):
        assert event["projectName"] in line and event["workloadName"] in line
    total = api.get("/api/v1/events/count", params={"projectId": expected[0]["projectId"]}).json()[
        "count"
    ]
    assert total > 5, "the demo's projects have more events than a page of 5"
    assert lines[1 + len(mine) :] == [
        "",
        f"1-5 of {total:,} events, newest first (--offset and --limit show others)",
    ]
    # A workload by its id.
    workload = expected[0]["workloadId"]
    theirs = api.get("/api/v1/events", params={"workloadId": workload}).json()["events"]
    code, out, _ = cli("events", "--workload", workload, "-o", "json")
    assert code == 0
    assert json.loads(out) == theirs
    # The last hour only: between what the API lists since an hour before the command began
    # and since an hour before it ended, and fewer than the demo's day of events.
    before = datetime.now(UTC)
    code, out, _ = cli("events", "--since", "1h", "--limit", "500", "-o", "json")
    after = datetime.now(UTC)
    assert code == 0
    shown = {e["id"] for e in json.loads(out)}

    def since(moment: datetime) -> set[str]:
        params = {"since": (moment - timedelta(hours=1)).isoformat(), "limit": 500}
        return {e["id"] for e in api.get("/api/v1/events", params=params).json()["events"]}

    assert since(after) <= shown <= since(before)
    assert len(shown) < api.get("/api/v1/events/count").json()["count"]


def test_fleet_events_of_no_match_say_so_and_bad_flags_are_one_line(cli):
    assert cli("events", "--reason", "NoSuchReason") == (0, "", "No events found.\n")
    code, out, err = cli("events", "--since", "soon")
    assert (code, out) == (2, "")
    assert err.startswith("gpufleet: error: --since 'soon'")
    code, out, err = cli("events", "--cluster", "not-a-cluster")
    assert (code, out) == (4, "")
    assert err.startswith("gpufleet: error: no cluster named 'not-a-cluster'; known: ")
    code, out, err = cli("events", "--project", "no-such-project")
    assert (code, out) == (4, "")
    assert err.startswith("gpufleet: error: no project named 'no-such-project'; known: ")


def test_pods_list_filters_as_the_api_does(cli, api):
    params = {"filterBy": "currentNodepool==default", "sortBy": "createdAt", "limit": 20}
    expected = api.get("/api/v1/workloads/pods", params={**params, "verbosity": "full"}).json()
    code, out, _ = cli(
        "pods", "list", "-f", "currentNodepool==default", "--sort", "createdAt",
        "--limit", "20", "-o", "json",
    )  # fmt: skip
    assert code == 0
    assert json.loads(out) == expected["pods"]
    assert expected["pods"], "the demo places pods in the default node pool"
    code, out, _ = cli("pods", "list", "-f", "currentNodepool==default", "--limit", "3")
    assert code == 0
    assert out.splitlines()[0].split()[:4] == ["NAME", "WORKLOAD", "PROJECT", "PHASE"]
    code, _, err = cli("pods", "list", "-f", "phase==Running")
    assert code != 0 and "filterBy" in err


def test_nodes_list_shows_capacity_and_allocation_as_the_api_does(cli, api):
    code, out, _ = cli("nodes", "list", "-f", "nodePool==a100", "--limit", "20", "-o", "json")
    assert code == 0
    expected = api.get("/api/v1/nodes", params={"filterBy": "nodePool==a100", "limit": 20})
    assert json.loads(out) == expected.json()["nodes"]
    code, out, _ = cli("nodes", "list", "-f", "status==NotReady")
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split()[:6] == ["NAME", "NODEPOOL", "STATUS", "GPUS", "ALLOCATED", "FREE"]
    assert len(rows) == 2 and all(" NotReady " in row for row in rows)
    # FREE counts what new work can use, as the dashboard does: none on a node not ready.
    assert all(row.split()[5] == "0" for row in rows)
    code, out, _ = cli("nodes", "list", "--limit", "100")
    assert code == 0
    for row in out.splitlines()[1:]:
        status = row.split()[2]
        gpus, allocated, free = (float(cell) for cell in row.split()[3:6])
        assert allocated <= gpus
        assert free == pytest.approx(gpus - allocated if status == "Ready" else 0)
    # The cluster is shown by name, as the node pools show it.
    names = {c["name"] for c in api.get("/api/v1/clusters").json()}
    assert {row.split()[-1] for row in out.splitlines()[1:]} == names


def test_nodes_list_takes_a_cluster_by_name_or_id(cli, api):
    (east,) = [c for c in api.get("/api/v1/clusters").json() if c["name"] == "dgx-east"]
    params = {"filterBy": ["nodePool==h100", f"clusterUuid=={east['uuid']}"], "limit": 50}
    expected = api.get("/api/v1/nodes", params=params).json()["nodes"]
    assert expected, "the demo's east cluster has h100 nodes"
    for cluster in ("dgx-east", east["uuid"]):
        code, out, err = cli("nodes", "list", "--cluster", cluster, "-f", "nodePool==h100",
                             "-o", "json")  # fmt: skip
        assert code == 0, err
        assert json.loads(out) == expected
    code, out, err = cli("nodes", "list", "--cluster", "dgx-north")
    assert (code, out) == (4, "") and "no cluster named 'dgx-north'; known: " in err


def test_nodes_get_describes_one_node(cli, api):
    (node,) = api.get("/api/v1/nodes", params={"filterBy": "status==NotReady", "limit": 1}).json()[
        "nodes"
    ]
    code, out, _ = cli("nodes", "get", node["name"])
    assert code == 0
    assert node["name"] in out and "NodeStatusUnknown" in out and "allocated" in out
    (cluster,) = [c for c in api.get("/api/v1/clusters").json() if c["uuid"] == node["clusterUuid"]]
    assert re.search(rf"^Cluster:\s+{cluster['name']} \({cluster['uuid']}\)$", out, re.M)
    code, out, _ = cli("nodes", "get", node["id"], "-o", "json")
    assert json.loads(out) == node
    code, _, err = cli("nodes", "get", "no-such-node")
    assert code == int(ExitCode.NOT_FOUND) and "no-such-node" in err


def test_nodepools_lists_every_pool_with_its_gpus(cli, api):
    code, out, _ = cli("nodepools", "-o", "json")
    assert (
        json.loads(out) == api.get("/api/v1/node-pools", params={"limit": 500}).json()["nodepools"]
    )
    code, out, _ = cli("nodepools")
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split()[:3] == ["NAME", "CLUSTER", "PHASE"]
    assert {row.split()[0] for row in rows} == {"default", "a100", "h100", "l40s"}


def test_free_gpus_are_those_on_nodes_that_take_work(cli, api):
    """FREE in nodepools is the dashboard's schedulable free: GPUs less allocation on nodes that
    are ready and not cordoned, from the API's nodes and per-node allocation."""
    nodes = api.get("/api/v1/nodes", params={"limit": 500}).json()["nodes"]
    params = {"telemetryType": "ALLOCATED_GPUS", "groupBy": "ClusterId,Node"}
    allocated = {
        tuple(g["value"] for g in v["groups"]): float(v["value"])
        for v in api.get("/api/v1/nodes/telemetry", params=params).json()["values"]
    }
    expected: dict[tuple, float] = {}
    out_of_work = 0.0
    for node in nodes:
        key = (node["clusterUuid"], node["nodePool"])
        free = node["gpuInfo"]["gpuCount"] - allocated.get((node["clusterUuid"], node["name"]), 0)
        cordoned = any(t["key"] == "node.kubernetes.io/unschedulable" for t in node["taints"])
        expected.setdefault(key, 0.0)
        if node["status"] == "Ready" and not cordoned:
            expected[key] += free
        else:
            out_of_work += free
    assert out_of_work > 0, "the demo has not-ready nodes with free GPUs"
    names = {c["uuid"]: c["name"] for c in api.get("/api/v1/clusters").json()}
    code, out, _ = cli("nodepools", "-o", "csv")
    assert code == 0
    shown = {(r["CLUSTER"], r["NAME"]): float(r["FREE"]) for r in csv.DictReader(io.StringIO(out))}
    assert shown == {(names[c], pool): pytest.approx(free) for (c, pool), free in expected.items()}


@pytest.mark.parametrize(
    ("argv", "noun"),
    [
        (["workloads", "list", "-f", "projectName==nope"], "workloads"),
        (["pods", "list", "-f", "nodeName==nope"], "pods"),
        (["nodes", "list", "-f", "nodePool==nope"], "nodes"),
        (["projects", "-f", "name==nope"], "projects"),
    ],
)
def test_every_list_with_no_match_says_so_on_stderr(cli, argv, noun):
    assert cli(*argv) == (0, "", f"No {noun} found.\n")
    code, out, err = cli(*argv, "-o", "json")
    assert (code, json.loads(out), err) == (0, [], "")


@pytest.mark.parametrize(
    "argv",
    [
        ["workloads", "list", "--limit", "0"],
        ["workloads", "list", "--all", "--limit", "0"],
        ["pods", "list", "--limit", "0"],
        ["nodes", "list", "--limit", "0"],
        ["workloads", "events", "{id}", "--limit", "0"],
    ],
)
def test_a_limit_of_zero_reaches_the_server_which_refuses_it(cli, demo, argv):
    code, out, err = cli(*(arg.format(id=demo.charted_id) for arg in argv))
    assert (code, out) == (2, "")
    assert err.startswith("gpufleet: error: HTTP 400") and "limit" in err


@pytest.mark.parametrize("flag", ["--width", "--height"])
def test_a_chart_size_below_one_is_a_usage_error_naming_the_flag(flag, capsys):
    with pytest.raises(SystemExit) as usage:
        main(["metrics", "some-workload", flag, "0"])
    assert usage.value.code == 2
    assert f"argument {flag}: must be at least 1" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["-5", "0", "nan", "inf", "soon"])
def test_a_timeout_that_is_not_a_positive_number_is_a_usage_error(value, capsys):
    # httpx answers a negative timeout with a traceback and 0 with a misleading connect error.
    with pytest.raises(SystemExit) as usage:
        main(["workloads", "list", "--timeout", value])
    assert usage.value.code == 2
    err = capsys.readouterr().err
    assert "argument --timeout:" in err and "Traceback" not in err


def test_version_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == f"gpufleet {gpufleet.__version__}\n"


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["workloads"], "{list,get,count,events}"),
        (["nodes"], "{list,get}"),
        (["access", "rules"], "{list,grant,revoke}"),
    ],
)
def test_a_missing_subcommand_is_named_by_its_choices(argv, named, capsys):
    with pytest.raises(SystemExit) as usage:
        main(argv)
    assert usage.value.code == 2
    err = capsys.readouterr().err
    assert f"the following arguments are required: {named}" in err and "_command" not in err
