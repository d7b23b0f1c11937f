"""The client's tables on a terminal of a given width, its empty lists and its durations; no
server: each list command's rows are built by its own row function from records shaped like
the API's."""

from __future__ import annotations

import io
import re

import pytest
from rich.cells import cell_len

from gpufleet.client.access_commands import ACCOUNT_COLUMNS
from gpufleet.client.event_commands import EVENT_HEADERS, event_rows
from gpufleet.client.node_commands import (
    NODE_HEADERS,
    NODEPOOL_HEADERS,
    SCHEDULABLE_FREE,
    node_rows,
    nodepool_rows,
)
from gpufleet.client.output import (
    WORKLOAD_COLUMNS,
    Printer,
    duration,
    print_list,
    print_workloads,
)
from gpufleet.client.pod_commands import HEADERS as POD_HEADERS
from gpufleet.client.pod_commands import pod_rows
from gpufleet.client.project_commands import HEADERS as PROJECT_HEADERS
from gpufleet.client.project_commands import NUMERIC as PROJECT_NUMERIC
from gpufleet.client.project_commands import project_rows
from gpufleet.client.table_layout import ColumnKind, distinct_width, fit_columns

COLOUR = re.compile(r"\x1b\[[0-9;]*m")
CLUSTER = "67ce0829-9129-5a6b-b5c6-f2061259f18a"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _workloads() -> list[dict]:
    return [
        {
            "name": f"graphsage-fraud-embed-bmm{i}",
            "type": "DistributedInference",
            "projectName": "fraud-detection",
            "departmentName": "applied-ml",
            "clusterId": CLUSTER,
            "id": f"12b69700-1c2d-4e5f-8a9b-0c1d2e3f4a5{i}",
            "phase": "Pending" if i else "Running",
            "allocatedResources": {"gpu": 2.5 * i},
            "workloadRequestedResources": {"gpu": {"request": 16}},
            "idleAllocatedGpus": 0.5,
            "currentNodePools": ["a100", "h100"],
            "submittedBy": "someone.with.a.long.name@example.com",
            "createdAt": "2026-12-05T09:30:00.000Z",
            "totalPendingTimeSeconds": 10_378,
            "totalRunningTimeSeconds": 75_540,
        }
        for i in range(3)
    ]


def _pods() -> list[dict]:
    return [
        {
            "name": f"llama3-8b-chat-nim-xhw{i}-0-worker",
            "workloadName": f"llama3-8b-chat-nim-xhw{i}",
            "projectName": "inference-staging",
            "k8sPhase": "Running",
            "nodeName": "cloud-west-a100-21",
            "currentNodePool": "a100",
            "allocatedResources": {"gpu": 4},
            "createdAt": "2026-12-05T09:30:00.000Z",
        }
        for i in range(3)
    ]


def _nodes() -> list[dict]:
    return [
        {
            "name": f"cloud-west-a100-0{i}",
            "clusterUuid": CLUSTER,
            "status": "NotReady",
            "nodePool": "a100",
            "gpuInfo": {"gpuType": "NVIDIA-A100-SXM4-80GB", "gpuCount": 8},
            "taints": [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}],
        }
        for i in range(3)
    ]


def _pools() -> tuple[list[dict], dict]:
    pools = [
        {"name": name, "clusterId": CLUSTER, "clusterName": "cloud-west", "phase": "Ready",
         "status": {"nodes": ["n"] * 24}}
        for name in ("default", "a100")
    ]  # fmt: skip
    figures = {
        "TOTAL_GPUS": {(CLUSTER, "a100"): 192.0},
        "ALLOCATED_GPUS": {(CLUSTER, "a100"): 131.5},
        "READY_GPU_NODES": {(CLUSTER, "a100"): 22.0},
        "TOTAL_GPU_NODES": {(CLUSTER, "a100"): 24.0},
        SCHEDULABLE_FREE: {(CLUSTER, "a100"): 44.5},
    }
    return pools, figures


def _projects() -> list[dict]:
    return [
        {
            "name": name,
            "parentId": "7",
            "totalResources": {"gpuQuota": 16},
            "status": {"quotaStatus": {"allocated": {"gpu": 20.5}}},
        }
        for name in ("inference-staging-and-more", "inference-prod")
    ]


def _accounts() -> list[list]:
    account = {
        "id": "bdc7f280-5770-43ae-998c-ef9aa31cd3cc",
        "clientId": "gf-63b6892810d45a6a",
        "name": "demo-agent-cloud-west",
        "enabled": "true",
        "createdAt": "2026-12-06T09:29:46.923Z",
        "lastLogin": "2026-12-06T09:29:55.857Z",
    }
    return [[account[field] for _, field in ACCOUNT_COLUMNS]]


