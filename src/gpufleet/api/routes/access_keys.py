"""Run:ai's access keys: each user's own credentials, and their administration."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from gpufleet.api.authorization import CurrentActor
from gpufleet.api.deps import Db
from gpufleet.api.responses import json_response
from gpufleet.api.routing import OffLoopJsonRoute
from gpufleet.auth import user_access_keys
from gpufleet.schemas.access import (
    AccessKey,
    AccessKeyCreationRequest,
    AccessKeyPostResponse,
    AccessKeys,
    AccessKeysAdministration,
    RegenerateSecretResponse,
)
from gpufleet.schemas.errors import error_responses

router = APIRouter(prefix="/api/v1", tags=["Access Keys"], route_class=OffLoopJsonRoute)
KeyId = Annotated[str, Path(max_length=64, description="The access key ID")]


@router.get(
    "/access-keys",
    operation_id="get_access_keys",
    response_model=AccessKeys,
    responses=error_responses(401, 403, 500, 503),
)
def get_access_keys(actor: CurrentActor, conn: Db) -> Response:
    return json_response({"accessKeys": user_access_keys.my_access_keys(conn, actor)})


@router.post(
    "/access-keys",
    operation_id="create_access_key1",
    status_code=201,
    response_model=AccessKeyPostResponse,
    responses=error_responses(400, 401, 403, 409, 500, 503),
)
def create_access_key(actor: CurrentActor, conn: Db, body: AccessKeyCreationRequest) -> Response:
    created = user_access_keys.create_access_key(conn, actor, body.name)
    conn.commit()
    return json_response(created, status_code=201)


@router.get(
    "/access-keys/{accessKeyId}",
    operation_id="get_access_key_by_id1",
    response_model=AccessKey,
    responses=error_responses(401, 403, 404, 500, 503),
)
def get_access_key(actor: CurrentActor, conn: Db, accessKeyId: KeyId) -> Response:
    row = user_access_keys.my_access_key(conn, actor, accessKeyId)
    return json_response(user_access_keys.access_key_wire(row))


@router.delete(
    "/access-keys/{accessKeyId}",
    operation_id="delete_access_key_by_id",
    status_code=204,
    response_class=Response,
    responses=error_responses(400, 401, 403, 404, 500, 503),
)
def delete_access_key(actor: CurrentActor, conn: Db, accessKeyId: KeyId) -> Response:
    user_access_keys.delete_my_access_key(conn, actor, accessKeyId)
    conn.commit()
    return Response(status_code=204)


@router.post(
    "/access-keys/{accessKeyId}/secret",
    operation_id="regenerate_access_key_secret",
    response_model=RegenerateSecretResponse,
    responses=error_responses(400, 401, 403, 404, 500, 503),
)
def regenerate_secret(actor: CurrentActor, conn: Db, accessKeyId: KeyId) -> Response:
    secret = user_access_keys.regenerate_secret(conn, actor, accessKeyId)
    conn.commit()
    return json_response({"clientSecret": secret})


@router.get(
    "/administration/access-keys",
    operation_id="get_access_keys_administration",
    response_model=AccessKeysAdministration,
    responses=error_responses(401, 403, 404, 500, 503),
)
def get_access_keys_administration(
    actor: CurrentActor,
    conn: Db,
    clientId: Annotated[str | None, Query(max_length=128)] = None,
    createdBy: Annotated[str | None, Query(max_length=253)] = None,
) -> Response:
    keys = user_access_keys.all_access_keys(conn, actor, client_id=clientId, created_by=createdBy)
    return json_response({"accessKeys": keys})


@router.delete(
    "/administration/access-keys/{accessKeyId}",
    operation_id="delete_access_key_by_id_administration",
    status_code=204,
    response_class=Response,
    responses=error_responses(400, 401, 403, 404, 500, 503),
)
def delete_access_key_administration(actor: CurrentActor, conn: Db, accessKeyId: KeyId) -> Response:
    user_access_keys.delete_any_access_key(conn, actor, accessKeyId)
    conn.commit()
    return Response(status_code=204)
