"""What a caller may do, resolved from its access rules on every request.

Rules are read from the database per request, so a rule change or a disabled key takes effect
at once on every replica.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from gpufleet.core.roles import ROLE_PERMISSIONS, Permission, Role, ScopeType
from gpufleet.query.scope import WorkloadScope
from gpufleet.store.access_rules import AccessRuleRow


@dataclass(frozen=True, slots=True)
class Access:
    read: WorkloadScope = field(default_factory=WorkloadScope)
    ingest_everywhere: bool = False
    ingest_clusters: frozenset[str] = frozenset()
    manage_everything: bool = False
    manage_departments: frozenset[str] = frozenset()
    read_audit: bool = False
    # Every permission any of the caller's rules grants, in whatever scope.
    permissions: frozenset[Permission] = frozenset()

    def may_ingest(self, cluster_id: str) -> bool:
        return self.ingest_everywhere or cluster_id in self.ingest_clusters

    @property
    def may_manage_access(self) -> bool:
        return self.manage_everything or bool(self.manage_departments)


def resolve_access(rules: Iterable[AccessRuleRow]) -> Access:
    everything = False
    clusters: set[str] = set()
    departments: set[str] = set()
    projects: set[str] = set()
    ingest_everywhere = False
    ingest_clusters: set[str] = set()
    manage_everything = False
    manage_departments: set[str] = set()
    read_audit = False
    granted: set[Permission] = set()
    for rule in rules:
        try:
            permissions = ROLE_PERMISSIONS[Role(rule.role)]
            scope_type = ScopeType(rule.scope_type)
        except ValueError:
            continue  # a rule naming a role or scope this version does not know grants nothing
        granted |= permissions
        tenant = scope_type is ScopeType.TENANT
        if Permission.READ_WORKLOADS in permissions:
            if tenant:
                everything = True
            else:
                {
                    ScopeType.CLUSTER: clusters,
                    ScopeType.DEPARTMENT: departments,
                    ScopeType.PROJECT: projects,
                }[scope_type].add(rule.scope_id)
        if Permission.INGEST in permissions:
            if tenant:
                ingest_everywhere = True
            elif scope_type is ScopeType.CLUSTER:
                ingest_clusters.add(rule.scope_id)
        if Permission.MANAGE_ACCESS in permissions:
            if tenant:
                manage_everything = True
            elif scope_type is ScopeType.DEPARTMENT:
                manage_departments.add(rule.scope_id)
        if Permission.READ_AUDIT in permissions and tenant:
            read_audit = True
    return Access(
        read=WorkloadScope(
            everything=everything,
            cluster_ids=frozenset(clusters),
            department_ids=frozenset(departments),
            project_ids=frozenset(projects),
        ),
        ingest_everywhere=ingest_everywhere,
        ingest_clusters=frozenset(ingest_clusters),
        manage_everything=manage_everything,
        manage_departments=frozenset(manage_departments),
        read_audit=read_audit,
        permissions=frozenset(granted),
    )
