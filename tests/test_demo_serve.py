"""``gpufleet serve --demo`` as a real process: it answers while the simulator reports the past
in the background, says so in the demo status, and at a high speed the fleet moves between two
reads (workloads change phase, new samples arrive). Restarted on the same store, it rebuilds
the demo's data: nothing of the first run is left, and GPU-hours are not counted twice."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from gpufleet.cli import main
from gpufleet.demo.sim.engine import TICK
from gpufleet.demo.sim.live import PAST

SPEED = 1000
HOUR = timedelta(hours=1)


def _wait_for(read, accept, timeout: float = 180.0):
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if accept(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.5)


def _phases(api: httpx.Client) -> dict[str, str]:
    answer = api.get("/api/v1/workloads", params={"limit": 500, "sortBy": "createdAt"})
    assert answer.status_code == 200, answer.text
    return {w["id"]: w["phase"] for w in answer.json()["workloads"]}


def test_serve_demo_answers_at_once_and_the_fleet_moves(start_server):
    server = start_server(demo=True, args=["--demo-speed", str(SPEED)])
    with httpx.Client(base_url=server.base_url, headers=server.auth_headers(), timeout=30) as api:
        status = api.get("/api/v1/demo/status")
        assert status.status_code == 200, status.text
        assert status.json()["speed"] == SPEED

        def read() -> dict:
            return api.get("/api/v1/demo/status").json()

        first = _wait_for(read, lambda s: s["state"] == "live")
        assert first["state"] == "live", first
        assert first["historyComplete"] is False  # a sped-up demo catches up with the present
        before = _phases(api)
        moved = _wait_for(
            read,
            lambda s: _minutes(s["simulatedTime"]) - _minutes(first["simulatedTime"]) >= 90,
        )
        assert _minutes(moved["simulatedTime"]) - _minutes(first["simulatedTime"]) >= 90, moved
        after = _phases(api)
        assert moved["reported"]["samples"] > first["reported"]["samples"]
        changed = {i for i in before.keys() & after.keys() if before[i] != after[i]}
        assert changed or set(after) - set(before)
        clusters = api.get("/api/v1/clusters").json()
        assert {c["status"]["state"] for c in clusters} == {"Connected"}
    server.stop()
    # A demo's fleet follows from its seed and the tick it starts on: served again within the
    # same 30 seconds, it would be the same fleet, and the first run's ids could not tell.
    _sleep_until(_parse(first["historyFrom"]) + PAST + TICK)

    # The same store served again: the demo starts a new day and forgets the first run's.
    again = start_server(demo=True, args=["--demo-speed", str(SPEED)])
    with httpx.Client(base_url=again.base_url, headers=again.auth_headers(), timeout=30) as api:
        status = _wait_for(
            lambda: api.get("/api/v1/demo/status").json(), lambda s: s["historyFrom"]
        )
        # The first full hour of the new day, simulated to its end.
        hour = _parse(status["historyFrom"]).replace(minute=0, second=0) + HOUR
        reached = _wait_for(
            lambda: api.get("/api/v1/demo/status").json(),
            lambda s: s["simulatedTime"] and _parse(s["simulatedTime"]) >= hour + HOUR,
        )
        assert _parse(reached["simulatedTime"]) >= hour + HOUR, reached
        now = _phases(api)
        assert now and not set(now) & set(after)
        for workload_id in sorted(after)[:10]:
            assert api.get(f"/api/v1/workloads/{workload_id}").status_code == 404
        # The ledger's GPUs of that hour are about the clusters' sampled allocation, not twice
        # it: the first run's workloads add nothing to them. The far past is sampled every
        # half hour, and while the fleet fills up from its standing work two samples of an
        # hour fall up to a fifth below its mean; the first run's GPUs would double the ledger.
        # (It may be lower for a while: the ledger's live part is brought up to date by a
        # periodic task; the agreement itself is checked in test_demo_live.)
        window = {"start": _stamp(hour), "end": _stamp(hour + HOUR)}
        sampled = sum(_mean_allocation(api, c["uuid"], window) for c in clusters)
        ledger = api.get("/api/v1/usage", params=window).json()["values"][0]
        assert sampled > 0
        assert ledger["allocatedGpuHours"] <= sampled * 1.5 + 8


def _sleep_until(moment: datetime) -> None:
    time.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()))


def _minutes(stamp: str) -> float:
    return _parse(stamp).timestamp() / 60


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _mean_allocation(api: httpx.Client, cluster_id: str, window: dict) -> float:
    params = {**window, "metricType": "ALLOCATED_GPU", "numberOfSamples": 1}
    answer = api.get(f"/api/v1/clusters/{cluster_id}/metrics", params=params)
    assert answer.status_code == 200, answer.text
    (series,) = [m for m in answer.json()["measurements"] if not m.get("labels")]
    return float(series["values"][0]["value"])


def test_demo_simulate_needs_one_agent_key_per_demo_cluster(capsys):
    base = ["demo", "simulate", "--server", "http://127.0.0.1:9"]
    with pytest.raises(SystemExit, match="needs an access key for each of dgx-east, cloud-west"):
        main([*base, "--access-key", "dgx-east=id:secret"])
    with pytest.raises(SystemExit, match="'mars=id' is not CLUSTER=CLIENT_ID:SECRET"):
        main([*base, "--access-key", "mars=id:secret,dgx-east=id:secret"])
    with pytest.raises(SystemExit):
        main([*base, "--speed", "0"])
    assert "must be a positive number" in capsys.readouterr().err
