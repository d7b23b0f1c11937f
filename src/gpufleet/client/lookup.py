"""Names given on the command line where the API takes ids: workloads, clusters, departments
and projects, each by its name or its id.

A name must match exactly one visible record; no match or several are refused with one line
naming the candidates, so a name is never sent where an id is expected (the API would answer
it with nothing, or a confident zero).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from gpufleet.client.exit_codes import ExitCode
from gpufleet.client.http import ApiClient, ClientError
from gpufleet.core.identifiers import is_uuid

# Records named in the error when a name is ambiguous or unknown.
MAX_CANDIDATES = 10
ORG_UNITS = {"project": "/api/v1/org-unit/projects", "department": "/api/v1/org-unit/departments"}


def resolve_workload(client: ApiClient, name_or_id: str, project: str | None) -> str:
    """The workload id ``name_or_id`` stands for; a name must match exactly one live workload
    (in ``project`` when given), else the error lists the candidates."""
    if is_uuid(name_or_id):
        return name_or_id
    return _workload_id(client, name_or_id, project)


def _workload_id(client: ApiClient, name: str, project: str | None) -> str:
    """The id of the one live workload with this name (in this project, when given)."""
    terms = [f"name=={name}"] + ([f"projectName=={project}"] if project else [])
    params = {"filterBy": ",".join(terms), "limit": MAX_CANDIDATES + 1, "sortBy": "projectName"}
    found = client.get_json("/api/v1/workloads", params)["workloads"]
    where = f" in project {project!r}" if project else ""
    if not found:
        raise ClientError(f"no workload named {name!r}{where}", ExitCode.NOT_FOUND)
    if len(found) > 1:
        hint = "give the id" if project else "choose one with --project PROJECT or give the id"
        raise _ambiguous(
            "workloads", name, where, found, lambda w: f"{w['projectName']}/{w['name']}", hint
        )
    return found[0]["id"]


def cluster_names(client: ApiClient) -> dict[str, str]:
    """Each visible cluster's name by its id; none when the caller may not list clusters."""
    try:
        clusters = client.get_json("/api/v1/clusters", {"verbosity": "metadata"})
    except ClientError as exc:
        if exc.exit_code is not ExitCode.AUTH:
            raise
        return {}
    return {c["uuid"]: c["name"] for c in clusters}


def cluster_name(names: dict[str, str], cluster_id: str | None) -> str | None:
    """How a table shows a cluster: its name, or its id when the caller cannot name it."""
    return names.get(cluster_id, cluster_id) if cluster_id else cluster_id


def cluster_label(names: dict[str, str], cluster_id: str | None) -> str | None:
    """How a one-record view shows a cluster: ``name (id)``, or its id alone when the caller
    cannot name it."""
    name = names.get(cluster_id) if cluster_id else None
    return f"{name} ({cluster_id})" if name else cluster_id


def resolve_cluster(client: ApiClient, name_or_id: str) -> str:
    """The id of the cluster ``name_or_id`` names (an id is taken as given)."""
    if is_uuid(name_or_id):
        return name_or_id
    names = cluster_names(client)
    if not names:
        raise ClientError(
            f"cluster {name_or_id!r}: this access key may not list clusters to look the name "
            "up; give the cluster's id",
            ExitCode.USAGE,
        )
    found = [cluster_id for cluster_id, name in names.items() if name == name_or_id]
    if not found:
        raise _unknown("cluster", name_or_id, "", sorted(names.values()))
    if len(found) > 1:
        records = [{"id": i, "name": name_or_id} for i in found]
        raise _ambiguous("clusters", name_or_id, "", records, lambda c: c["name"], "give the id")
    return found[0]


def resolve_org_unit(
    client: ApiClient, kind: str, name_or_id: str, cluster_id: str | None = None
) -> str:
    """The id of the ``kind`` (``project`` or ``department``) named ``name_or_id`` (in the
    cluster ``cluster_id``, when given); a name is looked for first, then an id."""
    path, key = ORG_UNITS[kind], f"{kind}s"
    within = [f"clusterId=={cluster_id}"] if cluster_id else []
    params = {"filterBy": [f"name=={name_or_id}", *within], "limit": MAX_CANDIDATES + 1}
    found = client.get_json(path, params)[key]
    if len(found) == 1:
        return found[0]["id"]
    names = cluster_names(client) if found or cluster_id else {}
    place = f" in cluster {cluster_name(names, cluster_id)}" if cluster_id else ""
    if found:
        hint = "give the id" + ("" if cluster_id else " or the cluster with --cluster")
        raise _ambiguous(
            key,
            name_or_id,
            place,
            found,
            lambda u: f"{u['name']} in cluster {cluster_name(names, u.get('clusterId'))}",
            hint,
        )
    unit = _org_unit(client, path, name_or_id)
    if unit is not None and (not cluster_id or unit.get("clusterId") == cluster_id):
        return name_or_id
    known = client.get_json(path, {"filterBy": within, "limit": MAX_CANDIDATES + 1})[key]
    if not known and not cluster_id:
        # A project viewer sees no department to look in: the id it was shown is sent as is.
        return name_or_id
    raise _unknown(kind, name_or_id, place, [unit["name"] for unit in known])


def _org_unit(client: ApiClient, path: str, unit_id: str) -> dict[str, Any] | None:
    """The project or department of this id, or None when there is none (or it is hidden)."""
    try:
        return client.get_json(f"{path}/{quote(unit_id, safe='')}")
    except ClientError as exc:
        if exc.exit_code in (ExitCode.NOT_FOUND, ExitCode.USAGE):
            return None
        raise


def _ambiguous(
    noun: str,
    name: str,
    where: str,
    found: list[dict[str, Any]],
    label: Callable[[dict[str, Any]], str],
    hint: str,
) -> ClientError:
    shown = "; ".join(f"{label(r)} ({r['id']})" for r in found[:MAX_CANDIDATES])
    count = str(len(found)) if len(found) <= MAX_CANDIDATES else f"over {MAX_CANDIDATES}"
    return ClientError(f"{count} {noun} are named {name!r}{where}: {shown}; {hint}", ExitCode.USAGE)


def _unknown(kind: str, name: str, where: str, candidates: list[str]) -> ClientError:
    shown = ", ".join(candidates[:MAX_CANDIDATES])
    more = ", ..." if len(candidates) > MAX_CANDIDATES else ""
    known = f"; known: {shown}{more}" if candidates else "; none is visible to this key"
    return ClientError(f"no {kind} named {name!r}{where}{known}", ExitCode.NOT_FOUND)
