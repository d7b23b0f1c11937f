"""Resolving what the caller may do, and the guards routes use.

The caller's ``Access`` is read with its connection, in one worker thread (``deps.open_session``);
the guards here only look at it, so they are ``async``: FastAPI runs them on the event loop
instead of sending each through the thread pool, a measurable share of a cheap request.
Dependencies that touch the database stay plain functions (thread pool).

A caller with no permission for an endpoint gets 403; a workload outside its scope is a 404
(its existence is not revealed) — see ``routes.workloads.get_workload_or_404``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from gpufleet.api.deps import CurrentPrincipal, RequestSession
from gpufleet.auth.access import Access
from gpufleet.auth.administration import Actor
from gpufleet.core.errors import Forbidden
from gpufleet.query.scope import WorkloadScope


async def get_access(session: RequestSession) -> Access:
    return session.access


CallerAccess = Annotated[Access, Depends(get_access)]


async def get_read_scope(access: CallerAccess) -> WorkloadScope:
    if access.read.is_empty:
        raise Forbidden("You do not have sufficient permissions to read workloads.")
    return access.read


async def require_manage_access(access: CallerAccess) -> Access:
    if not access.may_manage_access:
        raise Forbidden("You do not have sufficient permissions to manage access.")
    return access


async def require_audit(access: CallerAccess) -> Access:
    if not access.read_audit:
        raise Forbidden("You do not have sufficient permissions to read the audit log.")
    return access


def require_ingest(access: Access, cluster_id: str) -> None:
    if not access.may_ingest(cluster_id):
        raise Forbidden(f"You do not have permission to ingest for cluster {cluster_id}.")


ReadScope = Annotated[WorkloadScope, Depends(get_read_scope)]
ManageAccess = Annotated[Access, Depends(require_manage_access)]
AuditAccess = Annotated[Access, Depends(require_audit)]


async def get_actor(principal: CurrentPrincipal, access: CallerAccess, request: Request) -> Actor:
    """The caller as the author of a change (audited with its address)."""
    source = request.client.host if request.client else None
    return Actor(principal.subject, access, source, principal.subject_type)


async def require_managing_actor(actor: Annotated[Actor, Depends(get_actor)]) -> Actor:
    await require_manage_access(actor.access)
    return actor


CurrentActor = Annotated[Actor, Depends(get_actor)]
ManagingActor = Annotated[Actor, Depends(require_managing_actor)]
