"""Reporting simulation steps through the ingest API, as a cluster agent of each cluster.

Steps are buffered and sent together. The server records a phase change per report, so the
workload records are kept in generations: a record goes into the generation after the one
holding the workload's previous record, and generations are sent in order (a deletion likewise
follows the workload's last record, with its simulated time). Each flush sends nodes, queues,
workloads, events, then samples, so events and samples always find their workload known.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from gpufleet.demo.sim import records
from gpufleet.demo.sim.engine import Step
from gpufleet.demo.sim.fleet import Node
from gpufleet.demo.sim.teams import Team

log = logging.getLogger(__name__)
SAMPLES_PER_REQUEST = 5000
WORKLOADS_PER_REQUEST = 1000
# Nodes were added to the clusters this long before the demo starts.
NODE_AGE_DAYS = 120
_RETRIES = 3
# Statuses worth a retry (0: the server could not be reached).
_PASSING = frozenset({0, 429, 500, 502, 503, 504})


class Poster(Protocol):
    """An authenticated ingest client of one cluster (the agent's ``IngestClient``): posts a
    JSON body, raising an exception with the HTTP ``status`` when refused."""

    def post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]: ...


class Reporter:
    """Buffers steps and pushes them with each cluster's own access key."""

    def __init__(self, clients: Mapping[str, Poster], teams: tuple[Team, ...]) -> None:
        self.clients = dict(clients)
        self.teams = teams
        # Per cluster: generations of (records by workload id, deletions with their times).
        self._generations: dict[str, list[tuple[dict[str, dict], list[dict]]]] = {
            c: [] for c in clients
        }
        # Per cluster: the generation holding each workload's latest record.
        self._latest: dict[str, dict[str, int]] = {c: {} for c in clients}
        self._events: dict[str, list[dict]] = {c: [] for c in clients}
        self._samples: dict[str, list[dict]] = {c: [] for c in clients}
        self._nodes: dict[str, dict[str, dict]] = {c: {} for c in clients}
        self._queues: dict[str, dict] = {}
        self._full_node_sync = True
        self._nodes_created: datetime | None = None
        self.pushed = {"workloads": 0, "events": 0, "samples": 0, "nodes": 0}
        self.failures = 0

    # -- buffering --------------------------------------------------------------------------

    def add(self, step: Step) -> None:
        """Buffer one step."""
        for record in step.workloads:
            cluster_id, workload_id = record["clusterId"], record["id"]
            records_of, _ = self._generation(cluster_id, workload_id)
            records_of[workload_id] = record
        for cluster_id, workload_id in step.deleted:
            _, deleted = self._generation(cluster_id, workload_id)
            deleted.append({"id": workload_id, "observedAt": records.iso(step.at)})
        for cluster_id, event in step.events:
            self._events[cluster_id].append(event)
        for cluster_id, sample in step.samples:
            self._samples[cluster_id].append(sample)
        self.add_nodes(step.nodes, step.at)

    def _generation(self, cluster_id: str, workload_id: str) -> tuple[dict[str, dict], list[dict]]:
        """The first generation after the one with the workload's latest record."""
        generations = self._generations[cluster_id]
        index = self._latest[cluster_id].get(workload_id, -1) + 1
        if index == len(generations):
            generations.append(({}, []))
        self._latest[cluster_id][workload_id] = index
        return generations[index]

    def add_nodes(self, nodes: Iterable[Node], at: datetime) -> None:
        for node in nodes:
            created = self._nodes_created or at
            self._nodes[node.cluster.id][node.id] = records.node(node, at, created)

    def add_queues(self, at: datetime) -> None:
        for cluster_id in self.clients:
            self._queues[cluster_id] = records.queues(self.teams, cluster_id, at)

    def start(self, step: Step, nodes_created: datetime, before: Sequence[Step] = ()) -> None:
        """The first report: a full sync of no workloads (what an earlier run left behind is
        marked deleted, as when an agent starts), then every node (a full sync too), the
        queues, the steps ``before`` the opening (the past of the workloads already there,
        each record observed when it was) and the opening workloads after them."""
        for cluster_id, client in self.clients.items():
            body = {"workloads": [], "deletedIds": [], "fullSync": True}
            self._post(client, f"/api/v1/ingest/clusters/{cluster_id}/workloads", body,
                       "workloads", 0)  # fmt: skip
        self._nodes_created = nodes_created
        self.add_queues(step.at)
        for earlier in before:
            self.add(earlier)
        self.add(step)

    # -- sending ----------------------------------------------------------------------------

    def flush(self, *, heartbeat: bool = False) -> None:
        """Send everything buffered; with ``heartbeat`` every cluster reports even if idle, so
        it stays connected."""
        for cluster_id, client in self.clients.items():
            base = f"/api/v1/ingest/clusters/{cluster_id}"
            nodes = list(self._nodes[cluster_id].values())
            if nodes:
                body = {"nodes": nodes, "fullSync": self._full_node_sync}
                self._post(client, f"{base}/nodes", body, "nodes", len(nodes))
            queues = self._queues.pop(cluster_id, None)
            if queues is not None:
                self._post(client, f"{base}/queues", queues, "queues", len(queues["queues"]))
            generations = self._generations[cluster_id] or ([({}, [])] if heartbeat else [])
            for records_of, deleted in generations:
                workloads = list(records_of.values())
                for start in range(0, max(len(workloads), 1), WORKLOADS_PER_REQUEST):
                    part = workloads[start : start + WORKLOADS_PER_REQUEST]
                    body = {"workloads": part, "deletions": deleted if start == 0 else []}
                    self._post(client, f"{base}/workloads", body, "workloads", len(part))
            events = self._events[cluster_id]
            for start in range(0, len(events), WORKLOADS_PER_REQUEST):
                part = events[start : start + WORKLOADS_PER_REQUEST]
                self._post(client, f"{base}/events", {"events": part}, "events", len(part))
            samples = self._samples[cluster_id]
            for start in range(0, len(samples), SAMPLES_PER_REQUEST):
                part = samples[start : start + SAMPLES_PER_REQUEST]
                self._post(client, "/api/v1/ingest/metrics", {"samples": part}, "samples",
                           len(part))  # fmt: skip
            self._nodes[cluster_id] = {}
            self._generations[cluster_id] = []
            self._latest[cluster_id] = {}
            self._events[cluster_id] = []
            self._samples[cluster_id] = []
        self._full_node_sync = False

    def _post(self, client: Poster, path: str, body: dict, what: str, count: int) -> None:
        """POST with a few retries; a report the server keeps refusing is logged and dropped,
        as an agent would (the next report carries the state again)."""
        for attempt in range(_RETRIES):
            try:
                client.post(path, body)
                self.pushed[what] = self.pushed.get(what, 0) + count
                return
            except Exception as exc:
                status = getattr(exc, "status", None)
                if status is None:
                    raise
                if status not in _PASSING or attempt == _RETRIES - 1:
                    self.failures += 1
                    log.warning("demo %s report refused (HTTP %s): %s", what, status,
                                str(exc)[:300])  # fmt: skip
                    return
                time.sleep(0.5 * 2**attempt)
