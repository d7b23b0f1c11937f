"""Built-in roles and what each permits.

A role grants permissions; an access rule grants a role within a scope. The visible set of
workloads of a caller is the union of the scopes of its rules whose role can read workloads.
"""

from __future__ import annotations

from enum import StrEnum


class Permission(StrEnum):
    READ_WORKLOADS = "workloads:read"
    INGEST = "ingest:write"
    MANAGE_ACCESS = "access:manage"
    READ_AUDIT = "audit:read"


class Role(StrEnum):
    SYSTEM_ADMINISTRATOR = "system-administrator"
    DEPARTMENT_ADMINISTRATOR = "department-administrator"
    RESEARCHER = "researcher"
    VIEWER = "viewer"
    CLUSTER_AGENT = "cluster-agent"


class ScopeType(StrEnum):
    TENANT = "tenant"
    CLUSTER = "cluster"
    DEPARTMENT = "department"
    PROJECT = "project"


class SubjectType(StrEnum):
    ACCESS_KEY = "accessKey"
    USER = "user"
    GROUP = "group"


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.SYSTEM_ADMINISTRATOR: frozenset(Permission),
    # Manages rules inside their own scope only (checked where rules are written).
    Role.DEPARTMENT_ADMINISTRATOR: frozenset({Permission.READ_WORKLOADS, Permission.MANAGE_ACCESS}),
    Role.RESEARCHER: frozenset({Permission.READ_WORKLOADS}),
    Role.VIEWER: frozenset({Permission.READ_WORKLOADS}),
    Role.CLUSTER_AGENT: frozenset({Permission.INGEST}),
}

ROLE_DESCRIPTIONS: dict[Role, str] = {
    Role.SYSTEM_ADMINISTRATOR: "Everything: all workloads, ingest, credentials, rules, audit log.",
    Role.DEPARTMENT_ADMINISTRATOR: "Reads workloads and metrics in scope; manages rules in scope.",
    Role.RESEARCHER: "Reads workloads and metrics in scope.",
    Role.VIEWER: "Reads workloads and metrics in scope.",
    Role.CLUSTER_AGENT: "Ingests workloads and metrics for the cluster in scope; reads nothing.",
}

# Which scope types a role may be granted in.
ALLOWED_SCOPES: dict[Role, frozenset[ScopeType]] = {
    Role.SYSTEM_ADMINISTRATOR: frozenset({ScopeType.TENANT}),
    Role.DEPARTMENT_ADMINISTRATOR: frozenset({ScopeType.DEPARTMENT}),
    Role.RESEARCHER: frozenset(ScopeType),
    Role.VIEWER: frozenset(ScopeType),
    Role.CLUSTER_AGENT: frozenset({ScopeType.CLUSTER}),
}
