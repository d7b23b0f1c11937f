"""The agent process: watchers -> cluster state -> records -> pusher, plus health and timers.

One thread per watched kind feeds a queue; the reconcile loop (the caller's thread) applies
events to the ``ClusterState`` and, a moment later, derives the records of the workloads that
changed and hands them to the ``Pusher``. Nothing is pushed before every kind has been listed
once; the first push is a full sync, and another follows every ``full_sync_seconds``.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from pathlib import Path
from typing import Any

from kubernetes import client

from gpufleet.agent.health import AgentMetrics, HealthServer
from gpufleet.agent.inventory import Inventory
from gpufleet.agent.k8s_events import EVENT_KIND, EventCollector
from gpufleet.agent.kinds import INVENTORY_KINDS, KINDS, Kind
from gpufleet.agent.kubeconfig import kubeconfig_path, load_configuration
from gpufleet.agent.organisation import MappingError, OrganisationDirectory
from gpufleet.agent.outage import ApiOutage
from gpufleet.agent.phase import Memory
from gpufleet.agent.push import IngestClient, Pusher, push_events, push_inventory, push_samples
from gpufleet.agent.records import DerivedWorkload, derive_workload, iso_now
from gpufleet.agent.samples import workload_samples
from gpufleet.agent.settings import AgentSettings
from gpufleet.agent.state import Changes, ClusterState
from gpufleet.agent.watch import KindEvent, KindWatcher

log = logging.getLogger(__name__)
# Events arriving within this window are derived and pushed together.
COALESCE_SECONDS = 0.05
MAPPING_KEY = "mapping.yaml"
QUOTAS_KEY = "quotas.yaml"


def selected_kinds(names: str | None) -> tuple[Kind, ...]:
    """The kinds to watch: all, or those named (``Kind`` or ``Kind.group``)."""
    if not names:
        return KINDS
    wanted = {name.strip() for name in names.split(",") if name.strip()}
    chosen = tuple(k for k in KINDS if k.key in wanted or k.kind in wanted)
    unknown = wanted - {k.key for k in chosen} - {k.kind for k in chosen}
    if unknown:
        raise ValueError(f"unknown kinds: {', '.join(sorted(unknown))}")
    return chosen


def kubernetes_client(settings: AgentSettings, pool_size: int) -> client.ApiClient:
    """An API client configured as kubectl would be (see ``agent.kubeconfig``)."""
    path = kubeconfig_path(settings.kubeconfig)
    configuration = load_configuration(path, settings.context)
    configuration.connection_pool_maxsize = pool_size
    configuration.retries = False
    return client.ApiClient(configuration)


def _memory_after(memory: Memory, phase: str) -> Memory:
    has_run = memory.has_run or phase in ("Running", "Degraded", "Updating")
    if phase == "Stopped":
        was_stopped = True
    else:
        was_stopped = memory.was_stopped and phase not in ("Running", "Completed", "Failed")
    return Memory(has_run=has_run, was_stopped=was_stopped)


class Agent:
    """The whole agent; ``run`` blocks until ``stop`` is called."""

    def __init__(self, settings: AgentSettings) -> None:
        self.settings = settings
        self.kinds = selected_kinds(settings.kinds)
        self.metrics = AgentMetrics()
        self.state = ClusterState()
        self.k8s_events = EventCollector(self.state.workload_of)
        self.events: queue.Queue[KindEvent] = queue.Queue()
        self.stopping = threading.Event()
        self.directory = OrganisationDirectory.load(settings.department_mapping)
        self.inventory = Inventory(settings.node_pool_label)
        self._next_inventory_push = 0.0
        self._quotas: str | None = None
        if settings.default_project:
            self.directory.default_project = settings.default_project
        self._memory: dict[str, Memory] = {}
        self._derived: dict[str, DerivedWorkload] = {}
        self._synced = False
        self.api = kubernetes_client(settings, pool_size=len(self.kinds) + 5)
        self.ingest = IngestClient(
            settings.server,
            settings.client_id,
            settings.client_secret.get_secret_value(),
            timeout=settings.request_timeout_seconds,
        )
        self.pusher = Pusher(
            self.ingest,
            settings.cluster_id,
            self.metrics,
            batch_size=settings.push_batch_size,
            interval=settings.push_interval_seconds,
            backoff_max=settings.backoff_max_seconds,
            cluster_name=settings.cluster_name,
        )
        outage = ApiOutage(settings.backoff_max_seconds)
        self.watchers = [
            KindWatcher(
                kind,
                self.api,
                self.events.put,
                self.stopping,
                self.metrics,
                watch_timeout=settings.watch_timeout_seconds,
                crd_retry=settings.crd_retry_seconds,
                backoff_max=settings.backoff_max_seconds,
                outage=outage,
            )
            for kind in (*self.kinds, EVENT_KIND, *INVENTORY_KINDS)
        ]
        self.health_server = HealthServer(
            settings.health_host, settings.health_port, self.metrics, self.health
        )

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Healthy once every kind was listed, while every watcher and the pusher live."""
        dead = [w.kind.key for w in self.watchers if not w.is_alive()]
        unlisted = [w.kind.key for w in self.watchers if not w.listed.is_set()]
        detail = {
            "synced": self._synced,
            "deadWatchers": dead,
            "unlistedKinds": unlisted,
            "unavailableKinds": [w.kind.key for w in self.watchers if w.available is False],
            "queueDepth": self.pusher.depth,
            "lastPushError": self.pusher.last_error,
            "workloads": len(self._derived),
        }
        return (not dead and not unlisted and not self.stopping.is_set()), detail

    def stop(self) -> None:
        """Ask the agent to finish (safe from signal handlers and other threads)."""
        self.stopping.set()

    def run(self) -> int:
        """Check the access key, start everything and reconcile until stopped.

        Raises ``AccessKeyRefused`` when the server refuses the key or its rule for the cluster.
        """
        try:
            self.ingest.verify_access(self.pusher.path)
        except BaseException:
            self.ingest.close()
            raise
        self.health_server.start()
        self.pusher.start()
        for watcher in self.watchers:
            watcher.start()
        self._load_configmap()
        log.info(
            "agent for cluster %s watching %d kinds", self.settings.cluster_id, len(self.kinds)
        )
        next_full_sync = 0.0
        next_samples = time.monotonic() + self.settings.metrics_interval_seconds
        pending = Changes()
        try:
            while not self.stopping.is_set():
                pending.merge(self._drain())
                self.metrics.tracked_objects.set(len(self.state))
                if not self._synced:
                    if all(w.listed.is_set() for w in self.watchers):
                        self._synced = True
                        log.info("initial list complete: %d objects", len(self.state))
                    else:
                        continue
                now = time.monotonic()
                if now >= next_full_sync:
                    self._full_sync()
                    self._push_inventory(full=True)
                    pending = Changes()
                    next_full_sync = now + self.settings.full_sync_seconds
                elif pending.dirty or pending.deleted:
                    self._push_changes(pending)
                    pending = Changes()
                if now >= self._next_inventory_push:
                    self._push_inventory()
                self._push_events()
                if self.settings.push_metrics and now >= next_samples:
                    self._push_samples()
                    next_samples = now + self.settings.metrics_interval_seconds
        finally:
            self.stopping.set()
            self.pusher.stop()
            self.health_server.stop()
            self.ingest.close()
        return 0

    def _drain(self) -> Changes:
        changes = Changes()
        try:
            event = self.events.get(timeout=0.2)
        except queue.Empty:
            return changes
        deadline = time.monotonic() + COALESCE_SECONDS
        while True:
            changes.merge(self._apply(event))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                event = self.events.get(timeout=remaining)
            except queue.Empty:
                break
        return changes

    def _apply(self, event: KindEvent) -> Changes:
        if event.kind in INVENTORY_KINDS:
            if event.type != "available":
                self.inventory.apply(event.kind, event.type, event.obj, event.items)
            elif not event.available:
                self.inventory.apply(event.kind, "relist", None, ())
            return Changes()
        if event.kind is EVENT_KIND:
            # Kubernetes events only annotate workloads; they never change the grouping.
            for obj in (event.obj,) if event.type == "upsert" else event.items:
                if obj is not None:
                    self.k8s_events.observe(obj)
            return Changes()
        if event.type == "upsert" and event.obj is not None:
            return self.state.upsert(event.obj)
        if event.type == "delete" and event.obj is not None:
            return self.state.delete(event.obj)
        if event.type == "relist":
            changes = self.state.set_tracked(event.kind, True)
            changes.merge(self.state.replace(event.kind, event.items))
            return changes
        if event.type == "available" and not event.available:
            changes = self.state.replace(event.kind, ())
            changes.merge(self.state.set_tracked(event.kind, False))
            return changes
        return Changes()

    def _derive(self, root_uid: str) -> DerivedWorkload | None:
        view = self.state.view(root_uid)
        if view is None:
            return None
        memory = self._memory.get(root_uid, Memory())
        try:
            derived = derive_workload(
                view,
                cluster_id=self.settings.cluster_id,
                directory=self.directory,
                memory=memory,
                priority_values=self.state.priority_values,
                observed_at=iso_now(),
                tenant_id=self.settings.tenant_id,
            )
        except Exception:
            # One malformed object must not stop the agent; the rest keep flowing.
            log.exception("cannot derive the record of workload %s", root_uid)
            return None
        self._memory[root_uid] = _memory_after(memory, derived.record["phase"])
        self._derived[root_uid] = derived
        return derived

    def _push_changes(self, changes: Changes) -> None:
        records = [d.record for uid in sorted(changes.dirty) if (d := self._derive(uid))]
        seen = iso_now()
        for uid in changes.deleted:
            self._memory.pop(uid, None)
            self._derived.pop(uid, None)
        self.pusher.enqueue(records, dict.fromkeys(sorted(changes.deleted), seen))
        self.metrics.workloads.set(len(self._derived))

    def _full_sync(self) -> None:
        if self._load_configmap():
            log.info("department mapping changed")
        roots = set(self.state.roots)
        for gone in set(self._derived) - roots:
            self._derived.pop(gone, None)
            self._memory.pop(gone, None)
        records = [d.record for uid in sorted(roots) if (d := self._derive(uid))]
        self.pusher.full_sync(records)
        self.metrics.workloads.set(len(self._derived))

    def _push_inventory(self, full: bool = False) -> None:
        """Send changed nodes and, when a queue changed, every queue, in the background."""
        self._next_inventory_push = time.monotonic() + self.settings.push_interval_seconds
        observed = iso_now()
        nodes = self.inventory.node_batch(observed, full=full)
        if full:
            # Re-read, like the department mapping, only with each full sync.
            self._quotas = self._quota_text()
        try:
            queues = self.inventory.queue_batch(
                observed, self.directory, self.settings.cluster_id, self._quotas, full=full
            )
        except MappingError as exc:
            log.warning("quota file not usable: %s", exc)
            queues = None
        if nodes is not None or queues is not None:
            threading.Thread(
                target=push_inventory,
                args=(self.ingest, self.metrics, self.settings.cluster_id, nodes, queues),
                daemon=True,
            ).start()

    def _quota_text(self) -> str | None:
        """The quota file's text, from the ConfigMap or the file; None when neither is set."""
        if self.settings.quota_configmap:
            namespace, name = self.settings.quota_configmap.split("/")
            try:
                configmap = client.CoreV1Api(self.api).read_namespaced_config_map(name, namespace)
            except client.ApiException as exc:
                log.warning(
                    "quota ConfigMap %s not readable: %s", self.settings.quota_configmap, exc
                )
                return None
            return (configmap.data or {}).get(QUOTAS_KEY)
        if self.settings.quota_file:
            try:
                return Path(self.settings.quota_file).read_text(encoding="utf-8")
            except OSError as exc:
                log.warning("quota file %s not readable: %s", self.settings.quota_file, exc)
        return None

    def _push_events(self) -> None:
        """Send the collected events of workloads the server already knows, in batches."""
        events = self.k8s_events.take(self.pusher.known)
        size = self.settings.push_batch_size
        batches = [events[i : i + size] for i in range(0, len(events), size)]
        if batches:
            threading.Thread(
                target=push_events,
                args=(self.ingest, self.metrics, self.settings.cluster_id, batches),
                daemon=True,
            ).start()

    def _push_samples(self) -> None:
        timestamp = iso_now()
        # Only workloads the server knows: samples of others would be refused.
        samples = [
            sample
            for uid, derived in self._derived.items()
            if self.pusher.known(uid)
            for sample in workload_samples(derived, timestamp)
        ]
        if samples:
            threading.Thread(
                target=push_samples, args=(self.ingest, self.metrics, samples), daemon=True
            ).start()

    def _load_configmap(self) -> bool:
        """Re-read the department ConfigMap; True when the mapping changed."""
        if not self.settings.department_configmap:
            return False
        namespace, name = self.settings.department_configmap.split("/")
        try:
            configmap = client.CoreV1Api(self.api).read_namespaced_config_map(name, namespace)
            text = (configmap.data or {}).get(MAPPING_KEY, "")
            directory = OrganisationDirectory.from_text(text)
        except (client.ApiException, MappingError, OSError) as exc:
            log.warning(
                "department ConfigMap %s not usable: %s", self.settings.department_configmap, exc
            )
            return False
        if self.settings.default_project:
            directory.default_project = self.settings.default_project
        changed = vars(directory) != vars(self.directory)
        self.directory = directory
        return changed
