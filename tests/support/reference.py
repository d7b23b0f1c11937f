"""Validating served JSON against the reference OpenAPI documents in ``../shared/reference``.

Tests that use these skip when the documents are absent (they are not part of the repository).
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest

# Beside the repository, as CI lays it out; a checkout elsewhere may point at it explicitly.
REFERENCE_DIR = Path(
    os.environ.get("GPUFLEET_REFERENCE_DIR")
    or Path(__file__).resolve().parents[2] / "../shared/reference"
)


def load_reference(name: str) -> dict[str, Any]:
    """The parsed reference document ``name``; skips the test when it is not there."""
    path = REFERENCE_DIR / name
    if not path.is_file():
        pytest.skip("the reference OpenAPI document is not present next to the repository")
    return json.loads(path.read_text())


def nullable_to_json_schema(node: Any) -> Any:
    """OpenAPI 3.0 ``nullable: true`` becomes "this schema, or null" in JSON Schema."""
    if isinstance(node, list):
        return [nullable_to_json_schema(value) for value in node]
    if not isinstance(node, dict):
        return node
    converted = {
        key: nullable_to_json_schema(value)
        for key, value in node.items()
        if key not in ("nullable", "example", "x-schema-name")
    }
    if node.get("nullable") is True:
        return {"anyOf": [{"type": "null"}, converted]}
    return converted


class ReferenceValidators:
    """JSON Schema validators for the schemas and responses of one reference document."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.components = nullable_to_json_schema(copy.deepcopy(document["components"]))

    def _validator(self, schema: dict[str, Any]):
        from jsonschema import Draft202012Validator, FormatChecker

        return Draft202012Validator(
            {**schema, "components": self.components}, format_checker=FormatChecker()
        )

    def schema(self, name: str):
        return self._validator({"$ref": f"#/components/schemas/{name}"})

    def response(self, path: str, method: str = "get", status: str = "200"):
        """The validator of an operation's JSON response body."""
        response = self.document["paths"][path][method]["responses"][status]
        if "$ref" in response:
            response = self.document["components"]["responses"][response["$ref"].split("/")[-1]]
        schema = response["content"]["application/json"]["schema"]
        return self._validator(nullable_to_json_schema(schema))


def resolved(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """``node`` with its local ``$ref`` chain followed to the object it names."""
    while "$ref" in node:
        target: Any = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node
