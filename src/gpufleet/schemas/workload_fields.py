"""Wire shape of ``GET /api/v1/workload-fields``: what filterBy and sortBy may name."""

from __future__ import annotations

from pydantic import BaseModel, Field


class QueryableField(BaseModel):
    name: str = Field(description="The field name as filterBy and sortBy write it.")
    kind: str = Field(description="text, number, integer or date.")
    operators: list[str] = Field(description="The filterBy operators the field accepts.")
    values: list[str] | None = Field(
        None,
        description="Only for a field whose values are a fixed set (a workload's phase): those "
        "values; == and != must name one, and <= and >= compare them as text.",
    )
    sortable: bool


class QueryableFieldList(BaseModel):
    fields: list[QueryableField] = Field(description="In the order of the sortBy enum.")
