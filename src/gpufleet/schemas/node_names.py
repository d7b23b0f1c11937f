"""A node's name as ingest takes it (a node report's ``name``, a pod's ``nodeName``): what
Kubernetes takes, by the one rule in ``core.identifiers``."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field

from gpufleet.core.identifiers import NODE_NAME_MAX, NODE_NAME_PATTERN, NODE_NAME_RULE, is_node_name


def _node_name(value: str) -> str:
    if not is_node_name(value):
        raise ValueError(NODE_NAME_RULE)
    return value


NodeName = Annotated[
    str,
    Field(max_length=NODE_NAME_MAX, json_schema_extra={"pattern": NODE_NAME_PATTERN}),
    AfterValidator(_node_name),
]


def _no_node(value: object) -> object:
    return None if value == "" else value


# A pod's node: none when null, absent or "" (Kubernetes' own spec.nodeName of a pod not yet
# scheduled is empty, and an agent may pass it on as it is).
PodNodeName = Annotated[NodeName | None, BeforeValidator(_no_node)]
