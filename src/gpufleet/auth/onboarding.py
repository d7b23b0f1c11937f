"""Registering a cluster before its agent runs, and naming the subject of a rule.

A registration is the cluster record with a new UUID, a service account for its agent and the
one rule that account needs (``cluster-agent`` in the cluster's scope); the agent then needs
nothing but what this returns.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.engine import Connection

from gpufleet.auth.administration import Actor, grant_rule, record, require_admin
from gpufleet.auth.service_accounts import create_service_account
from gpufleet.core.errors import Conflict, Invalid, NotFound
from gpufleet.core.roles import Role, ScopeType, SubjectType
from gpufleet.store import clusters


@dataclass(frozen=True, slots=True)
class Registration:
    cluster_id: str
    cluster_name: str
    tenant_id: int
    client_id: str
    client_secret: str


def register_cluster(conn: Connection, actor: Actor, name: str, tenant_id: int) -> Registration:
    """Create the cluster, its agent's service account and the account's ``cluster-agent``
    rule."""
    require_admin(actor)
    if not name.strip():
        raise Invalid("A cluster needs a name.")
    existing = clusters.clusters_named(conn, name)
    if existing:
        raise Conflict(f"A cluster named {name!r} is already registered: {existing[0]}.")
    cluster_id = str(uuid.uuid4())
    clusters.create_cluster(
        conn, cluster_id=cluster_id, name=name, tenant_id=tenant_id, now=datetime.now(UTC)
    )
    key = create_agent_account(conn, actor, f"cluster-agent-{name}", cluster_id)
    record(conn, actor, "cluster.register", cluster_id, name, clientId=key["clientId"])
    return Registration(cluster_id, name, tenant_id, key["clientId"], key["clientSecret"])


def create_agent_account(conn: Connection, actor: Actor, name: str, cluster_id: str) -> dict:
    """A service account named ``name`` holding ``cluster-agent`` in the cluster's scope: what
    an agent reports with. Returns the account's ``clientId`` and ``clientSecret``."""
    key = create_service_account(conn, actor, name)
    grant_rule(
        conn,
        actor,
        subject_type=SubjectType.SERVICE_ACCOUNT,
        subject_id=key["clientId"],
        role=Role.CLUSTER_AGENT,
        scope_type=ScopeType.CLUSTER,
        scope_id=cluster_id,
    )
    return key


def require_known_scope(conn: Connection, scope_type: ScopeType, scope_id: str) -> None:
    """Refuse a rule whose cluster, department or project is not known (yet)."""
    if not clusters.scope_exists(conn, scope_type.value, scope_id):
        raise NotFound(
            f"No {scope_type.value} {scope_id!r} is known, so the rule would match nothing. "
            f"Check the id, or pass --allow-unknown-scope to grant it before the "
            f"{scope_type.value} first reports.",
        )
