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


def mapping_at(obj: Any, path: str) -> Mapping[str, Any]:
    """The mapping at ``path`` (empty when absent or not a mapping)."""
    found = value_at(obj, path)
    return found if isinstance(found, Mapping) else {}


def list_at(obj: Any, path: str) -> list[Any]:
    """The list at ``path`` (empty when absent or not a list)."""
    found = value_at(obj, path)
    return found if isinstance(found, list) else []


def text_at(obj: Any, path: str, limit: int | None = None) -> str | None:
    """The string at ``path`` (None when absent, not a string, or longer than ``limit``)."""
    found = value_at(obj, path)
    if not isinstance(found, str) or (limit is not None and len(found) > limit):
        return None
    return found


def metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """The object's metadata (empty when absent or malformed)."""
    return mapping_at(obj, "metadata")


def _strings(found: Mapping[str, Any]) -> Mapping[str, str]:
    return {k: v for k, v in found.items() if isinstance(k, str) and isinstance(v, str)}


def labels(obj: Mapping[str, Any]) -> Mapping[str, str]:
    """The object's string-valued labels (empty when absent)."""
    return _strings(mapping_at(obj, "metadata.labels"))


def annotations(obj: Mapping[str, Any]) -> Mapping[str, str]:
    """The object's string-valued annotations (empty when absent)."""
    return _strings(mapping_at(obj, "metadata.annotations"))


def conditions(obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The object's ``status.conditions`` that are well-formed mappings."""
    return [c for c in list_at(obj, "status.conditions") if isinstance(c, Mapping)]
