"""Pod metrics on the embedded store: pushed through the ingest API, read back per pod.

Every answerable type goes in as a producer sends it and comes back from
``/api/v1/workloads/{workloadId}/pods/{podId}/metrics``; trust on ingest (a pod sample lands
only on that pod of that workload of the caller's cluster), scope and errors are covered too.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from gpufleet.metrics.embedded import EmbeddedMetricsBackend
from gpufleet.metrics.tasks import enforce_retention
from gpufleet.metrics.types import POD_METRIC_TYPES, MetricKind, PodMetricType
from tests.support.access import key_with_role
from tests.support.agent_reports import CLUSTER_ID, batch, ingest_path, report
from tests.support.reference import ReferenceValidators, load_reference

OTHER_CLUSTER = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
INGEST = "/api/v1/ingest/metrics"
P = PodMetricType
NOW = datetime.now(UTC).replace(second=0, microsecond=0)
RANGE = {
    "start": (NOW - timedelta(minutes=10)).isoformat(),
    "end": NOW.isoformat(),
    "numberOfSamples": 10,
}


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _minutes_ago(minutes: float) -> str:
    return _iso(NOW - timedelta(minutes=minutes))


def _workload(client, *, cluster_id=CLUSTER_ID, pods=2, project="10") -> dict:
    """A Running workload with ``pods`` pods, ingested; returns its id and pod ids."""
    workload_id = str(uuid.uuid4())
    pod_list = [
        {"name": f"p-{workload_id[:6]}-{n}", "uid": str(uuid.uuid4()), "phase": "Running"}
        for n in range(pods)
    ]
    item = report(workload_id, phase="Running", cluster_id=cluster_id, pods=pod_list)
    if project != "10":
        item["projectId"] = project
    response = client.post(ingest_path(cluster_id), json=batch(item))
    assert response.status_code == 200, response.text
    return {"id": workload_id, "pods": [p["uid"] for p in pod_list]}


def _sample(workload, pod, metric_type, minutes, value, labels=None) -> dict:
    sample = {
        "workloadId": workload["id"],
        "podId": pod,
        "type": metric_type,
        "timestamp": _minutes_ago(minutes),
        "value": value,
    }
    return sample | ({"labels": labels} if labels else {})


def _push(client, samples, status=200, headers=None):
    response = client.post(INGEST, json={"samples": samples}, headers=headers)
    assert response.status_code == status, response.text
    return response.json()


def _read(client, workload, pod, types, status=200, **params):
    response = client.get(
        f"/api/v1/workloads/{workload['id']}/pods/{pod}/metrics",
        params={**RANGE, "metricType": ",".join(types), **params},
    )
    assert response.status_code == status, response.text
    return response.json()


def _series(body, metric_type) -> dict:
    """``labels -> [(minutes before NOW, value)]`` of one type's measurements."""
    found = {}
    for item in body["measurements"]:
        if item["type"] == metric_type:
            key = tuple(sorted((item["labels"] or {}).items()))
            found[key] = [
                (round((NOW - _parse(v["timestamp"])).total_seconds() / 60), v["value"])
                for v in item["values"]
            ]
    return found


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_per_gpu_series_and_totals_come_back_for_their_pod_only(client):
    workload = _workload(client)
    first, second = workload["pods"]
    _push(
        client,
        [
            _sample(workload, first, "GPU_UTILIZATION_PER_GPU", 9.5, 80, {"gpu": "0"}),
            _sample(workload, first, "GPU_UTILIZATION_PER_GPU", 9.2, 90, {"gpu": "0"}),
            _sample(workload, first, "GPU_UTILIZATION_PER_GPU", 9.5, 20, {"gpu": "1"}),
            _sample(workload, first, "GPU_UTILIZATION", 9.5, 50),
            _sample(workload, second, "GPU_UTILIZATION_PER_GPU", 9.5, 7, {"gpu": "0"}),
        ],
    )
    body = _read(client, workload, first, ["GPU_UTILIZATION_PER_GPU", "GPU_UTILIZATION"])
    # The minute from 10 to 9 minutes ago, stamped where it ends.
    assert _series(body, "GPU_UTILIZATION_PER_GPU") == {
        (("gpu", "0"),): [(9, "85")],
        (("gpu", "1"),): [(9, "20")],
    }
    assert _series(body, "GPU_UTILIZATION") == {(): [(9, "50")]}
    other = _read(client, workload, second, ["GPU_UTILIZATION_PER_GPU", "GPU_UTILIZATION"])
    assert _series(other, "GPU_UTILIZATION_PER_GPU") == {(("gpu", "0"),): [(9, "7")]}
    assert other["measurements"][1] == {"type": "GPU_UTILIZATION", "labels": None, "values": []}


