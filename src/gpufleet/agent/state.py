"""The agent's in-memory picture of the cluster, grouped into workloads.

``ClusterState`` holds every watched object by uid, keeps for each the workload root it
resolves to, and answers, after each change, which workload roots must be re-derived and which
were deleted. Objects whose owner has not been seen yet wait for it by uid or name.

Ownership can change under objects that do not change themselves: a ReplicaSet orphaned by
``kubectl delete deployment --cascade=orphan`` and adopted by the re-created Deployment, or a
RayCluster whose RayJob kind is listed only after it. Every object below the one that moved is
therefore found through its owner references (``_children``) and regrouped in the same change,
and a root is reported deleted when it ends up no root, whatever order its members moved in.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gpufleet.agent.grouping import (
    Resolution,
    controller_reference,
    kind_of,
    name_key,
    resolve,
    uid_of,
)
from gpufleet.agent.kinds import Kind
from gpufleet.agent.objectpath import labels, metadata

_ROOT_ROLES = ("workload", "wrapper")


@dataclass
class Changes:
    """Workload roots to re-derive and roots that are gone."""

    dirty: set[str] = field(default_factory=set)
    deleted: set[str] = field(default_factory=set)

    def merge(self, other: Changes) -> None:
        """Fold later changes into these: a later update revives a deleted root and vice versa."""
        self.deleted -= other.dirty
        self.dirty -= other.deleted
        self.dirty |= other.dirty
        self.deleted |= other.deleted


@dataclass(frozen=True)
class WorkloadView:
    """Everything a record is derived from: the root, its primary object, pods, PodGroups."""

    root: Mapping[str, Any]
    primary: Mapping[str, Any]
    chain_labels: tuple[Mapping[str, str], ...]
    pods: tuple[Mapping[str, Any], ...]
    podgroups: tuple[Mapping[str, Any], ...]


class ClusterState:
    """Watched objects by uid, with their workload root kept up to date."""

    def __init__(self) -> None:
        self._objects: dict[str, Mapping[str, Any]] = {}
        self._names: dict[str, str] = {}
        self._root_of: dict[str, str] = {}
        self._members: dict[str, set[str]] = defaultdict(set)
        self._waiting: dict[str, set[str]] = defaultdict(set)
        self._waits_for: dict[str, str] = {}
        self._tracked: set[str] = set()
        # Owner references, both ways: the controller owner's uid of each object, and the
        # objects naming each uid as their controller owner (whether or not it is held).
        self._owner_of: dict[str, str] = {}
        self._children: dict[str, set[str]] = defaultdict(set)
        self.priority_values: dict[str, int] = {}

    # ObjectIndex protocol, used by the owner walk.
    def by_uid(self, uid: str) -> Mapping[str, Any] | None:
        """The object with this uid."""
        return self._objects.get(uid)

    def by_name(self, kind: Kind, namespace: str, name: str) -> Mapping[str, Any] | None:
        """The object of this kind, namespace and name."""
        uid = self._names.get(name_key(kind, namespace, name))
        return self._objects.get(uid) if uid else None

    def workload_of(self, uid: str) -> str | None:
        """The root uid of the workload the object ``uid`` belongs to, if it belongs to one."""
        root = self._root_of.get(uid)
        return root if root is not None and self._is_root(root) else None

    def is_tracked(self, kind: Kind) -> bool:
        """Whether the kind is watched (its CRD installed)."""
        return kind.key in self._tracked

    def set_tracked(self, kind: Kind, tracked: bool) -> Changes:
        """Mark a kind watched or not; a change re-groups every object."""
        was = kind.key in self._tracked
        if tracked:
            self._tracked.add(kind.key)
        else:
            self._tracked.discard(kind.key)
        if was == tracked:
            return Changes()
        return self._reresolve(list(self._objects))

    @property
    def roots(self) -> list[str]:
        """Uids of every current workload root."""
        return [uid for uid, root in self._root_of.items() if uid == root and self._is_root(uid)]

    def uids_of_kind(self, kind: Kind) -> list[str]:
        """Uids of the held objects of one kind."""
        return [uid for uid, obj in self._objects.items() if kind_of(obj) == kind]

    def __len__(self) -> int:
        return len(self._objects)

    def upsert(self, obj: Mapping[str, Any]) -> Changes:
        """An object was added or modified."""
        uid = uid_of(obj)
        kind = kind_of(obj)
        if not uid or kind is None:
            return Changes()
        previous = self._objects.get(uid)
        if previous is not None:
            self._names.pop(self._name_of(previous), None)
        self._objects[uid] = obj
        self._names[self._name_of(obj)] = uid
        if kind.role == "priorityclass":
            value = obj.get("value")
            if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**31:
                self.priority_values[str(metadata(obj).get("name"))] = value
            return Changes()
        self._link_owner(uid, obj)
        changes = self._place(uid)
        waiters = self._waiting.pop(uid, set()) | self._waiting.pop(self._name_of(obj), set())
        if waiters:
            changes.merge(self._reresolve(waiters))
        if previous is not None and self._parent_key(previous) != self._parent_key(obj):
            # Its owner changed: everything below it may now belong elsewhere.
            changes.merge(self._reresolve(self._descendants(uid)))
        return self._settled(changes)

    def delete(self, obj: Mapping[str, Any]) -> Changes:
        """An object was deleted."""
        uid = uid_of(obj)
        held = self._objects.pop(uid, None)
        if held is None:
            return Changes()
        self._names.pop(self._name_of(held), None)
        if kind_of(held) is not None and kind_of(held).role == "priorityclass":
            self.priority_values.pop(str(metadata(held).get("name")), None)
            return Changes()
        self._unlink_owner(uid)
        self._unwait(uid)
        root = self._root_of.pop(uid, None)
        changes = Changes()
        if root is None:
            return changes
        self._members[root].discard(uid)
        if root == uid:
            members = self._members.pop(uid, set())
            if kind_of(held) is not None and kind_of(held).role in _ROOT_ROLES:
                changes.deleted.add(uid)
            for member in members:
                self._root_of.pop(member, None)
            changes.merge(self._reresolve(members))
        else:
            changes.dirty.add(root)
        return self._settled(changes)

    def replace(self, kind: Kind, objects: Iterable[Mapping[str, Any]]) -> Changes:
        """A full list of one kind: held objects absent from it were deleted meanwhile."""
        changes = Changes()
        fresh = {uid_of(obj): obj for obj in objects}
        for uid in self.uids_of_kind(kind):
            if uid not in fresh:
                changes.merge(self.delete(self._objects[uid]))
        for uid, obj in fresh.items():
            held = self._objects.get(uid)
            if held is None or metadata(held).get("resourceVersion") != metadata(obj).get(
                "resourceVersion"
            ):
                changes.merge(self.upsert(obj))
        return changes

    def view(self, root_uid: str) -> WorkloadView | None:
        """What a record of this root is derived from (None when it is not a root)."""
        if not self._is_root(root_uid):
            return None
        root = self._objects[root_uid]
        members = [self._objects[m] for m in self._members.get(root_uid, ()) if m in self._objects]
        pods = tuple(sorted((m for m in members if m.get("kind") == "Pod"), key=_by_name))
        podgroups = tuple(m for m in members if kind_of(m) and kind_of(m).role == "podgroup")
        primary = root
        chain = [root]
        while (kind := kind_of(primary)) is not None and kind.role == "wrapper":
            children = [m for m in members if self._parent_uid(m) == uid_of(primary)]
            children = [c for c in children if kind_of(c) and kind_of(c).role != "podgroup"]
            if not children:
                break
            primary = sorted(children, key=lambda c: (c.get("kind") == "Pod", uid_of(c)))[0]
            chain.append(primary)
        # Lower objects' labels win; a wrapper's labels only fill gaps (as KAI copies them).
        chain_labels = tuple(labels(o) for o in reversed(chain))
        return WorkloadView(root, primary, chain_labels, pods, podgroups)

    def _is_root(self, uid: str) -> bool:
        obj = self._objects.get(uid)
        kind = kind_of(obj) if obj is not None else None
        return kind is not None and kind.role in _ROOT_ROLES and self._root_of.get(uid) == uid

    def _name_of(self, obj: Mapping[str, Any]) -> str:
        kind = kind_of(obj)
        meta = metadata(obj)
        return name_key(kind, str(meta.get("namespace", "")), str(meta.get("name", "")))

    def _parent_key(self, obj: Mapping[str, Any]) -> tuple[str, tuple[tuple[str, str], ...]]:
        reference = controller_reference(obj)
        return (
            str(reference.get("uid")) if reference else "",
            tuple(sorted(labels(obj).items())),
        )

    def _parent_uid(self, obj: Mapping[str, Any]) -> str | None:
        resolution = resolve(obj, self)
        return uid_of(resolution.chain[1]) if len(resolution.chain) > 1 else None

    def _descendants(self, uid: str) -> set[str]:
        """Everything whose owner chain passes through ``uid`` (waiting objects included), and
        the other members of its root."""
        found: set[str] = set()
        pending = list(self._children.get(uid, ()))
        while pending:
            child = pending.pop()
            if child not in found and child != uid:
                found.add(child)
                pending.extend(self._children.get(child, ()))
        root = self._root_of.get(uid)
        if root:
            found |= {m for m in self._members.get(root, ()) if m != uid}
        return found

    def _link_owner(self, uid: str, obj: Mapping[str, Any]) -> None:
        reference = controller_reference(obj)
        owner = str(reference.get("uid", "")) if reference else ""
        if self._owner_of.get(uid, "") == owner:
            return
        self._unlink_owner(uid)
        if owner:
            self._owner_of[uid] = owner
            self._children[owner].add(uid)

    def _unlink_owner(self, uid: str) -> None:
        _unlink(self._owner_of, self._children, uid)

    def _settled(self, changes: Changes) -> Changes:
        """Dirty roots that are still roots; deleted ones that did not become roots again."""
        changes.dirty = {d for d in changes.dirty if self._is_root(d)}
        changes.deleted = {d for d in changes.deleted if not self._is_root(d)}
        return changes

    def _unwait(self, uid: str) -> None:
        _unlink(self._waits_for, self._waiting, uid)

    def _place(self, uid: str) -> Changes:
        changes = Changes()
        old_root = self._root_of.get(uid)
        self._unwait(uid)
        resolution: Resolution = resolve(self._objects[uid], self)
        if resolution.waiting_on is not None:
            self._waiting[resolution.waiting_on].add(uid)
            self._waits_for[uid] = resolution.waiting_on
            new_root = None
        else:
            new_root = uid_of(resolution.top)
        if old_root is not None and old_root != new_root:
            self._members[old_root].discard(uid)
            if old_root == uid and self._is_root_kind(uid):
                changes.deleted.add(uid)
            elif self._is_root(old_root):
                # A root that stopped being one is reported by its own placement, as deleted;
                # marking it dirty here would revive it when the two changes are merged.
                changes.dirty.add(old_root)
        if new_root is None:
            self._root_of.pop(uid, None)
            return changes
        self._root_of[uid] = new_root
        self._members[new_root].add(uid)
        changes.deleted.discard(new_root)
        changes.dirty.add(new_root)
        return changes

    def _is_root_kind(self, uid: str) -> bool:
        obj = self._objects.get(uid)
        kind = kind_of(obj) if obj is not None else None
        return kind is not None and kind.role in _ROOT_ROLES

    def _reresolve(self, uids: Iterable[str]) -> Changes:
        changes = Changes()
        pending = list(uids)
        done: set[str] = set()
        while pending:
            uid = pending.pop()
            if uid in done or uid not in self._objects:
                continue
            done.add(uid)
            changes.merge(self._place(uid))
            pending.extend(self._waiting.pop(uid, set()))
        return self._settled(changes)


def _unlink(key_of: dict[str, str], members: dict[str, set[str]], uid: str) -> None:
    """Forget ``uid`` in a relation kept both ways (uid to key, key to uids); a key left with
    no uid is dropped, so neither map grows with objects long gone."""
    key = key_of.pop(uid, None)
    if key is not None:
        members[key].discard(uid)
        if not members[key]:
            del members[key]


def _by_name(obj: Mapping[str, Any]) -> str:
    return str(metadata(obj).get("name", ""))
