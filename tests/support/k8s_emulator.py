"""An emulator of the Kubernetes list/watch API, served over HTTP on loopback.

It is not a Kubernetes API server: it holds objects in memory per resource and speaks just
enough of the protocol for a real client (the official ``kubernetes`` package) to list and
watch them: a global resourceVersion counter, paged lists (``limit``/``continue``) served like
the real API server from a snapshot taken at the first page (the continue token carries that
snapshot's resourceVersion and the last key served; every page reports the snapshot's
resourceVersion; a token older than the compacted history is ``410 Expired``), watch streams
as chunked JSON lines (ADDED/MODIFIED/DELETED/BOOKMARK), some of them split across two HTTP
chunks as a real server's may be, ``410 Gone`` for a resourceVersion older than the compacted
history, discovery under ``/api`` and ``/apis``, and
404 for resources whose CRD is "not installed". Tests change objects through the Python API
(``create``, ``patch``, ``delete``) and can ``compact`` history, ``drop_connections`` or
``restart`` the whole server.
"""

from __future__ import annotations

import base64
import bisect
import contextlib
import copy
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

# Paged lists in progress whose snapshot is kept; older ones answer 410 like compacted ones.
_KEPT_SNAPSHOTS = 64


@dataclass(frozen=True)
class Resource:
    """One served resource (a built-in kind or a CRD)."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


@dataclass
class _Event:
    rv: int
    resource: Resource
    type: str
    obj: dict[str, Any]


class _Gone(Exception):
    pass


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _merge(target: dict[str, Any], patch: Mapping[str, Any]) -> None:
    """JSON merge patch (RFC 7386): None deletes a key, mappings merge, the rest replaces."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