def _events() -> list[dict]:
    return [
        {
            "createdAt": "2026-12-06T09:29:46.923Z",
            "type": "Warning",
            "reason": "FailedScheduling",
            "involvedObject": {"kind": "Pod", "name": "llama3-70b-chat-llm-igl3-0"},
            "message": "0/20 nodes are available: 20 Insufficient nvidia.com/gpu. " * 2,
        }
    ]


def _workload_shape(fmt: str):
    columns = [c for c in WORKLOAD_COLUMNS if fmt == "wide" or not c.wide_only]
    return [c.header for c in columns], [[c.read(w) for c in columns] for w in _workloads()]


# Each list command's table: headers, rows, the headers declared numeric, and the columns that
# must never be cut (numbers, phases and states, times).
SHAPES = {
    "workloads": (*_workload_shape("table"), (), {"PHASE", "GPUS", "AGE"}),
    "workloads wide": (
        *_workload_shape("wide"),
        (),
        {"PHASE", "GPUS", "AGE", "REQUESTED GPUS", "IDLE GPUS", "PENDING", "RUNNING"},
    ),
    "pods": (POD_HEADERS, pod_rows(_pods()), (), {"PHASE", "GPUS", "CREATED"}),
    "nodes": (
        NODE_HEADERS,
        node_rows(_nodes(), {(CLUSTER, "cloud-west-a100-00"): 2.5}, {CLUSTER: "cloud-west"}),
        (),
        {"STATUS", "GPUS", "ALLOCATED", "FREE"},
    ),
    "nodepools": (
        NODEPOOL_HEADERS,
        nodepool_rows(*_pools()),
        (),
        {"PHASE", "NODES", "READY GPU NODES", "GPUS", "ALLOCATED", "FREE"},
    ),
    "projects": (
        PROJECT_HEADERS,
        project_rows(_projects(), {"7": "applied-ml"}, pools=False),
        PROJECT_NUMERIC,
        {"QUOTA", "ALLOCATED", "NON-PREEMPTIBLE", "OVER"},
    ),
    "service accounts": (
        [header for header, _ in ACCOUNT_COLUMNS],
        _accounts(),
        (),
        {"ENABLED", "CREATED", "LAST LOGIN"},
    ),
    "events": (EVENT_HEADERS, event_rows(_events()), (), {"TIME"}),
}


def _render(width: int, monkeypatch, capsys, headers, rows, numeric=()) -> tuple[list[str], str]:
    monkeypatch.setenv("COLUMNS", str(width))
    stream = _Terminal()
    Printer(stream).table(headers, rows, numeric=numeric)
    lines = COLOUR.sub("", stream.getvalue()).splitlines()
    return lines, capsys.readouterr().err


def _dropped(err: str) -> set[str]:
    match = re.match(r"gpufleet: (.*) left out to fit", err)
    return set(match.group(1).split(", ")) if match else set()


def _appears(value: str, line: str) -> bool:
    return re.search(rf"(^|\s){re.escape(value)}(\s|$)", line) is not None


@pytest.mark.parametrize("width", [80, 120])
@pytest.mark.parametrize("shape", SHAPES)
def test_every_table_fits_the_terminal_keeping_numbers_states_and_times_whole(
    shape, width, monkeypatch, capsys
):
    headers, rows, numeric, whole = SHAPES[shape]
    lines, err = _render(width, monkeypatch, capsys, headers, rows, numeric)
    header_line, _, *body = lines
    assert max(len(line) for line in lines) <= width
    dropped = _dropped(err)
    assert headers[0] not in dropped
    shown = [i for i, header in enumerate(headers) if header not in dropped]
    # Every column shown has its header whole: none is drawn zero wide or cut to "…".
    assert all(headers[i] in header_line for i in shown)
    assert len(body) == len(rows)
    # The first column names the row: rows that differ there still differ as drawn.
    names = {"" if row[0] is None else str(row[0]) for row in rows}
    assert len({line.split()[0] for line in body}) == len(names)
    for row, line in zip(rows, body, strict=True):
        for i in shown:
            cell = "" if row[i] is None else str(row[i])
            if headers[i] in whole:
                assert cell == "" or _appears(cell, line), (headers[i], cell, line)
            elif cell not in line:
                # Free text is cut with an ellipsis, never below eight characters.
                cut = re.search(rf"{re.escape(cell[:7])}.*…", line)
                assert cut, (headers[i], cell, line)


@pytest.mark.parametrize("shape", ["workloads", "nodepools", "projects"])
def test_a_table_that_fits_at_120_columns_is_neither_cut_nor_thinned(shape, monkeypatch, capsys):
    headers, rows, numeric, _ = SHAPES[shape]
    lines, err = _render(120, monkeypatch, capsys, headers, rows, numeric)
    assert err == "" and "…" not in "".join(lines)


