"""The served OpenAPI document names the parameters and statuses of the reference's clusters,
projects and departments operations."""

from __future__ import annotations

import pytest

from tests.support.reference import load_reference
from tests.test_openapi import _enum, _parameters, served  # noqa: F401

OPERATIONS = [
    "/api/v1/clusters",
    "/api/v1/clusters/{clusterUuid}",
    "/api/v1/clusters/{clusterUuid}/metrics",
    "/api/v1/org-unit/projects",
    "/api/v1/org-unit/projects/count",
    "/api/v1/org-unit/projects/telemetry",
    "/api/v1/org-unit/projects/{projectId}",
    "/api/v1/org-unit/projects/{projectId}/metrics",
    "/api/v1/org-unit/departments",
    "/api/v1/org-unit/departments/count",
    "/api/v1/org-unit/departments/telemetry",
    "/api/v1/org-unit/departments/{departmentId}",
    "/api/v1/org-unit/departments/{departmentId}/metrics",
]


@pytest.fixture(scope="module")
def reference() -> dict:
    return load_reference("runai-adjacent-openapi.json")


@pytest.mark.parametrize("path", OPERATIONS)
def test_parameters_and_statuses_match_the_reference(served, reference, path):  # noqa: F811
    _, document = served
    ours = _parameters(document, path, "get")
    theirs = _parameters(reference, path, "get")
    assert sorted(ours) == sorted(theirs)
    for name, parameter in theirs.items():
        assert ours[name]["in"] == parameter["in"], name
        assert ours[name].get("required", False) == parameter.get("required", False), name
    documented = set(document["paths"][path]["get"]["responses"])
    # 422 is never answered (bad input is a 400); everything else the reference lists is.
    assert set(reference["paths"][path]["get"]["responses"]) - {"422"} <= documented
