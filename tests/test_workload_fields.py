"""The workload field catalogue agrees with the wire model, the table and the reference."""

from __future__ import annotations

import re
import types
import typing
from datetime import datetime

import pytest

from gpufleet.core.workload_fields import (
    QUERY_FIELDS,
    WIRE_ORDER,
    WORKLOAD_CATALOGUE,
    FieldKind,
)
from gpufleet.schemas.ingest import IngestWorkload
from gpufleet.schemas.workloads import Workload, WorkloadDetailed
from gpufleet.store.tables import workloads
from tests.support.reference import load_reference

WIRE_FIELDS = [f for f in WORKLOAD_CATALOGUE if not f.query_only]
# Python types a scalar of each kind has on the wire model.
PYTHON_TYPES = {
    FieldKind.INTEGER: {int},
    FieldKind.NUMBER: {float},
    FieldKind.DATE: {datetime},
}


@pytest.fixture(scope="module")
def reference() -> dict:
    return load_reference("workloads-openapi.json")


def _types(annotation) -> set:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return {a for a in typing.get_args(annotation) if a is not type(None)}
    return {annotation}


def test_the_catalogue_lists_workload_detailed_in_its_order():
    assert [f.name for f in WIRE_FIELDS] == list(WorkloadDetailed.model_fields)
    assert list(WIRE_ORDER) == list(Workload.model_fields)


@pytest.mark.parametrize("field", WIRE_FIELDS, ids=lambda f: f.name)
def test_required_and_kind_match_the_wire_model(field):
    model_field = WorkloadDetailed.model_fields[field.name]
    assert model_field.is_required() == (field.required or field.null_on_wire)
    if field.kind in PYTHON_TYPES:
        assert _types(model_field.annotation) == PYTHON_TYPES[field.kind]


@pytest.mark.parametrize("field", [f for f in WORKLOAD_CATALOGUE if f.column], ids=lambda f: f.name)
def test_every_column_exists_with_the_catalogued_length(field):
    column = workloads.c[field.column]
    assert getattr(column.type, "length", None) == field.max_length
    if not field.time_dependent:
        assert column.nullable == (not field.required)


def test_ingest_refuses_values_longer_than_the_column():
    field = next(f for f in WORKLOAD_CATALOGUE if f.name == "projectName")
    assert field.max_length == 253
    with pytest.raises(ValueError, match="projectName is longer than 253"):
        IngestWorkload.model_validate(
            {**_minimal_workload(), "projectName": "p" * (field.max_length + 1)}
        )


def test_the_query_fields_are_the_reference_sort_enum_and_filter_pattern(reference):
    parameters = reference["components"]["parameters"]
    assert [f.name for f in QUERY_FIELDS] == parameters["WorkloadsSort"]["schema"]["enum"]
    pattern = parameters["WorkloadsFilter"]["schema"]["items"]["pattern"]
    names = re.match(r"\^\(([^)]*)\)", pattern).group(1).split("|")
    assert sorted(names) == sorted(f.name for f in QUERY_FIELDS)


def test_the_wire_order_is_the_reference_order(reference):
    schemas = reference["components"]["schemas"]
    served = [name for name in schemas["Workload"]["properties"] if name in WIRE_ORDER]
    # Every catalogued field is in the reference, in its order (optional ones may be left out).
    assert served == list(WIRE_ORDER)
    required = set(schemas["Workload"]["required"])
    assert required == {f.name for f in WIRE_FIELDS if f.required or f.null_on_wire}
    detail = schemas["WorkloadDetailed"]["allOf"][1]["properties"]
    assert [f.name for f in WIRE_FIELDS if f.detail_only] == list(detail)


def _minimal_workload() -> dict:
    return {
        "tenantId": 1,
        "runningPods": 0,
        "phaseUpdatedAt": "2026-01-01T00:00:00Z",
        "k8sPhaseUpdatedAt": "2026-01-01T00:00:00Z",
        "updatedAt": "2026-01-01T00:00:00Z",
        "source": "CLI",
        "deletedAt": None,
        "type": "Training",
        "name": "w",
        "id": "00000000-0000-4000-8000-000000000001",
        "priority": None,
        "priorityClassName": "train",
        "clusterId": "00000000-0000-4000-8000-000000000002",
        "projectName": "p",
        "projectId": "1",
        "departmentName": "d",
        "departmentId": "1",
        "namespace": "runai-p",
        "createdAt": "2026-01-01T00:00:00Z",
        "phase": "Running",
        "conditions": [],
        "k8sPhase": "Running",
        "category": "Train",
        "observedAt": "2026-01-01T00:00:00Z",
    }
