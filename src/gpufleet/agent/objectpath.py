"""Reading values out of Kubernetes objects held as plain JSON dicts.

A path is dotted (``status.conditions``); ``*`` stands for every value of a map or every item
of a list, so ``spec.pytorchReplicaSpecs.*.replicas`` yields one value per replica type.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def values_at(obj: Any, path: str) -> list[Any]:
    """Every value found at ``path`` (an empty list when nothing is there)."""
    current = [obj]
    for part in path.split(".") if path else []:
        following: list[Any] = []
        for value in current:
            if part == "*":
                if isinstance(value, Mapping):
                    following.extend(value.values())
                elif isinstance(value, list):
                    following.extend(value)
            elif isinstance(value, Mapping) and value.get(part) is not None:
                following.append(value[part])
        current = following
    return current


def value_at(obj: Any, path: str, default: Any = None) -> Any:
    """The first value at ``path``, or ``default``."""
    found = values_at(obj, path)
    return found[0] if found else default


def metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """The object's metadata (empty when absent)."""
    return obj.get("metadata") or {}


def labels(obj: Mapping[str, Any]) -> Mapping[str, str]:
    """The object's labels (empty when absent)."""
    return metadata(obj).get("labels") or {}


def annotations(obj: Mapping[str, Any]) -> Mapping[str, str]:
    """The object's annotations (empty when absent)."""
    return metadata(obj).get("annotations") or {}


def conditions(obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The object's ``status.conditions`` that are well-formed mappings."""
    found = value_at(obj, "status.conditions", [])
    return [c for c in found if isinstance(c, Mapping)] if isinstance(found, list) else []
