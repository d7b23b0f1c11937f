"""Which workload an object belongs to: the owner walk, as KAI's podgrouper does it.

From any object the walk follows the controller owner reference (else the first) up to the
top owner, which is the workload root; its uid is the workload id. Kinds whose pods are not
linked by owner references (Knative, KServe) name their root with a ``member_label``; the walk
jumps there first. Wrappers (run.ai native kinds, TrainJob, Argo Workflow) stay the root, but
their status, templates and pods come from the first non-wrapper below them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from gpufleet.agent.kinds import KINDS, Kind, kind_for
from gpufleet.agent.objectpath import labels, list_at, metadata

_LABELLED_KINDS = tuple(kind for kind in KINDS if kind.member_label)


class ObjectIndex(Protocol):
    """What the walk needs to see of the cluster."""

    def by_uid(self, uid: str) -> Mapping[str, Any] | None: ...

    def by_name(self, kind: Kind, namespace: str, name: str) -> Mapping[str, Any] | None: ...

    def is_tracked(self, kind: Kind) -> bool: ...


@dataclass(frozen=True)
class Resolution:
    """The chain from an object up to its top owner, or what the walk is waiting for."""

    chain: tuple[Mapping[str, Any], ...]
    waiting_on: str | None = None

    @property
    def top(self) -> Mapping[str, Any]:
        """The top owner (the workload root when it is a workload kind)."""
        return self.chain[-1]


def uid_of(obj: Mapping[str, Any]) -> str:
    """The object's uid."""
    return str(metadata(obj).get("uid", ""))


def name_key(kind: Kind, namespace: str, name: str) -> str:
    """The key under which an object is found by name (and waited for by name)."""
    return f"{kind.key}/{namespace}/{name}"


def controller_reference(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The owner reference with ``controller: true``, else the first one."""
    references = [r for r in list_at(obj, "metadata.ownerReferences") if isinstance(r, Mapping)]
    for reference in references:
        if reference.get("controller"):
            return reference
    return references[0] if references else None


def _labelled_parent(
    obj: Mapping[str, Any], index: ObjectIndex
) -> tuple[Mapping[str, Any] | None, str | None]:
    own_kind = kind_for(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
    namespace = str(metadata(obj).get("namespace", ""))
    for kind in _LABELLED_KINDS:
        value = labels(obj).get(kind.member_label or "")
        if not value or kind == own_kind or not index.is_tracked(kind):
            continue
        target = index.by_name(kind, namespace, value)
        if target is None:
            return None, name_key(kind, namespace, value)
        if uid_of(target) != uid_of(obj):
            return target, None
    return None, None


def resolve(obj: Mapping[str, Any], index: ObjectIndex) -> Resolution:
    """Walk from ``obj`` to its top owner.

    An owner of a tracked kind that has not arrived yet makes the walk wait (``waiting_on`` is
    its uid or name key); an owner of a kind the agent does not watch ends the walk there.
    """
    chain = [obj]
    seen = {uid_of(obj)}
    current = obj
    while True:
        parent, waiting = _labelled_parent(current, index)
        if waiting is not None:
            return Resolution(tuple(chain), waiting)
        if parent is None:
            reference = controller_reference(current)
            if reference is None:
                break
            parent = index.by_uid(str(reference.get("uid", "")))
            if parent is None:
                owner_kind = kind_for(
                    str(reference.get("apiVersion", "")), str(reference.get("kind", ""))
                )
                if owner_kind is not None and index.is_tracked(owner_kind):
                    return Resolution(tuple(chain), str(reference.get("uid", "")))
                break
        if uid_of(parent) in seen:
            # An ownership cycle (broken data): end at its smallest uid, the same from anywhere.
            start = [uid_of(o) for o in chain].index(uid_of(parent))
            smallest = min(range(start, len(chain)), key=lambda i: uid_of(chain[i]))
            return Resolution(tuple(chain[: smallest + 1]))
        seen.add(uid_of(parent))
        chain.append(parent)
        current = parent
    return Resolution(tuple(chain))


def kind_of(obj: Mapping[str, Any]) -> Kind | None:
    """The table row of an object."""
    return kind_for(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