def test_long_names_give_up_width_in_proportion(monkeypatch, capsys):
    # The pod's name and its workload's name are cut alike, not one whole and one to a stub.
    lines, _ = _render(120, monkeypatch, capsys, POD_HEADERS, pod_rows(_pods()))
    name, workload = lines[2].split()[:2]
    assert name.endswith("…") and workload.endswith("…")
    assert len(name) >= len(workload) > 8


def test_columns_that_cannot_fit_are_left_out_from_the_right_and_named():
    kinds = [ColumnKind.TEXT, ColumnKind.STATE, ColumnKind.NUMBER, ColumnKind.TIME]
    headers = ["NAME", "PHASE", "GPUS", "CREATED"]
    layout = fit_columns(headers, kinds, [30, 12, 4, 24], 40)
    assert layout.dropped == ("CREATED",)
    assert layout.widths == {0: 18, 1: 12, 2: 4}
    whole = fit_columns(headers, kinds, [30, 12, 4, 24], 200)
    assert whole.widths == {0: 30, 1: 12, 2: 4, 3: 24} and not whole.dropped


def test_text_shrinks_in_proportion_to_what_it_has_above_its_floor():
    kinds = [ColumnKind.TEXT, ColumnKind.TEXT, ColumnKind.TEXT]
    layout = fit_columns(["NAME", "PROJECT", "SUBMITTED BY"], kinds, [28, 18, 20], 60)
    # 72 wide with its gaps: 12 to give, from slacks of 20, 10 and 8.
    assert layout.widths == {0: 22, 1: 15, 2: 17}
    # Floors of 8, 8 (at least "PROJECT") and 12 ("SUBMITTED BY"), gaps of 3: 19 is too wide.
    narrow = fit_columns(["NAME", "PROJECT", "SUBMITTED BY"], kinds, [28, 18, 20], 18)
    assert narrow.widths == {0: 18} and narrow.dropped == ("PROJECT", "SUBMITTED BY")


@pytest.mark.parametrize("fmt", ["table", "wide", "json", "yaml", "csv"])
def test_an_empty_list_is_a_note_on_stderr_or_an_empty_document(fmt, capsys):
    stream = io.StringIO()
    print_list(Printer(stream), "pods", [], fmt, POD_HEADERS, [])
    err = capsys.readouterr().err
    expected = {"json": "[]\n", "yaml": "[]\n", "csv": ",".join(POD_HEADERS) + "\r\n"}
    assert stream.getvalue() == expected.get(fmt, "")
    assert err == ("" if fmt in expected else "No pods found.\n")
    print_workloads(Printer(stream), [], fmt)
    assert capsys.readouterr().err == ("" if fmt in expected else "No workloads found.\n")


def test_a_text_id_is_left_aligned_and_a_numeric_id_right_aligned():
    stream = io.StringIO()
    Printer(stream).table(["ID", "NAME"], [["bdc7f280-5770-43ae", "a"], ["3b36e454", "b"]])
    assert stream.getvalue().splitlines()[2].startswith("3b36e454 ")
    stream = io.StringIO()
    Printer(stream).table(["ID", "NAME"], [["7", "a"], ["12", "b"]])
    assert stream.getvalue().splitlines()[1].startswith(" 7")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (45, "45s"),
        (60, "1m"),
        (725, "12m5s"),
        (3600, "1h"),
        (10_378, "2h52m"),
        (75_540, "20h59m"),
        (86_400, "1d"),
        (273_600, "3d4h"),
    ],
)
def test_durations_show_their_two_largest_units(seconds, text):
    assert duration(seconds) == text


def test_wide_characters_are_measured_by_the_cells_they_take(monkeypatch, capsys):
    rows = [["学習ジョブ" * 4, "Running", "8"], ["a", "Pending", "16"]]
    lines, _ = _render(40, monkeypatch, capsys, ["NAME", "PHASE", "GPUS"], rows)
    # The name takes what the other columns leave, measured in cells, not in characters.
    assert max(cell_len(line) for line in lines) == cell_len(lines[2]) == 40
    assert lines[2].endswith("Running      8") and lines[3].endswith("Pending     16")


def test_the_first_column_is_cut_no_further_than_its_values_stay_apart():
    assert distinct_width(["cloud-west-a100-01", "cloud-west-a100-02"]) == 18
    assert distinct_width(["inference-prod", "inference-staging"]) == 12  # "inference-p…"
    assert distinct_width(["a", "b"]) == 1 and distinct_width(["same", "same"]) == 1
    kinds = [ColumnKind.TEXT, ColumnKind.TEXT]
    layout = fit_columns(["NAME", "TYPE"], kinds, [30, 30], 36, key_floor=25)
    assert layout.widths == {0: 25, 1: 8}