def _one_of_each(workload, pod) -> list[dict]:
    """Two samples of every type a producer can push, 3.5 and 1.5 minutes ago."""
    samples = []
    for metric_type, info in POD_METRIC_TYPES.items():
        if metric_type not in EmbeddedMetricsBackend.pod_metric_types:
            continue
        if info.kind is MetricKind.HISTOGRAM:
            for le, first, second in (("0.5", 10, 16), ("1", 20, 30), ("+Inf", 25, 40)):
                for minutes, value in ((3.5, first), (1.5, second)):
                    samples.append(_sample(workload, pod, metric_type, minutes, value, {"le": le}))
        elif info.kind is not MetricKind.PERCENTILES:
            labels = {"gpu": "3"} if info.kind is MetricKind.PER_GPU else None
            for minutes, value in ((3.5, 10), (1.5, 14)):
                samples.append(_sample(workload, pod, metric_type, minutes, value, labels))
    return samples


def test_every_type_the_embedded_store_answers_round_trips(client):
    workload = _workload(client, pods=1)
    (pod,) = workload["pods"]
    _push(client, _one_of_each(workload, pod))
    answerable = [t for t in P if t in EmbeddedMetricsBackend.pod_metric_types]
    body = _read(client, workload, pod, answerable, numberOfSamples=2, start=_minutes_ago(4))
    for metric_type in answerable:
        kind = POD_METRIC_TYPES[metric_type].kind
        if kind is MetricKind.HISTOGRAM:
            (histogram,) = [h for h in body["histogram"] if h["type"] == metric_type]
            # The second scrape's increase, in the second interval [2 min ago, now).
            assert [v["data"] for v in histogram["values"]] == [
                {"0.5": "0", "1.0": "0", "+Inf": "0"},
                {"0.5": "6", "1.0": "10", "+Inf": "15"},
            ]
        elif kind is MetricKind.PERCENTILES:
            (series,) = [h for h in body["histogram"] if h["type"] == metric_type]
            # Rank 7.5 of 15 lies in (0.5, 1.0] holding 4 after 6: 0.5 + 0.5 * 1.5 / 4.
            assert series["values"][-1]["data"]["p50"] == "0.6875"
        else:
            labels = (("gpu", "3"),) if kind is MetricKind.PER_GPU else ()
            # A counter's first sample has none before it: its interval has no rate.
            expected = [(2, "10"), (0, "14")] if kind is not MetricKind.COUNTER else [(0, "4")]
            assert _series(body, metric_type) == {labels: expected}, metric_type


def test_the_answer_validates_against_the_reference(client):
    validators = ReferenceValidators(load_reference("runai-adjacent-openapi.json"))
    workload = _workload(client, pods=1)
    (pod,) = workload["pods"]
    _push(client, _one_of_each(workload, pod))
    body = _read(client, workload, pod, [t.value for t in EmbeddedMetricsBackend.pod_metric_types])
    path = "/api/v1/workloads/{workloadId}/pods/{podId}/metrics"
    validators.response(path).validate(body)
    assert body["histogram"] and body["measurements"]
    validators.schema("Error").validate(_read(client, workload, pod, ["NOPE"], status=400))


