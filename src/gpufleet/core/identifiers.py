"""Recognising identifiers: workloads, clusters and pods are named by UUIDs."""

from __future__ import annotations

from uuid import UUID


def is_uuid(text: str) -> bool:
    """Whether ``text`` is a UUID in any form ``uuid.UUID`` reads."""
    try:
        UUID(text)
    except ValueError:
        return False
    return True
