"""``gpufleet serve --demo`` as a real process: it answers while the simulator reports the past
in the background, says so in the demo status, and at a high speed the fleet moves between two
reads (workloads change phase, new samples arrive)."""

from __future__ import annotations

import time
from datetime import datetime

import httpx
import pytest

from gpufleet.cli import main

SPEED = 120


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
            lambda s: _minutes(s["simulatedTime"]) - _minutes(first["simulatedTime"]) >= 20,
        )
        assert _minutes(moved["simulatedTime"]) - _minutes(first["simulatedTime"]) >= 20, moved
        after = _phases(api)
        assert moved["reported"]["samples"] > first["reported"]["samples"]
        changed = {i for i in before.keys() & after.keys() if before[i] != after[i]}
        assert changed or set(after) - set(before)
        clusters = api.get("/api/v1/clusters").json()
        assert {c["status"]["state"] for c in clusters} == {"Connected"}


def _minutes(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() / 60


def test_demo_simulate_needs_one_agent_key_per_demo_cluster(capsys):
    base = ["demo", "simulate", "--server", "http://127.0.0.1:9"]
    with pytest.raises(SystemExit, match="needs an access key for each of dgx-east, cloud-west"):
        main([*base, "--access-key", "dgx-east=id:secret"])
    with pytest.raises(SystemExit, match="'mars=id' is not CLUSTER=CLIENT_ID:SECRET"):
        main([*base, "--access-key", "mars=id:secret,dgx-east=id:secret"])
    with pytest.raises(SystemExit):
        main([*base, "--speed", "0"])
    assert "must be a positive number" in capsys.readouterr().err