def test_a_type_without_a_source_is_400_naming_it_and_the_backend(client):
    workload = _workload(client, pods=1)
    body = _read(
        client,
        workload,
        workload["pods"][0],
        ["CPU_USAGE_CORES", "GPU_SWAP_MEMORY_BYTES_PER_GPU"],
        status=400,
    )
    assert "GPU_SWAP_MEMORY_BYTES_PER_GPU" in body["message"]
    assert "embedded" in body["message"] and "metricType" in body["message"]
    # A workload metric type that is not a pod metric type is unknown here.
    assert (
        "POD_COUNT" in _read(client, workload, workload["pods"][0], ["POD_COUNT"], 400)["message"]
    )


def test_unknown_foreign_malformed_and_hidden_pods(client, anonymous_client):
    workload, other = _workload(client, pods=1), _workload(client, pods=1)
    (pod,) = workload["pods"]
    _read(client, workload, other["pods"][0], ["CPU_USAGE_CORES"], status=404)
    _read(client, workload, str(uuid.uuid4()), ["CPU_USAGE_CORES"], status=404)
    assert "podId" in _read(client, workload, "pod'--", ["CPU_USAGE_CORES"], 400)["message"]
    hidden = _workload(client, pods=1, project="20")
    viewer = key_with_role(client, "viewer", "project", "10")
    for target, status in ((workload, 200), (hidden, 404)):
        response = anonymous_client.get(
            f"/api/v1/workloads/{target['id']}/pods/{target['pods'][0]}/metrics",
            params={**RANGE, "metricType": "CPU_USAGE_CORES"},
            headers=viewer,
        )
        assert response.status_code == status, response.text
    assert _read(client, workload, pod, ["CPU_USAGE_CORES"], end=RANGE["start"], status=400)


def test_a_pod_sample_lands_only_on_its_pod_of_its_workload_of_the_callers_cluster(
    client, anonymous_client
):
    mine, other = _workload(client, pods=1), _workload(client, pods=1)
    theirs = _workload(client, cluster_id=OTHER_CLUSTER, pods=1)
    agent = key_with_role(client, "cluster-agent", "cluster", CLUSTER_ID)
    good = _sample(mine, mine["pods"][0], "CPU_USAGE_CORES", 1, 2.5)
    cases = [
        # A pod of another workload named with this one.
        (_sample(mine, other["pods"][0], "CPU_USAGE_CORES", 1, 1), "podId"),
        (_sample(mine, str(uuid.uuid4()), "CPU_USAGE_CORES", 1, 1), "podId"),
        # Another cluster's pod and workload.
        (_sample(theirs, theirs["pods"][0], "CPU_USAGE_CORES", 1, 1), "workloadId"),
        # A workload type that is no pod type, and a malformed pod id.
        (_sample(mine, mine["pods"][0], "POD_COUNT", 1, 1), "type"),
        (_sample(mine, "nope", "CPU_USAGE_CORES", 1, 1), "podId"),
    ]
    for bad, field in cases:
        refused = _push(anonymous_client, [good, bad], status=400, headers=agent)
        assert f"'samples.1.{field}'" in refused["message"], refused
    assert _push(anonymous_client, [good], headers=agent) == {"accepted": 1}
    body = _read(client, mine, mine["pods"][0], ["CPU_USAGE_CORES"])
    assert _series(body, "CPU_USAGE_CORES") == {(): [(0, "2.5")]}
    assert _series(
        _read(client, other, other["pods"][0], ["CPU_USAGE_CORES"]), "CPU_USAGE_CORES"
    ) == {(): []}


def test_retention_deletes_pod_samples_too(client, engine):
    workload = _workload(client, pods=1)
    (pod,) = workload["pods"]
    _push(client, [_sample(workload, pod, "CPU_USAGE_CORES", m, m) for m in (1, 3, 5)])
    assert enforce_retention(engine, 0, NOW - timedelta(minutes=2)) == 2
    assert _series(_read(client, workload, pod, ["CPU_USAGE_CORES"]), "CPU_USAGE_CORES") == {
        (): [(0, "1")]
    }
