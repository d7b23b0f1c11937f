"""Concurrent writers replaying one stream of updates converge on the newest state."""

from __future__ import annotations

import random
import threading
import uuid
from collections import Counter

import sqlalchemy as sa

from gpufleet.store.tables import workload_phase_history
from tests.support.agent_reports import at, batch, ingest_path, report

WRITERS = 4
WORKLOADS = 40
UPDATES_PER_WORKLOAD = 6
BATCH_SIZE = 20
PHASES = ["Pending", "Running", "Degraded", "Running", "Completed", "Failed"]


def _stream(rng: random.Random) -> list[dict]:
    updates = []
    for n in range(WORKLOADS):
        workload_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        for step in range(UPDATES_PER_WORKLOAD):
            phase = PHASES[(n + step) % len(PHASES)]
            updates.append(
                report(
                    workload_id,
                    observed=step * 60 + n,
                    phase=phase,
                    name=f"w{n}-step{step}",
                    runningPods=step,
                    projectName=f"project-{n % 3}",
                    projectId=str(n % 3),
                )
            )
    return updates


def test_writers_replaying_a_shuffled_stream_leave_the_newest_state(client, engine):
    rng = random.Random(20250301)
    updates = _stream(rng)
    orders = []
    for _ in range(WRITERS):
        order = list(updates)
        rng.shuffle(order)
        orders.append(order)
    outcomes: list[list[dict]] = [[] for _ in range(WRITERS)]
    failures: list[str] = []
    start = threading.Barrier(WRITERS)

    def write(index: int) -> None:
        start.wait()
        order = orders[index]
        for offset in range(0, len(order), BATCH_SIZE):
            response = client.post(ingest_path(), json=batch(*order[offset : offset + BATCH_SIZE]))
            if response.status_code != 200:
                failures.append(f"writer {index}: {response.status_code} {response.text}")
                return
            outcomes[index].append(response.json())

    threads = [threading.Thread(target=write, args=(i,)) for i in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []

    for results in outcomes:
        assert sum(r["accepted"] + r["stale"] for r in results) == len(updates)
        assert all(r["deleted"] == 0 for r in results)
    total_accepted = sum(r["accepted"] for results in outcomes for r in results)
    # Every workload's newest update is accepted at least once (by whoever wrote it last).
    assert WORKLOADS <= total_accepted <= WRITERS * len(updates)

    newest: dict[str, dict] = {}
    for update in updates:
        known = newest.get(update["id"])
        if known is None or update["observedAt"] > known["observedAt"]:
            newest[update["id"]] = update
    for workload_id, expected in newest.items():
        stored = client.get(f"/api/v1/workloads/{workload_id}").json()
        assert stored["name"] == expected["name"]
        assert stored["phase"] == expected["phase"]
        assert stored["runningPods"] == expected["runningPods"]
        assert stored["updatedAt"] == expected["observedAt"]
    assert client.get("/api/v1/workloads/count").json() == {"count": WORKLOADS}

    # Transitions are never written twice, however many writers applied them.
    with engine.connect() as conn:
        keys = conn.execute(
            sa.select(workload_phase_history.c.workload_id, workload_phase_history.c.at)
        ).all()
    assert max(Counter(keys).values()) == 1
    assert all(t.workload_id in newest for t in keys)


def test_stale_counts_add_up_for_a_single_writer(client):
    rng = random.Random(7)
    updates = _stream(rng)[: UPDATES_PER_WORKLOAD * 5]
    rng.shuffle(updates)
    accepted = stale = 0
    newest_seen: dict[str, str] = {}
    expected_stale = 0
    for update in updates:
        # Sent one by one, an update is stale exactly when a newer one was already applied.
        previous = newest_seen.get(update["id"])
        if previous is not None and previous > update["observedAt"]:
            expected_stale += 1
        else:
            newest_seen[update["id"]] = update["observedAt"]
        result = client.post(ingest_path(), json=batch(update)).json()
        accepted += result["accepted"]
        stale += result["stale"]
    assert stale == expected_stale
    assert accepted + stale == len(updates)
    assert at(0) <= min(newest_seen.values())
