"""Resolving what the caller may do, and the guards routes use.

Guards that only look at an already-resolved ``Access`` are ``async``: FastAPI runs them on the
event loop instead of sending each through the thread pool, a measurable share of a cheap
request. Dependencies that touch the database stay plain functions (thread pool).

A caller with no permission for an endpoint gets 403; a workload outside its scope is a 404
(its existence is not revealed) — see ``routes.workloads.get_workload_or_404``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from gpufleet.api.deps import CurrentPrincipal, Db
from gpufleet.auth.access import Access, resolve_access
from gpufleet.auth.administration import Actor
from gpufleet.core.errors import Forbidden, Unauthenticated
from gpufleet.query.scope import WorkloadScope
from gpufleet.store.access_rules import rules_for_subjects
from gpufleet.store.credentials import get_access_key


def get_access(principal: CurrentPrincipal, conn: Db) -> Access:
    if principal.credential:
        key = get_access_key(conn, principal.credential)
        # A token outlives nothing: a deleted or disabled key revokes its tokens at once, and
        # so does a rotated secret or a disable (the generation moved on; the same row read).
        if key is None or key.disabled:
            raise Unauthenticated("Invalid bearer token: the access key is disabled or deleted.")
        if principal.generation != key.token_generation:
            raise Unauthenticated(
                "Invalid bearer token: revoked by a rotation or disabling of its access key."
            )
    return resolve_access(rules_for_subjects(conn, principal.subjects()))


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
