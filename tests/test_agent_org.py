"""Project and department attribution."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpufleet.agent.organisation import (
    DEFAULT_DEPARTMENT,
    DEFAULT_PROJECT,
    MappingError,
    OrganisationDirectory,
    project_from_labels,
    unit_id,
)
from tests.support.agent_reports import CLUSTER_ID as CLUSTER


@pytest.mark.parametrize(
    ("label_sets", "namespace", "project"),
    [
        ([{"kai.scheduler/queue": "a", "runai/queue": "b", "project": "c"}], "runai-d", "a"),
        ([{"runai/queue": "b", "project": "c"}], "runai-d", "b"),
        ([{"project": "c"}], "runai-d", "c"),
        ([{}], "runai-d", "d"),
        ([{}], "ml-team", None),
        ([{}], "runai-", None),
        # The innermost object's queue wins over the pod's project label.
        ([{"project": "outer"}, {"kai.scheduler/queue": "pod-queue"}], "x", "pod-queue"),
        ([{"project": "first"}, {"project": "second"}], "x", "first"),
        ([{"kai.scheduler/queue": "  "}], "runai-e", "e"),
        ([{"project": "équipe-ü"}], "x", "équipe-ü"),
    ],
)
def test_project_resolution_order(
    label_sets: list[dict], namespace: str, project: str | None
) -> None:
    assert project_from_labels(label_sets, namespace) == project


MAPPING = """
defaultProject: orphans
defaultDepartment: general
projects:
  team-a: research
  team-b: {department: serving, id: "17"}
departments:
  research: {id: "3"}
"""


def test_mapping_file(tmp_path: Path) -> None:
    path = tmp_path / "mapping.yaml"
    path.write_text(MAPPING, encoding="utf-8")
    directory = OrganisationDirectory.load(path)
    a = directory.organisation("team-a", CLUSTER)
    assert (a.project_name, a.project_id, a.department_name, a.department_id) == (
        "team-a", unit_id(CLUSTER, "project", "team-a"), "research", "3",
    )  # fmt: skip
    b = directory.organisation("team-b", CLUSTER)
    serving = unit_id(CLUSTER, "department", "serving")
    assert (b.project_id, b.department_name, b.department_id) == ("17", "serving", serving)
    unknown = directory.organisation("team-z", CLUSTER)
    general = unit_id(CLUSTER, "department", "general")
    assert (unknown.department_name, unknown.department_id) == ("general", general)
    orphan = directory.organisation(None, CLUSTER)
    assert orphan.project_name == "orphans"


def test_empty_directory_uses_documented_defaults() -> None:
    org = OrganisationDirectory().organisation(None, CLUSTER)
    assert (org.project_name, org.department_name) == (DEFAULT_PROJECT, DEFAULT_DEPARTMENT)
    assert (
        OrganisationDirectory.load(None).organisation("p", CLUSTER).department_name
        == DEFAULT_DEPARTMENT
    )


def test_json_mapping_is_yaml_too() -> None:
    directory = OrganisationDirectory.from_text('{"projects": {"p": "d"}}')
    assert directory.organisation("p", CLUSTER).department_name == "d"


@pytest.mark.parametrize(
    "text",
    [
        "- a list",
        "projects: {p: 5}",
        "projects: {p: {id: 1}}",
        "departments: {d: {}}",
        "departments: {d: plain}",
        "projects: [unclosed",
    ],
)
def test_malformed_mappings_are_refused_with_a_reason(text: str) -> None:
    with pytest.raises(MappingError):
        OrganisationDirectory.from_text(text)


def test_derived_ids_are_distinct_per_cluster_and_stable() -> None:
    other = "0e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b"
    directory = OrganisationDirectory()
    mine, theirs = directory.organisation("p", CLUSTER), directory.organisation("p", other)
    assert mine.project_id != theirs.project_id
    assert mine.department_id != theirs.department_id
    assert directory.organisation("p", CLUSTER) == mine
    # Mapped ids are taken as given, whatever the cluster.
    mapped = OrganisationDirectory.from_text('projects: {p: {department: d, id: "7"}}')
    assert mapped.organisation("p", other).project_id == "7"
