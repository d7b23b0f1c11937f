"""Which project and department a workload belongs to.

The project comes from the queue label (``kai.scheduler/queue``, then the older
``runai/queue``), else the ``project`` label, looked up on the workload's objects from the
innermost owner up and then on its pods; else from the ``runai-<project>`` namespace
convention; else the documented default project. Departments come from a small mapping
(a file or a ConfigMap) of project -> department.

Projects and departments belong to one cluster on the server, so an id the mapping does not
give is derived from the cluster and the name: two clusters with a project of the same name
report two projects, as Run:ai has them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID, uuid5

import yaml

QUEUE_LABELS = ("kai.scheduler/queue", "runai/queue")
PROJECT_LABEL = "project"
NAMESPACE_PREFIX = "runai-"
DEFAULT_PROJECT = "unattributed"
DEFAULT_DEPARTMENT = "default"
_LONGEST_NAME = 253


class MappingError(ValueError):
    """The department mapping is malformed."""


@dataclass(frozen=True)
class Organisation:
    """The project and department of a workload, names and ids."""

    project_name: str
    project_id: str
    department_name: str
    department_id: str


def project_from_labels(label_sets: Iterable[Mapping[str, str]], namespace: str) -> str | None:
    """The project named by labels (queue first, then ``project``) or by the namespace."""
    label_sets = list(label_sets)
    for keys in (QUEUE_LABELS, (PROJECT_LABEL,)):
        for label_set in label_sets:
            for key in keys:
                value = label_set.get(key)
                # Label values are at most 63 characters; anything longer is not a project name.
                if isinstance(value, str) and value.strip() and len(value) <= _LONGEST_NAME:
                    return value.strip()
    if namespace.startswith(NAMESPACE_PREFIX) and len(namespace) > len(NAMESPACE_PREFIX):
        return namespace[len(NAMESPACE_PREFIX) :]
    return None


@dataclass(frozen=True)
class _Project:
    id: str | None
    department: str


class OrganisationDirectory:
    """Project -> department, with ids; unknown projects go to the default department."""

    def __init__(
        self,
        projects: Mapping[str, _Project] | None = None,
        department_ids: Mapping[str, str] | None = None,
        default_project: str = DEFAULT_PROJECT,
        default_department: str = DEFAULT_DEPARTMENT,
    ) -> None:
        self._projects = dict(projects or {})
        self._department_ids = dict(department_ids or {})
        self.default_project = default_project
        self.default_department = default_department

    @classmethod
    def from_document(cls, document: Any) -> OrganisationDirectory:
        """Build from the parsed mapping document (see docs/agent.md for the format)."""
        if document is None:
            return cls()
        if not isinstance(document, Mapping):
            raise MappingError("the department mapping must be a mapping at the top level")
        projects: dict[str, _Project] = {}
        for name, entry in (document.get("projects") or {}).items():
            if isinstance(entry, str):
                projects[str(name)] = _Project(None, entry)
            elif isinstance(entry, Mapping) and isinstance(entry.get("department"), str):
                given = entry.get("id")
                projects[str(name)] = _Project(str(given) if given else None, entry["department"])
            else:
                raise MappingError(f"project {name!r}: expected a department name or a mapping")
        department_ids: dict[str, str] = {}
        for name, entry in (document.get("departments") or {}).items():
            if not isinstance(entry, Mapping) or entry.get("id") in (None, ""):
                raise MappingError(f"department {name!r}: expected a mapping with an id")
            department_ids[str(name)] = str(entry["id"])
        return cls(
            projects,
            department_ids,
            str(document.get("defaultProject") or DEFAULT_PROJECT),
            str(document.get("defaultDepartment") or DEFAULT_DEPARTMENT),
        )

    @classmethod
    def from_text(cls, text: str) -> OrganisationDirectory:
        """Parse a YAML (or JSON) mapping."""
        try:
            return cls.from_document(yaml.safe_load(text))
        except yaml.YAMLError as exc:
            raise MappingError(f"the department mapping is not valid YAML: {exc}") from exc

    @classmethod
    def load(cls, path: str | Path | None) -> OrganisationDirectory:
        """Read a mapping file (an empty directory when no path is given)."""
        if path is None:
            return cls()
        return cls.from_text(Path(path).read_text(encoding="utf-8"))

    def organisation(self, project: str | None, cluster_id: str) -> Organisation:
        """The organisation of a project name (the default project when None) in a cluster."""
        name = project or self.default_project
        entry = self._projects.get(name)
        department = entry.department if entry else self.default_department
        department_id = self._department_ids.get(department)
        return Organisation(
            project_name=name,
            project_id=(entry and entry.id) or unit_id(cluster_id, "project", name),
            department_name=department,
            department_id=department_id or unit_id(cluster_id, "department", department),
        )

    def department_id(self, name: str, cluster_id: str) -> str:
        """The id of a department by name: the mapping's, else derived as for workloads."""
        return self._department_ids.get(name) or unit_id(cluster_id, "department", name)


def unit_id(cluster_id: str, kind: str, name: str) -> str:
    """The id of a project or department the mapping gives none for: stable, and distinct
    for each cluster (a UUID, so any name length fits)."""
    return str(uuid5(UUID(cluster_id), f"{kind}/{name}"))
