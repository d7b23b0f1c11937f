"""Run:ai's access-rule batches: many rules granted, or revoked, in one request.

The reference document leaves these two operations out; their shapes are the official SDK's
(``AccessRulesBatchCreateFields``, ``AccessRulesBatchFields`` and their answers). Each rule
succeeds or fails on its own, in a savepoint, and a failure is reported with the status a single
request would have had.
"""

from __future__ import annotations

import uuid
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from gpufleet.api.authorization import ManagingActor
from gpufleet.api.deps import Db
from gpufleet.api.errors import status_of
from gpufleet.api.responses import json_response
from gpufleet.api.routes.access_rules import grant_by_role_id
from gpufleet.api.routing import OffLoopJsonRoute
from gpufleet.auth import administration
from gpufleet.core.errors import DomainError, Invalid
from gpufleet.schemas.access import (
    AccessRule,
    AccessRuleCreationFields,
    ScopeTypeName,
    SubjectTypeName,
)
from gpufleet.schemas.errors import error_responses
from gpufleet.schemas.storable import StorableModel

router = APIRouter(
    prefix="/api/v1/authorization/access-rules",
    tags=["Access rules"],
    route_class=OffLoopJsonRoute,
)
MAX_BATCH = 500


class BatchSubject(StorableModel):
    model_config = ConfigDict(extra="forbid")
    subjectId: str = Field(min_length=1, max_length=253)
    subjectType: SubjectTypeName


class BatchScope(StorableModel):
    model_config = ConfigDict(extra="forbid")
    scopeId: str = Field(max_length=64)
    scopeType: ScopeTypeName


class BatchCreatePayload(StorableModel):
    model_config = ConfigDict(extra="forbid")
    roleId: int = Field(ge=-(2**31), le=2**31 - 1)
    clusterId: str | None = Field(None, max_length=64)
    subjects: list[BatchSubject] = Field(min_length=1, max_length=MAX_BATCH)
    scopes: list[BatchScope] = Field(min_length=1, max_length=MAX_BATCH)


class AccessRulesBatchCreateFields(StorableModel):
    model_config = ConfigDict(extra="forbid")
    payload: BatchCreatePayload


class BatchCreateFailure(BaseModel):
    payload: AccessRuleCreationFields
    code: int
    message: str


class AccessRulesBatchCreateResponse(BaseModel):
    succeeded: list[AccessRule]
    failed: list[BatchCreateFailure]


class AccessRulesBatchFields(StorableModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[str] = Field(min_length=1, max_length=MAX_BATCH)
    action: Literal["delete", "validate_delete"]


class BatchFailure(BaseModel):
    id: str
    code: int
    message: str


class AccessRuleDeletionBatchResponse(BaseModel):
    id: str
    succeeded: list[str]
    failed: list[BatchFailure]


@router.post(
    "/batch-create",
    operation_id="access_rules_batch_create",
    summary="Create multiple access rules.",
    response_model=AccessRulesBatchCreateResponse,
    responses=error_responses(400, 401, 403, 500, 503),
)
def access_rules_batch_create(
    actor: ManagingActor, conn: Db, body: AccessRulesBatchCreateFields
) -> Response:
    payload = body.payload
    if len(payload.subjects) * len(payload.scopes) > MAX_BATCH:
        raise Invalid(f"A batch creates at most {MAX_BATCH} rules (subjects times scopes).")
    succeeded, failed = [], []
    for subject in payload.subjects:
        for scope in payload.scopes:
            fields = AccessRuleCreationFields(
                **subject.model_dump(), **scope.model_dump(), roleId=payload.roleId
            )
            try:
                with conn.begin_nested():
                    succeeded.append(grant_by_role_id(conn, actor, fields))
            except DomainError as error:
                failed.append(
                    {
                        "payload": fields.model_dump(exclude_none=True),
                        "code": status_of(error),
                        "message": str(error),
                    }
                )
    conn.commit()
    return json_response({"succeeded": succeeded, "failed": failed})


@router.post(
    "/batch",
    operation_id="access_rules_batch",
    summary="Delete multiple access rules.",
    response_model=AccessRuleDeletionBatchResponse,
    responses=error_responses(400, 401, 403, 500, 503),
)
def access_rules_batch(actor: ManagingActor, conn: Db, body: AccessRulesBatchFields) -> Response:
    succeeded, failed = [], []
    for rule_id in dict.fromkeys(body.ids):
        try:
            number = int(rule_id) if rule_id.isdigit() and len(rule_id) < 12 else None
            if number is None:
                raise Invalid(f"{rule_id!r} is not an access rule id.")
            with conn.begin_nested() as savepoint:
                administration.revoke_rule(conn, actor, number)
                if body.action == "validate_delete":
                    savepoint.rollback()
            succeeded.append(rule_id)
        except DomainError as error:
            failed.append({"id": rule_id, "code": status_of(error), "message": str(error)})
    conn.commit()
    return json_response({"id": str(uuid.uuid4()), "succeeded": succeeded, "failed": failed})
