"""A workload named on the command line: its id as given, or the one live workload of that name."""

from __future__ import annotations

from gpufleet.client.exit_codes import ExitCode
from gpufleet.client.http import ApiClient, ClientError
from gpufleet.core.identifiers import is_uuid

# Workloads named in the error when a name is ambiguous.
MAX_CANDIDATES = 10


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
        shown = found[:MAX_CANDIDATES]
        candidates = "; ".join(f"{w['projectName']}/{w['name']} ({w['id']})" for w in shown)
        count = str(len(found)) if len(found) <= MAX_CANDIDATES else f"over {MAX_CANDIDATES}"
        hint = "give the id" if project else "choose one with --project PROJECT or give the id"
        raise ClientError(
            f"{count} workloads are named {name!r}{where}: {candidates}; {hint}", ExitCode.USAGE
        )
    return found[0]["id"]
