"""``/api/v1/clusters``: the registered clusters, with their connection state.

A caller sees the clusters it may read something in (see docs/access-control.md); any other
cluster answers 404 exactly like an unknown one.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from sqlalchemy.engine import Connection

from gpufleet.api.authorization import ReadScope
from gpufleet.api.deps import Db, Now, State
from gpufleet.api.parameters import parse_uuid
from gpufleet.api.responses import json_response
from gpufleet.api.routing import OffLoopJsonRoute
from gpufleet.core.errors import NotFound
from gpufleet.query.scope import WorkloadScope
from gpufleet.schemas.clusters import ClusterVerbosity, DisplayedCluster
from gpufleet.schemas.errors import error_responses
from gpufleet.store.clusters import ClusterRow, cluster_wire, visible_cluster, visible_clusters

router = APIRouter(prefix="/api/v1/clusters", tags=["Clusters"], route_class=OffLoopJsonRoute)

ClusterUuidParam = Annotated[
    str,
    Path(
        description="The Universally Unique Identifier (UUID) of the cluster.",
        json_schema_extra={"format": "uuid"},
    ),
]
VerbosityParam = Annotated[
    ClusterVerbosity,
    Query(description="response verbosity level (`metadata` leaves out the status)."),
]


def get_cluster_or_404(conn: Connection, cluster_uuid: str, scope: WorkloadScope) -> ClusterRow:
    """The guard of every route taking a cluster id: out of scope reads as unknown."""
    row = visible_cluster(conn, parse_uuid("clusterUuid", cluster_uuid), scope)
    if row is None:
        raise NotFound(f"Cluster {cluster_uuid} not found.")
    return row


def silence(state) -> timedelta:
    return timedelta(seconds=state.settings.cluster_disconnected_after_seconds)


@router.get(
    "",
    summary="Get a list of clusters.",
    description=(
        "The clusters the caller may read something in, oldest first. `status.state` is "
        "Connected while the cluster's agent reports, Disconnected after "
        "`cluster_disconnected_after_seconds` of silence, WaitingToConnect before its first "
        "report."
    ),
    operation_id="get_clusters",
    response_model=list[DisplayedCluster],
    response_model_exclude_none=True,
    responses=error_responses(401, 403, 404, 500, 503),
)
def get_clusters(
    scope: ReadScope,
    state: State,
    conn: Db,
    now: Now,
    verbosity: VerbosityParam = ClusterVerbosity.FULL,
    includeRequestedForDelete: Annotated[
        bool | None,
        Query(description="Accepted for compatibility: no cluster is ever marked for deletion."),
    ] = None,
) -> Response:
    full = verbosity is ClusterVerbosity.FULL
    rows = visible_clusters(conn, scope)
    return json_response([cluster_wire(row, now, silence(state), full=full) for row in rows])


@router.get(
    "/{clusterUuid}",
    summary="Get cluster by id.",
    description="Retrieve cluster details by Universally Unique Identifier (UUID).",
    operation_id="get_cluster_by_uuid",
    response_model=DisplayedCluster,
    response_model_exclude_none=True,
    responses=error_responses(400, 401, 403, 404, 500, 503),
)
def get_cluster_by_uuid(
    scope: ReadScope,
    state: State,
    conn: Db,
    now: Now,
    clusterUuid: ClusterUuidParam,
    verbosity: VerbosityParam = ClusterVerbosity.FULL,
) -> Response:
    row = get_cluster_or_404(conn, clusterUuid, scope)
    full = verbosity is ClusterVerbosity.FULL
    return json_response(cluster_wire(row, now, silence(state), full=full))
