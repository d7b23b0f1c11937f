"""Pushing workload records and metrics samples to the gpufleet ingest API.

``IngestClient`` holds the access token (client credentials, refreshed before it expires and
once more on a 401). ``Pusher`` is the outbox: updates are coalesced by workload id keeping the
newest observation, deletions (each with the time it was seen) cancel pending updates, and
batches go out with retries and exponential backoff. A 413 halves the batch; a 400 naming an
item index drops that item (it can never succeed) and sends the rest again.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

import httpx

from gpufleet.agent.failures import AccessKeyRefused
from gpufleet.agent.health import AgentMetrics
from gpufleet.agent.watch import Backoff

log = logging.getLogger(__name__)
_BAD_INDEX = re.compile(r"at index (\d+)")
# A token request or an empty batch answered so means the key or its rule is wrong.
_REFUSED = frozenset({400, 401, 403})
# Refresh the token this long before it expires.
_TOKEN_MARGIN_SECONDS = 30.0


class PushError(Exception):
    """A request failed; ``status`` is the HTTP status (0 when the server was unreachable)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class IngestClient:
    """Authenticated requests to the ingest endpoints of one server."""

    def __init__(
        self,
        server: str,
        client_id: str,
        client_secret: str,
        *,
        timeout: float = 30.0,
        http: httpx.Client | None = None,
    ) -> None:
        """``http`` is the client to send with (an in-process transport, say); by default one
        of its own."""
        self.server = server.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret
        self._http = http if http is not None else httpx.Client(timeout=timeout)
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _fetch_token(self) -> str:
        response = self._http.post(
            f"{self.server}/api/v1/token",
            json={
                "grantType": "client_credentials",
                "clientID": self._client_id,
                "clientSecret": self._client_secret,
            },
        )
        if response.status_code != 200:
            raise PushError(response.status_code, f"token request refused: {response.text[:200]}")
        body = response.json()
        self._token = str(body["accessToken"])
        self._expires = time.monotonic() + float(body.get("expiresIn") or 300)
        return self._token

    def _bearer(self, refresh: bool = False) -> str:
        with self._lock:
            if (
                refresh
                or self._token is None
                or time.monotonic() > self._expires - _TOKEN_MARGIN_SECONDS
            ):
                return self._fetch_token()
            return self._token

    def verify_access(self, workloads_path: str) -> None:
        """Ask for a token and push an empty batch; raise ``AccessKeyRefused`` if refused.

        An unreachable or failing server is only a warning: the pusher retries until it answers.
        """
        try:
            self.post(workloads_path, {"workloads": [], "deletedIds": []})
        except PushError as exc:
            if exc.status in _REFUSED:
                raise AccessKeyRefused(
                    f"the server {self.server} refused access key {self._client_id!r} "
                    f"(HTTP {exc.status}): {' '.join(exc.message.split())[:300]}"
                ) from None
            log.warning("cannot check the access key yet, will retry: %s", exc.message)

    def post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST JSON with the bearer token; one retry with a fresh token on 401."""
        try:
            for attempt in range(2):
                token = self._bearer(refresh=attempt > 0)
                response = self._http.post(
                    f"{self.server}{path}", json=body, headers={"Authorization": f"Bearer {token}"}
                )
                if response.status_code != 401:
                    break
        except httpx.HTTPError as exc:
            raise PushError(0, f"{type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            try:
                message = str(response.json().get("message"))
            except ValueError:
                message = response.text[:200]
            raise PushError(response.status_code, message)
        return response.json()


class Pusher:
    """The outbox of workload updates and deletions, drained by a background thread."""

    def __init__(
        self,
        client: IngestClient,
        cluster_id: str,
        metrics: AgentMetrics,
        *,
        batch_size: int = 500,
        interval: float = 0.5,
        backoff_max: float = 30.0,
        cluster_name: str | None = None,
    ) -> None:
        self.client = client
        self.path = f"/api/v1/ingest/clusters/{cluster_id}/workloads"
        self.metrics = metrics
        self.batch_size = batch_size
        self.interval = interval
        self.cluster_name = cluster_name
        self._backoff = Backoff(backoff_max, initial=0.5)
        self._pending: dict[str, dict[str, Any]] = {}
        # Deleted workload ids and when each deletion was seen: a backlog pushed after an
        # outage keeps the times, not the time it finally reached the server.
        self._deleted: dict[str, str] = {}
        self._full_sync: list[dict[str, Any]] | None = None
        self._lock = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pusher", daemon=True)
        self.last_success: float | None = None
        self.last_error: str | None = None
        self._known: set[str] = set()

    def known(self, workload_id: str) -> bool:
        """Whether the server has accepted a record of this workload."""
        return workload_id in self._known

    def start(self) -> None:
        """Start draining in the background."""
        self._thread.start()

    def stop(self, flush_timeout: float = 5.0) -> None:
        """Push what is pending (for at most ``flush_timeout``), then stop."""
        deadline = time.monotonic() + flush_timeout
        while self.depth and time.monotonic() < deadline and self.last_error is None:
            time.sleep(0.05)
        self._stop.set()
        with self._lock:
            self._lock.notify_all()
        self._thread.join(timeout=flush_timeout)

    @property
    def depth(self) -> int:
        """Updates and deletions not yet accepted."""
        with self._lock:
            return len(self._pending) + len(self._deleted) + (1 if self._full_sync else 0)

    def enqueue(
        self, records: Iterable[dict[str, Any]], deleted: Mapping[str, str] | None = None
    ) -> None:
        """Queue updates (newest observation per id wins) and deletions (``deleted`` maps each
        id to when it was seen deleted, an RFC 3339 time)."""
        with self._lock:
            for record in records:
                held = self._pending.get(record["id"])
                if held is None or held["observedAt"] <= record["observedAt"]:
                    self._pending[record["id"]] = record
                self._deleted.pop(record["id"], None)
            for workload_id, observed in (deleted or {}).items():
                self._pending.pop(workload_id, None)
                self._deleted.setdefault(workload_id, observed)
            self.metrics.queue_depth.set(len(self._pending) + len(self._deleted))
            self._lock.notify_all()

    def full_sync(self, records: list[dict[str, Any]]) -> None:
        """Queue a full sync: every record at once; the server deletes what is missing."""
        with self._lock:
            self._full_sync = records
            self._lock.notify_all()

    def _take(self) -> tuple[list[dict[str, Any]], dict[str, str], bool]:
        if self._full_sync is not None:
            records, self._full_sync = self._full_sync, None
            # Updates queued before the full sync are older than its records; later ones stay.
            for item in records:
                held = self._pending.get(item["id"])
                if held is not None and held["observedAt"] <= item["observedAt"]:
                    del self._pending[item["id"]]
            return records, {}, True
        ids = list(self._pending)[: self.batch_size]
        records = [self._pending.pop(i) for i in ids]
        room = max(self.batch_size - len(records), 0)
        taken = list(self._deleted)[: max(room, 1)]
        deleted = {workload_id: self._deleted.pop(workload_id) for workload_id in taken}
        return records, deleted, False

    def _restore(self, records: list[dict[str, Any]], deleted: dict[str, str]) -> None:
        with self._lock:
            for record in records:
                held = self._pending.get(record["id"])
                if held is None and record["id"] not in self._deleted:
                    self._pending[record["id"]] = record
            for workload_id, observed in deleted.items():
                if workload_id not in self._pending:
                    self._deleted.setdefault(workload_id, observed)

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                if not (self._pending or self._deleted or self._full_sync is not None):
                    self._lock.wait(timeout=self.interval)
                    continue
                records, deleted, full = self._take()
                self.metrics.queue_depth.set(len(self._pending) + len(self._deleted))
            try:
                self._send(records, deleted, full)
                self._backoff.reset()
                self.last_error = None
            except PushError as exc:
                cause = "unreachable" if exc.status == 0 else str(exc.status)
                self.metrics.push_failures.labels("workloads", cause).inc()
                self.last_error = exc.message
                log.warning("push of %d workloads failed: %s", len(records), exc.message)
                if full:
                    with self._lock:
                        if self._full_sync is None:
                            self._full_sync = records
                else:
                    self._restore(records, deleted)
                self._stop.wait(self._backoff.next_delay())

    def _send(self, records: list[dict[str, Any]], deleted: dict[str, str], full: bool) -> None:
        """Send one batch, splitting on 413 and dropping items the server names as bad."""
        deletions = [{"id": i, "observedAt": at} for i, at in sorted(deleted.items())]
        body: dict[str, Any] = {"workloads": records, "deletions": deletions, "fullSync": full}
        if self.cluster_name:
            body["clusterName"] = self.cluster_name
        started = time.monotonic()
        try:
            result = self.client.post(self.path, body)
        except PushError as exc:
            if exc.status == 413 and len(records) > 1 and not full:
                half = len(records) // 2
                self._send(records[:half], deleted, False)
                self._send(records[half:], {}, False)
                return
            if exc.status == 413 and full:
                # Too big for one request: push it in parts; deletions wait for a smaller sync.
                log.warning("full sync of %d workloads is too large for one request", len(records))
                self._send(records, {}, False)
                return
            bad = _BAD_INDEX.search(exc.message)
            if exc.status == 400 and bad and int(bad.group(1)) < len(records):
                index = int(bad.group(1))
                log.error("server refused workload %s: %s", records[index].get("id"), exc.message)
                self.metrics.push_failures.labels("workloads", "rejected").inc()
                rest = records[:index] + records[index + 1 :]
                if rest or deleted:
                    self._send(rest, deleted, full)
                return
            raise
        self.metrics.push_latency.labels("workloads").observe(time.monotonic() - started)
        refused = self._note_refused(result.get("refused") or [])
        self._known.update(r["id"] for r in records if r["id"] not in refused)
        self._known.difference_update(deleted)
        self.metrics.pushed_workloads.inc(int(result.get("accepted", 0)))
        if full:
            self.metrics.full_syncs.inc()
        self.last_success = time.time()

    def _note_refused(self, refused: list[dict[str, Any]]) -> set[str]:
        """Log and count the items the server did not apply (they name another cluster's ids);
        sending them again would not change that."""
        for item in refused:
            log.error("server refused %s: %s", item.get("field"), item.get("message"))
            self.metrics.push_failures.labels("workloads", "rejected").inc()
        return {str(item.get("id")) for item in refused}


def _post_timed(
    client: IngestClient,
    metrics: AgentMetrics,
    what: str,
    requests: Iterable[tuple[str, Mapping[str, Any]]],
) -> bool:
    """POST each ``(path, body)`` in turn, timed together as ``what``; at the first the server
    refuses, count and log it and answer False."""
    started = time.monotonic()
    try:
        for path, body in requests:
            client.post(path, body)
    except PushError as exc:
        metrics.push_failures.labels(what, str(exc.status)).inc()
        log.warning("%s push failed: %s", what, exc.message)
        return False
    metrics.push_latency.labels(what).observe(time.monotonic() - started)
    return True


def push_samples(
    client: IngestClient, metrics: AgentMetrics, samples: list[dict[str, Any]]
) -> bool:
    """Send metrics samples in chunks; False when the server could not take them."""
    chunks = (
        ("/api/v1/ingest/metrics", {"samples": samples[start : start + 5000]})
        for start in range(0, len(samples), 5000)
    )
    return _post_timed(client, metrics, "metrics", chunks)


def push_events(
    client: IngestClient, metrics: AgentMetrics, cluster_id: str, batches: list[list[dict]]
) -> bool:
    """Send Kubernetes events in batches; False when the server could not take them.

    Events are annotations: a batch that fails is logged and not retried, the next report of
    a repeating event carries its newest state anyway.
    """
    path = f"/api/v1/ingest/clusters/{cluster_id}/events"
    return _post_timed(client, metrics, "events", ((path, {"events": batch}) for batch in batches))


def push_inventory(
    client: IngestClient,
    metrics: AgentMetrics,
    cluster_id: str,
    nodes: Mapping[str, Any] | None,
    queues: Mapping[str, Any] | None,
) -> bool:
    """Send a node batch and the queue set (either may be None); False when one failed.

    Like events, a failed inventory push is not retried: the next change, and at the latest
    the next full sync, reports the current state again.
    """
    base = f"/api/v1/ingest/clusters/{cluster_id}"
    for what, body in (("nodes", nodes), ("queues", queues)):
        if body is not None and not _post_timed(client, metrics, what, [(f"{base}/{what}", body)]):
            return False
    return True
