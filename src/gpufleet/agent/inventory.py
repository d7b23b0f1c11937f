"""The agent's picture of the cluster's inventory: nodes and the scheduler's queues.

Watch events of the inventory kinds land here; what changed since the last push becomes a
node batch (changed nodes, deleted ids) and, when any queue kind changed, the whole queue set.
A full sync reports every node with ``fullSync`` and every queue.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gpufleet.agent.kinds import (
    KAI_QUEUE_KIND,
    KUEUE_CLUSTER_QUEUE_KIND,
    KUEUE_LOCAL_QUEUE_KIND,
    NODE_KIND,
    Kind,
)
from gpufleet.agent.nodes import node_reports
from gpufleet.agent.objectpath import metadata
from gpufleet.agent.organisation import OrganisationDirectory
from gpufleet.agent.queues import file_queues, kai_queue, kueue_queues


class Inventory:
    """Inventory objects by kind and uid, with what changed since the last push."""

    def __init__(self, pool_label: str | None = None) -> None:
        self.pool_label = pool_label
        self.objects: dict[str, dict[str, Mapping[str, Any]]] = {}
        self.changed_nodes: set[str] = set()
        self.deleted_nodes: set[str] = set()
        self.queues_changed = False

    def apply(self, kind: Kind, event_type: str, obj: Mapping[str, Any] | None, items=()) -> None:
        """One watch event of an inventory kind: ``upsert``, ``delete`` or ``relist`` (a kind
        that became unavailable is a relist without objects)."""
        held = self.objects.setdefault(kind.key, {})
        if event_type == "relist":
            fresh = {str(metadata(o).get("uid")): o for o in items}
            if kind is NODE_KIND:
                self.deleted_nodes |= set(held) - set(fresh)
                self.changed_nodes |= set(fresh)
            held.clear()
            held.update(fresh)
        elif obj is not None:
            uid = str(metadata(obj).get("uid"))
            if event_type == "delete":
                held.pop(uid, None)
                if kind is NODE_KIND:
                    self.deleted_nodes.add(uid)
                    self.changed_nodes.discard(uid)
            else:
                held[uid] = obj
                if kind is NODE_KIND:
                    self.changed_nodes.add(uid)
                    self.deleted_nodes.discard(uid)
        if kind is not NODE_KIND:
            self.queues_changed = True

    def node_batch(self, observed_at: str, full: bool = False) -> dict[str, Any] | None:
        """The nodes to push (all of them with ``full``), or None when nothing changed."""
        nodes = self.objects.get(NODE_KIND.key, {})
        wanted = set(nodes) if full else self.changed_nodes
        if not full and not wanted and not self.deleted_nodes:
            return None
        batch = {
            "nodes": node_reports(
                [nodes[uid] for uid in sorted(wanted)], observed_at, self.pool_label
            ),
            "deletedIds": [] if full else sorted(self.deleted_nodes),
            "fullSync": full,
        }
        if self.pool_label:
            batch["nodePoolLabelKey"] = self.pool_label
        self.changed_nodes = set()
        self.deleted_nodes = set()
        return batch

    def queue_batch(
        self,
        observed_at: str,
        directory: OrganisationDirectory,
        cluster_id: str,
        quota_text: str | None,
        full: bool = False,
    ) -> dict[str, Any] | None:
        """Every queue of the cluster, or None when no queue kind changed (and not ``full``)."""
        if not (full or self.queues_changed):
            return None
        self.queues_changed = False

        def held(kind: Kind) -> list[Mapping[str, Any]]:
            objects = self.objects.get(kind.key, {})
            return [objects[uid] for uid in sorted(objects)]

        queues = [kai_queue(obj, directory, cluster_id) for obj in held(KAI_QUEUE_KIND)]
        queues += kueue_queues(
            held(KUEUE_CLUSTER_QUEUE_KIND), held(KUEUE_LOCAL_QUEUE_KIND), directory, cluster_id
        )
        if not queues and quota_text:
            queues = file_queues(quota_text, directory, cluster_id)
        return {"observedAt": observed_at, "queues": queues}
