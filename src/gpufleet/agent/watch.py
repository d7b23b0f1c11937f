"""List+watch of one kind against the Kubernetes API, with the official client's transport.

Each ``KindWatcher`` thread lists its kind (in pages), hands the full list over, then watches
from the list's resourceVersion with bookmarks, resuming from the newest version it saw when a
stream ends. ``410 Gone`` (as an HTTP status or an ``ERROR`` event) means the version was
compacted away: it lists again. A dropped connection or server error waits with exponential
backoff and resumes. A kind the server does not serve (404: its CRD is not installed) is
reported unavailable and looked for again every ``crd_retry_seconds``.
"""

from __future__ import annotations

import json
import logging
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.watch.watch import iter_resp_lines

from gpufleet.agent.health import AgentMetrics
from gpufleet.agent.kinds import Kind
from gpufleet.agent.outage import ApiOutage

log = logging.getLogger(__name__)
LIST_PAGE_SIZE = 500


@dataclass(frozen=True)
class KindEvent:
    """What a watcher reports: ``upsert``/``delete`` of one object, ``relist``, ``available``."""

    kind: Kind
    type: str
    obj: Mapping[str, Any] | None = None
    items: tuple[Mapping[str, Any], ...] = ()
    available: bool = True


class Gone(Exception):
    """The requested resourceVersion is too old (410)."""


class NotServed(Exception):
    """The API server does not serve the kind (404)."""


class Backoff:
    """Exponential backoff with jitter, reset after success."""

    def __init__(self, maximum: float, initial: float = 0.2) -> None:
        self.maximum = maximum
        self.initial = initial
        self.current = initial

    def next_delay(self) -> float:
        """The next wait, growing up to the maximum."""
        delay = min(self.current, self.maximum)
        self.current = min(self.current * 2, self.maximum)
        return delay * (0.5 + random.random() / 2)

    def reset(self) -> None:
        """Start again from the initial delay."""
        self.current = self.initial


class KindWatcher(threading.Thread):
    """Keeps one kind's objects flowing into ``sink``."""

    def __init__(
        self,
        kind: Kind,
        api: client.ApiClient,
        sink: Callable[[KindEvent], None],
        stop: threading.Event,
        metrics: AgentMetrics,
        *,
        watch_timeout: int = 300,
        crd_retry: float = 30.0,
        backoff_max: float = 30.0,
        outage: ApiOutage | None = None,
    ) -> None:
        super().__init__(name=f"watch-{kind.key}", daemon=True)
        self.kind = kind
        self.api = api
        self.sink = sink
        self.stop_event = stop
        self.metrics = metrics
        self.watch_timeout = watch_timeout
        self.crd_retry = crd_retry
        self.backoff = Backoff(backoff_max)
        self.outage = outage or ApiOutage(backoff_max)
        self.listed = threading.Event()
        self.available: bool | None = None
        self.resource_version: str | None = None

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                if self.resource_version is None:
                    self._relist()
                self._watch_once()
                self.backoff.reset()
            except NotServed:
                self._set_available(False)
                self.listed.set()
                self.resource_version = None
                self.stop_event.wait(self.crd_retry)
            except Gone:
                self.metrics.watch_restarts.labels(self.kind.key, "gone").inc()
                self.resource_version = None
            except Exception as exc:
                self.metrics.watch_restarts.labels(self.kind.key, "error").inc()
                self.outage.failed(self.kind.key, exc)
                self.stop_event.wait(self.backoff.next_delay())

    def _set_available(self, available: bool) -> None:
        self.metrics.kind_available.labels(self.kind.key).set(1 if available else 0)
        if self.available != available:
            self.available = available
            self.sink(KindEvent(self.kind, "available", available=available))

    def _request(self, query: list[tuple[str, str]], read_timeout: float) -> Any:
        method, url, headers, _body, _post = self.api.param_serialize(
            method="GET",
            resource_path=self.kind.path,
            query_params=query,
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        response = self.api.call_api(
            method, url, header_params=headers, _request_timeout=(5, read_timeout)
        )
        raw = response.response
        if raw.status < 500:
            self.outage.succeeded(self.kind.key)
        if raw.status != 200:
            # Read the body so the pooled connection is clean for the next request.
            body = raw.data or b""
            raw.release_conn()
            if raw.status == 404:
                raise NotServed(self.kind.key)
            if raw.status == 410:
                raise Gone(self.kind.key)
            raise RuntimeError(f"{self.kind.path}: HTTP {raw.status} {body[:200]!r}")
        return raw

    def _relist(self) -> None:
        items: list[Mapping[str, Any]] = []
        token: str | None = None
        while True:
            query = [("limit", str(LIST_PAGE_SIZE))]
            if token:
                query.append(("continue", token))
            raw = self._request(query, read_timeout=60)
            page = json.loads(raw.data)
            for item in page.get("items") or []:
                # List items omit apiVersion/kind; the grouping needs them.
                item.setdefault("apiVersion", self.kind.api_version)
                item.setdefault("kind", self.kind.kind)
                items.append(item)
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                self.resource_version = str((page.get("metadata") or {}).get("resourceVersion"))
                break
        self._set_available(True)
        self.sink(KindEvent(self.kind, "relist", items=tuple(items)))
        self.listed.set()

    def _watch_once(self) -> None:
        query = [
            ("watch", "true"),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", str(self.watch_timeout)),
            ("resourceVersion", str(self.resource_version)),
        ]
        raw = self._request(query, read_timeout=self.watch_timeout + 30)
        try:
            for line in iter_resp_lines(raw):
                if self.stop_event.is_set():
                    return
                if line:
                    self._handle(json.loads(line))
        finally:
            raw.release_conn()
        self.metrics.watch_restarts.labels(self.kind.key, "timeout").inc()

    def _handle(self, event: Mapping[str, Any]) -> None:
        event_type = str(event.get("type"))
        obj = event.get("object") or {}
        self.metrics.watch_events.labels(self.kind.key, event_type).inc()
        if event_type == "ERROR":
            if obj.get("code") == 410:
                raise Gone(self.kind.key)
            raise RuntimeError(f"watch error: {obj.get('message')}")
        version = (obj.get("metadata") or {}).get("resourceVersion")
        if event_type in ("ADDED", "MODIFIED"):
            self.sink(KindEvent(self.kind, "upsert", obj=obj))
        elif event_type == "DELETED":
            self.sink(KindEvent(self.kind, "delete", obj=obj))
        if version:
            self.resource_version = str(version)
