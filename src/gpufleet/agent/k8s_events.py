"""Kubernetes events of tracked workloads, coalesced and sent to the server in batches.

The agent watches core v1 ``Event`` objects. An event is kept only when the object it involves
(a pod, pod group, job …) belongs to a workload the agent tracks; an event of anything else is
dropped. Kubernetes already folds repeats of one event into one object (``count`` in core v1,
``series`` in events.k8s.io/v1); the collector keeps the newest report of each object, so a
burst of updates to one event becomes one record with its latest time and count.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from uuid import UUID

from gpufleet.agent.kinds import Kind

EVENT_KIND = Kind(group="", version="v1", kind="Event", plural="events", role="workload")
# Events waiting for their workload to be known by the server, at most.
MAX_PENDING = 10_000


def _uuid(value: Any) -> str | None:
    try:
        return str(UUID(str(value)))
    except ValueError:
        return None


def _latest_time(event: Mapping[str, Any]) -> str | None:
    series = event.get("series") or {}
    meta = event.get("metadata") or {}
    return (
        series.get("lastObservedTime")
        or event.get("lastTimestamp")
        or event.get("eventTime")
        or event.get("firstTimestamp")
        or meta.get("creationTimestamp")
    )


def _count(event: Mapping[str, Any]) -> int:
    series = event.get("series") or {}
    raw = series.get("count") or event.get("count") or 1
    return raw if isinstance(raw, int) and 1 <= raw < 2**31 else 1


def ingest_event(event: Mapping[str, Any], workload_id: str) -> dict[str, Any] | None:
    """The ingest shape of a core v1 Event of ``workload_id``; None when it cannot be sent."""
    meta = event.get("metadata") or {}
    involved = event.get("involvedObject") or event.get("regarding") or {}
    event_id, object_uid, at = (
        _uuid(meta.get("uid")),
        _uuid(involved.get("uid")),
        _latest_time(event),
    )
    if not (event_id and object_uid and at and involved.get("kind") and involved.get("name")):
        return None
    source = event.get("source") or {}
    return {
        "id": event_id,
        "workloadId": workload_id,
        "createdAt": at,
        "type": str(event.get("type") or "Normal")[:32],
        "reason": str(event.get("reason") or "")[:128],
        "message": str(event.get("message") or event.get("note") or "")[:32_768],
        "source": str(source.get("component") or event.get("reportingComponent") or "")[:253],
        "count": _count(event),
        "involvedObject": {
            "uid": object_uid,
            "kind": str(involved["kind"])[:64],
            "name": str(involved["name"])[:253],
            "namespace": str(involved.get("namespace") or "")[:253],
        },
    }


class EventCollector:
    """Events of tracked workloads waiting to be sent, one per Kubernetes event."""

    def __init__(self, workload_of: Callable[[str], str | None]) -> None:
        self._workload_of = workload_of
        self._pending: dict[str, dict[str, Any]] = {}
        self.dropped = 0

    def observe(self, event: Mapping[str, Any]) -> bool:
        """Keep the event when it involves a tracked workload; True when kept."""
        involved = event.get("involvedObject") or event.get("regarding") or {}
        workload_id = self._workload_of(str(involved.get("uid") or ""))
        record = ingest_event(event, workload_id) if workload_id else None
        if record is None:
            self.dropped += 1
            return False
        known = self._pending.get(record["id"])
        if known is None or (record["createdAt"], record["count"]) >= (
            known["createdAt"],
            known["count"],
        ):
            self._pending[record["id"]] = record
        while len(self._pending) > MAX_PENDING:
            self._pending.pop(next(iter(self._pending)))
        return True

    def take(self, sendable: Callable[[str], bool]) -> list[dict[str, Any]]:
        """The pending events whose workload the server knows; the others stay pending."""
        ready = [r for r in self._pending.values() if sendable(r["workloadId"])]
        for record in ready:
            del self._pending[record["id"]]
        return sorted(ready, key=lambda r: (r["createdAt"], r["id"]))

    def __len__(self) -> int:
        return len(self._pending)
