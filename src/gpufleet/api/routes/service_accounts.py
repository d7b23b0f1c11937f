"""Run:ai's service accounts: automation's credentials, managed by system administrators."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import Response

from gpufleet.api.authorization import CurrentActor
from gpufleet.api.deps import Db
from gpufleet.api.responses import json_response
from gpufleet.api.routing import OffLoopJsonRoute
from gpufleet.auth import service_accounts
from gpufleet.schemas.access import (
    RegenerateSecretResponse,
    ServiceAccount,
    ServiceAccountCreationRequest,
    ServiceAccountPatchRequest,
    ServiceAccountPostResponse,
)
from gpufleet.schemas.errors import error_responses

router = APIRouter(
    prefix="/api/v1/service-accounts", tags=["Service Accounts"], route_class=OffLoopJsonRoute
)
AccountId = Annotated[str, Path(max_length=64, description="Service account id")]
_ERRORS = error_responses(400, 401, 403, 404, 500, 503)


@router.get(
    "",
    operation_id="get_service_accounts",
    response_model=list[ServiceAccount],
    responses=_ERRORS,
)
def get_service_accounts(actor: CurrentActor, conn: Db) -> Response:
    return json_response(service_accounts.list_service_accounts(conn, actor))


@router.post(
    "",
    operation_id="create_service_account",
    status_code=201,
    response_model=ServiceAccountPostResponse,
    responses=error_responses(400, 401, 403, 404, 409, 500, 503),
)
def create_service_account(
    actor: CurrentActor, conn: Db, body: ServiceAccountCreationRequest
) -> Response:
    created = service_accounts.create_service_account(conn, actor, body.name)
    conn.commit()
    return json_response(created, status_code=201)


@router.get(
    "/{serviceAccountId}",
    operation_id="get_service_account_by_id",
    response_model=ServiceAccount,
    responses=_ERRORS,
)
def get_service_account(actor: CurrentActor, conn: Db, serviceAccountId: AccountId) -> Response:
    row = service_accounts.get_service_account(conn, actor, serviceAccountId)
    return json_response(service_accounts.service_account_wire(row))


@router.patch(
    "/{serviceAccountId}",
    operation_id="update_service_account_by_id",
    response_class=Response,
    responses={200: {"description": "Executed successfully."}, **_ERRORS},
)
def update_service_account(
    actor: CurrentActor, conn: Db, serviceAccountId: AccountId, body: ServiceAccountPatchRequest
) -> Response:
    service_accounts.set_enabled(conn, actor, serviceAccountId, body.enabled)
    conn.commit()
    return Response(status_code=200)


@router.delete(
    "/{serviceAccountId}",
    operation_id="delete_service_account_by_id",
    status_code=204,
    response_class=Response,
    responses=_ERRORS,
)
def delete_service_account(actor: CurrentActor, conn: Db, serviceAccountId: AccountId) -> Response:
    service_accounts.delete_service_account(conn, actor, serviceAccountId)
    conn.commit()
    return Response(status_code=204)


@router.post(
    "/{serviceAccountId}/secret",
    operation_id="regenerate_service_account_secret",
    response_model=RegenerateSecretResponse,
    responses=_ERRORS,
)
def regenerate_secret(actor: CurrentActor, conn: Db, serviceAccountId: AccountId) -> Response:
    secret = service_accounts.regenerate_secret(conn, actor, serviceAccountId)
    conn.commit()
    return json_response({"clientSecret": secret})
