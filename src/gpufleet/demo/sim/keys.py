"""The access keys the simulated agents report with: one cluster-agent service account per
demo cluster, as ``gpufleet clusters register`` would create for a real agent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine

from gpufleet.auth.administration import DEMO_ACTOR
from gpufleet.auth.onboarding import create_agent_account
from gpufleet.auth.service_accounts import list_service_accounts, regenerate_secret
from gpufleet.demo.organisation import CLUSTERS, write_organisation


@dataclass(frozen=True, slots=True)
class AgentKey:
    cluster_id: str
    cluster_name: str
    client_id: str
    client_secret: str


def account_name(cluster_name: str) -> str:
    return f"demo-agent-{cluster_name}"


def demo_agent_keys(engine: Engine, now: datetime) -> list[AgentKey]:
    """The demo organisation (written once) and a fresh secret for each cluster's agent.

    An account kept from an earlier run gets a new secret (its rule stays); a new one gets the
    ``cluster-agent`` rule in its cluster's scope."""
    keys = []
    with engine.begin() as conn:
        write_organisation(conn, now)
        existing = {row["name"]: row for row in list_service_accounts(conn, DEMO_ACTOR)}
        for cluster in CLUSTERS:
            name = account_name(cluster.name)
            if name in existing:
                row = existing[name]
                secret = regenerate_secret(conn, DEMO_ACTOR, row["id"])
                keys.append(AgentKey(cluster.id, cluster.name, row["clientId"], secret))
                continue
            created = create_agent_account(conn, DEMO_ACTOR, name, cluster.id)
            keys.append(AgentKey(cluster.id, cluster.name, created["clientId"],
                                 created["clientSecret"]))  # fmt: skip
    return keys
