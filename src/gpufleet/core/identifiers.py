"""Recognising identifiers: workloads, clusters and pods are named by UUIDs, nodes by the
names Kubernetes gives them."""

from __future__ import annotations

import re
from uuid import UUID

# Kubernetes names a node with a DNS-1123 subdomain and refuses any other name: at most 253
# characters, dot-separated labels of lowercase letters, digits and '-', each label starting
# and ending with a letter or digit. Ingest refuses the same, so a node name needs no quoting
# anywhere (a comma would split a filterBy term, markup would reach the dashboard).
NODE_NAME_MAX = 253
_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
NODE_NAME_PATTERN = rf"^{_LABEL}(?:\.{_LABEL})*$"
NODE_NAME_RULE = (
    f"must be a Kubernetes node name: at most {NODE_NAME_MAX} characters of lowercase "
    "letters, digits, '-' and '.', starting and ending with a letter or digit"
)
_NODE_NAME = re.compile(NODE_NAME_PATTERN)


def is_uuid(text: str) -> bool:
    """Whether ``text`` is a UUID in any form ``uuid.UUID`` reads."""
    try:
        UUID(text)
    except ValueError:
        return False
    return True


def is_node_name(text: str) -> bool:
    """Whether Kubernetes would take ``text`` as a node's name (a DNS-1123 subdomain)."""
    # The length first: the pattern then never scans more than 253 characters.
    return len(text) <= NODE_NAME_MAX and _NODE_NAME.fullmatch(text) is not None
