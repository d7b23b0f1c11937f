"""Built-in roles and what each permits.

A role grants permissions; an access rule grants a role within a scope. The visible set of
workloads of a caller is the union of the scopes of its rules whose role can read workloads.

Each role has a stable numeric id and, where Run:ai has a role that matches, Run:ai's name
(access rules name roles by id on the wire, Run:ai's ``roleId``). The ``cluster-agent`` role is
gpufleet's own: Run:ai has no role for the process that reports a cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# gpufleet serves one tenant; Run:ai's tenant-scoped fields carry its id and name.
TENANT_ID = 1
TENANT_NAME = "gpufleet"


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
    USER = "user"
    GROUP = "group"
    SERVICE_ACCOUNT = "service-account"


# Run:ai's former name for a service account, still accepted where a subject type is read.
APP_SUBJECT_TYPE = "app"
# The subject type tokens of service accounts carried before service accounts had their name.
LEGACY_ACCESS_KEY_SUBJECT_TYPE = "accessKey"


def subject_type_of(text: str) -> SubjectType:
    """The subject type named by ``text``, reading Run:ai's ``app`` as a service account."""
    if text in (APP_SUBJECT_TYPE, LEGACY_ACCESS_KEY_SUBJECT_TYPE):
        return SubjectType.SERVICE_ACCOUNT
    return SubjectType(text)


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

# Stable numeric ids (never reused) and the names the API shows: Run:ai's where it has the role.
ROLE_IDS: dict[Role, int] = {
    Role.SYSTEM_ADMINISTRATOR: 1,
    Role.DEPARTMENT_ADMINISTRATOR: 2,
    Role.RESEARCHER: 3,
    Role.VIEWER: 4,
    Role.CLUSTER_AGENT: 1001,
}
ROLE_NAMES: dict[Role, str] = {
    Role.SYSTEM_ADMINISTRATOR: "System administrator",
    Role.DEPARTMENT_ADMINISTRATOR: "Department administrator",
    Role.RESEARCHER: "L1 researcher",
    Role.VIEWER: "Viewer",
    Role.CLUSTER_AGENT: "Cluster agent",
}
ROLES_BY_ID: dict[int, Role] = {number: role for role, number in ROLE_IDS.items()}


@dataclass(frozen=True, slots=True)
class ResourcePermission:
    """One permission as Run:ai lists it: actions on a resource type."""

    resource_type: str
    group_id: str
    display_name: str
    actions: tuple[str, ...]


_CRUD = ("create", "read", "update", "delete")
# What each of gpufleet's permissions amounts to in Run:ai's resource types and actions.
RESOURCE_PERMISSIONS: dict[Permission, tuple[ResourcePermission, ...]] = {
    Permission.READ_WORKLOADS: (
        ResourcePermission("workloads", "workload", "Workloads", ("read",)),
    ),
    # The cluster agent reports (synchronises) what runs on its cluster.
    Permission.INGEST: (ResourcePermission("cluster", "physical-resource", "Clusters", ("sync",)),),
    Permission.MANAGE_ACCESS: (
        ResourcePermission("access_rules", "iam", "Access rules", _CRUD),
        ResourcePermission("service-account", "iam", "Service accounts", _CRUD),
        ResourcePermission("access-keys", "iam", "Access keys", _CRUD),
        ResourcePermission("roles", "iam", "Roles", ("read",)),
    ),
    Permission.READ_AUDIT: (
        ResourcePermission("security-settings", "iam", "Security settings", ("read",)),
    ),
}

# The built-in roles carry this as their creation and update time (Run:ai's roles have one).
ROLES_DEFINED_AT = "2026-12-04T00:00:00Z"