class KubernetesEmulator:
    """In-memory objects behind a list/watch HTTP API; see the module docstring."""

    def __init__(
        self,
        resources: Iterable[Resource],
        *,
        installed: Iterable[Resource] | None = None,
        bookmark_interval: float = 1.0,
    ) -> None:
        self.resources = {(r.group, r.plural): r for r in resources}
        self._by_kind = {(r.api_version, r.kind): r for r in self.resources.values()}
        chosen = self.resources.values() if installed is None else installed
        self._installed = {(r.group, r.plural) for r in chosen}
        self.bookmark_interval = bookmark_interval
        self._objects: dict[tuple[str, str], dict[tuple[str, str], dict[str, Any]]] = {}
        self._rv = 1000
        # Event history per resource, in resourceVersion order (watches bisect into it).
        self._log: dict[tuple[str, str], list[_Event]] = {}
        self._compacted_rv = 0
        # The objects of each paged list as of its first page, by (resource, namespace, rv).
        self._snapshots: dict[tuple[str, str, str | None, int], list[dict[str, Any]]] = {}
        self._changed = threading.Condition()
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.requests: list[str] = []

    # --- lifecycle -------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> KubernetesEmulator:
        """Serve on loopback (the same port again after a restart)."""
        handler = _handler_for(self)
        server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and cut every open connection."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        self.drop_connections()

    def restart(self, *, keep_state: bool = True, downtime: float = 0.0) -> None:
        """Stop, optionally forget every object, then serve again on the same port.

        History is compacted either way; with ``keep_state=False`` every version a client
        holds is too old, so resuming a watch gets 410 and the client must list again.
        """
        self.stop()
        if not keep_state:
            with self._changed:
                self._objects.clear()
                # A new store: every version a client holds is now too old.
                self._rv += 1
        self.compact()
        if downtime:
            time.sleep(downtime)
        self.start()

    def drop_connections(self) -> None:
        """Close every open client connection (watch streams end abruptly)."""
        with self._connections_lock:
            connections = list(self._connections)
            self._connections.clear()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        with self._changed:
            self._changed.notify_all()

    def compact(self) -> None:
        """Forget the event history: watches from an older resourceVersion get 410 Gone."""
        with self._changed:
            self._log.clear()
            self._snapshots.clear()
            self._compacted_rv = self._rv
            self._changed.notify_all()

    def install(self, resource: Resource) -> None:
        """Install a CRD: the resource starts being served."""
        self._installed.add((resource.group, resource.plural))

    def uninstall(self, resource: Resource) -> None:
        """Remove a CRD: the resource answers 404."""
        self._installed.discard((resource.group, resource.plural))

    # --- objects ---------------------------------------------------------------------
    def _resource_of(self, obj: Mapping[str, Any]) -> Resource:
        try:
            return self._by_kind[(obj["apiVersion"], obj["kind"])]
        except KeyError:
            raise ValueError(
                f"unknown resource {obj.get('apiVersion')}/{obj.get('kind')}"
            ) from None

    def _record(self, resource: Resource, event_type: str, obj: dict[str, Any]) -> None:
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        event = _Event(self._rv, resource, event_type, copy.deepcopy(obj))
        self._log.setdefault((resource.group, resource.plural), []).append(event)
        self._changed.notify_all()

    def create(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Add an object (uid, creationTimestamp and generation filled in when absent)."""
        stored = copy.deepcopy(dict(obj))
        resource = self._resource_of(stored)
        meta = stored.setdefault("metadata", {})
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", _now())
        meta.setdefault("generation", 1)
        if resource.namespaced:
            meta.setdefault("namespace", "default")
        key = (meta.get("namespace", ""), meta["name"])
        with self._changed:
            bucket = self._objects.setdefault((resource.group, resource.plural), {})
            if key in bucket:
                raise ValueError(f"{resource.kind} {key} already exists")
            bucket[key] = stored
            self._record(resource, "ADDED", stored)
            return copy.deepcopy(stored)

    def patch(
        self,
        api_version: str,
        kind: str,
        namespace: str,
        name: str,
        patch: Mapping[str, Any] | Callable[[dict[str, Any]], None],
    ) -> dict[str, Any]:
        """Change an object by a merge patch or a function editing it in place."""
        resource = self._by_kind[(api_version, kind)]
        with self._changed:
            stored = self._objects[(resource.group, resource.plural)][(namespace, name)]
            if callable(patch):
                patch(stored)
            else:
                if "spec" in patch:
                    stored["metadata"]["generation"] = stored["metadata"].get("generation", 1) + 1
                _merge(stored, patch)
            self._record(resource, "MODIFIED", stored)
            return copy.deepcopy(stored)

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        """Remove an object."""
        resource = self._by_kind[(api_version, kind)]
        with self._changed:
            stored = self._objects[(resource.group, resource.plural)].pop((namespace, name))
            self._record(resource, "DELETED", stored)

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any]:
        """A copy of one object."""
        resource = self._by_kind[(api_version, kind)]
        with self._changed:
            return copy.deepcopy(
                self._objects[(resource.group, resource.plural)][(namespace, name)]
            )

    def bulk_create(self, objects: Iterable[Mapping[str, Any]]) -> None:
        """Create many objects (benchmarks); same as ``create`` one by one."""
        for obj in objects:
            self.create(obj)

    # --- protocol --------------------------------------------------------------------
    def installed(self, group: str, plural: str) -> Resource | None:
        key = (group, plural)
        return self.resources.get(key) if key in self._installed else None

    def list_page(
        self, resource: Resource, namespace: str | None, limit: int, token: str | None
    ) -> dict[str, Any]:
        """One page of a list; every page of one list shows the objects as of its first page."""
        with self._changed:
            rv, after = self._rv, None
            if token:
                state = json.loads(base64.urlsafe_b64decode(token.encode()))
                rv, after = state["rv"], tuple(state["after"])
            key = (resource.group, resource.plural, namespace, rv)
            if token and key not in self._snapshots:
                raise _Gone  # compacted away, as etcd forgets old revisions
            snapshot = self._snapshots.get(key)
            if snapshot is None:
                snapshot = self._current(resource, namespace)
            start = 0 if after is None else bisect.bisect_right(snapshot, after, key=_object_key)
            page = snapshot[start : start + limit] if limit else snapshot[start:]
            meta: dict[str, Any] = {"resourceVersion": str(rv)}
            if limit and start + len(page) < len(snapshot):
                raw = json.dumps({"rv": rv, "after": _object_key(page[-1])}).encode()
                meta["continue"] = base64.urlsafe_b64encode(raw).decode()
                self._keep_snapshot(key, snapshot)
            return {
                "apiVersion": resource.api_version,
                "kind": f"{resource.kind}List",
                "metadata": meta,
                # Copies already: the snapshot never shares objects with the live state.
                "items": page,
            }

    def _current(self, resource: Resource, namespace: str | None) -> list[dict[str, Any]]:
        bucket = self._objects.get((resource.group, resource.plural), {})
        return [
            copy.deepcopy(bucket[k])
            for k in sorted(bucket)
            if namespace is None or k[0] == namespace
        ]

    def _keep_snapshot(self, key: tuple, snapshot: list[dict[str, Any]]) -> None:
        self._snapshots[key] = snapshot
        while len(self._snapshots) > _KEPT_SNAPSHOTS:
            self._snapshots.pop(next(iter(self._snapshots)))

    def events_after(
        self, resource: Resource, namespace: str | None, since_rv: int
    ) -> list[_Event]:
        """The events of ``resource`` newer than ``since_rv`` (410 when compacted away)."""
        if since_rv < self._compacted_rv:
            raise _Gone
        history = self._log.get((resource.group, resource.plural), [])
        start = bisect.bisect_right(history, since_rv, key=lambda e: e.rv)
        return [
            e
            for e in history[start:]
            if namespace is None or e.obj["metadata"].get("namespace") == namespace
        ]

    def track(self, connection: socket.socket, active: bool) -> None:
        with self._connections_lock:
            if active:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)


def _object_key(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj["metadata"]
    return (meta.get("namespace") or "", meta["name"])


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


_NOT_FOUND = _status(404, "NotFound", "the server could not find the requested resource")


def _handler_for(emulator: KubernetesEmulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def setup(self) -> None:
            super().setup()
            emulator.track(self.connection, True)

        def finish(self) -> None:
            emulator.track(self.connection, False)
            with contextlib.suppress(OSError):
                super().finish()

        def _send_json(self, code: int, body: Any) -> None:
            raw = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            segments = [s for s in parts.path.split("/") if s]
            emulator.requests.append(self.path)
            try:
                self._route(segments, query)
            except (BrokenPipeError, ConnectionResetError, OSError):
                self.close_connection = True

        def _route(self, segments: list[str], query: dict[str, str]) -> None:
            if segments == ["api"]:
                return self._send_json(200, {"kind": "APIVersions", "versions": ["v1"]})
            if segments == ["apis"]:
                return self._send_json(200, self._groups())
            if segments and segments[0] == "api":
                group, rest = "", segments[1:]
            elif segments and segments[0] == "apis" and len(segments) >= 3:
                group, rest = segments[1], segments[2:]
            else:
                return self._send_json(
                    404,
                    _NOT_FOUND,
                )
            version, rest = rest[0], rest[1:]
            if not rest:
                return self._discovery(group, version)
            namespace = None
            if rest[0] == "namespaces" and len(rest) >= 3:
                namespace, rest = rest[1], rest[2:]
            resource = emulator.installed(group, rest[0])
            if resource is None or resource.version != version:
                return self._send_json(
                    404,
                    _NOT_FOUND,
                )
            if len(rest) == 2:
                return self._get_one(resource, namespace or "", rest[1])
            if query.get("watch") in ("1", "true"):
                return self._watch(resource, namespace, query)
            try:
                page = emulator.list_page(
                    resource, namespace, int(query.get("limit") or 0), query.get("continue")
                )
            except _Gone:
                return self._send_json(
                    410, _status(410, "Expired", "the provided continue parameter is too old")
                )
            return self._send_json(200, page)

        def _groups(self) -> dict[str, Any]:
            groups: dict[str, list[str]] = {}
            for group, plural in sorted(emulator._installed):
                if group:
                    groups.setdefault(group, [])
                    version = emulator.resources[(group, plural)].version
                    if version not in groups[group]:
                        groups[group].append(version)
            return {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [
                    {
                        "name": name,
                        "versions": [
                            {"groupVersion": f"{name}/{v}", "version": v} for v in versions
                        ],
                        "preferredVersion": {
                            "groupVersion": f"{name}/{versions[0]}",
                            "version": versions[0],
                        },
                    }
                    for name, versions in groups.items()
                ],
            }

        def _discovery(self, group: str, version: str) -> None:
            served = [
                emulator.resources[key]
                for key in emulator._installed
                if key[0] == group and emulator.resources[key].version == version
            ]
            if not served:
                return self._send_json(
                    404,
                    _NOT_FOUND,
                )
            self._send_json(
                200,
                {
                    "kind": "APIResourceList",
                    "apiVersion": "v1",
                    "groupVersion": f"{group}/{version}" if group else version,
                    "resources": [
                        {
                            "name": r.plural,
                            "singularName": r.kind.lower(),
                            "namespaced": r.namespaced,
                            "kind": r.kind,
                            "verbs": ["get", "list", "watch"],
                        }
                        for r in served
                    ],
                },
            )
            return None

        def _get_one(self, resource: Resource, namespace: str, name: str) -> None:
            try:
                obj = emulator.get(resource.api_version, resource.kind, namespace, name)
            except KeyError:
                return self._send_json(
                    404, _status(404, "NotFound", f'{resource.plural} "{name}" not found')
                )
            self._send_json(200, obj)
            return None

        def _chunk(self, body: Mapping[str, Any]) -> None:
            raw = json.dumps(body).encode() + b"\n"
            # Every third event goes out as two HTTP chunks: a watch line is not a chunk.
            self.sent_events = getattr(self, "sent_events", 0) + 1
            cut = len(raw) // 2 if self.sent_events % 3 == 0 else len(raw)
            for part in (raw[:cut], raw[cut:]):
                if part:
                    self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                    self.wfile.flush()

        def _watch(self, resource: Resource, namespace: str | None, query: dict[str, str]) -> None:
            timeout = float(query.get("timeoutSeconds") or 1800)
            bookmarks = query.get("allowWatchBookmarks") in ("1", "true")
            requested = query.get("resourceVersion") or "0"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Connection", "close")
            self.end_headers()
            deadline = time.monotonic() + timeout
            with emulator._changed:
                if requested == "0":
                    # Like the real API server: the current state as ADDED, then changes.
                    since = emulator._rv
                    for item in emulator.list_page(resource, namespace, 0, None)["items"]:
                        self._chunk({"type": "ADDED", "object": item})
                else:
                    since = int(requested)
            last_bookmark = time.monotonic()
            while time.monotonic() < deadline and emulator._server is not None:
                with emulator._changed:
                    try:
                        events = emulator.events_after(resource, namespace, since)
                        if not events:
                            emulator._changed.wait(timeout=min(0.25, emulator.bookmark_interval))
                            events = emulator.events_after(resource, namespace, since)
                    except _Gone:
                        expired = f"too old resource version: {since} ({emulator._compacted_rv})"
                        self._chunk({"type": "ERROR", "object": _status(410, "Expired", expired)})
                        break
                    # Taken with the events under one lock: nothing of ours lies in between.
                    snapshot = emulator._rv
                for event in events:
                    self._chunk({"type": event.type, "object": event.obj})
                    since = event.rv
                if bookmarks and time.monotonic() - last_bookmark >= emulator.bookmark_interval:
                    since = max(since, snapshot)
                    bookmark = {
                        "kind": resource.kind,
                        "apiVersion": resource.api_version,
                        "metadata": {"resourceVersion": str(since)},
                    }
                    self._chunk({"type": "BOOKMARK", "object": bookmark})
                    last_bookmark = time.monotonic()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
            self.close_connection = True

    return Handler


def resources_from(kinds: Iterable[Any]) -> list[Resource]:
    """Resources for anything with group/version/kind/plural/namespaced (e.g. agent kinds)."""
    return [Resource(k.group, k.version, k.kind, k.plural, k.namespaced) for k in kinds]


def write_kubeconfig(path: Any, url: str) -> None:
    """A kubeconfig pointing at ``url`` with a token user, as a real client reads it."""
    text = (
        "apiVersion: v1\nkind: Config\ncurrent-context: emulator\n"
        f"clusters:\n- name: emulator\n  cluster:\n    server: {url}\n"
        "contexts:\n- name: emulator\n  context:\n    cluster: emulator\n    user: agent\n"
        "users:\n- name: agent\n  user:\n    token: emulator-token\n"
    )
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
