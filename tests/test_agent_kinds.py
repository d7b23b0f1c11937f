"""Every supported kind, in each state: realistic objects -> the expected workload record.

Each file under ``tests/fixtures/k8s/<kind>/`` holds the objects of one workload (root,
children, pods, PodGroups) and the record fields expected from them, as dotted paths.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from gpufleet.agent.kinds import KINDS
from gpufleet.agent.organisation import OrganisationDirectory
from gpufleet.agent.phase import Memory
from gpufleet.agent.records import derive_workload
from gpufleet.agent.state import ClusterState

FIXTURES = Path(__file__).parent / "fixtures" / "k8s"
CLUSTER_ID = "0b0c5a7e-6d1c-4d7a-9a53-1f3c2e1d9e01"
DIRECTORY = OrganisationDirectory.from_document(
    {
        "projects": {"team-a": "research", "team-b": {"department": "serving", "id": "17"}},
        "departments": {"research": {"id": "3"}},
    }
)
CASES = sorted(FIXTURES.glob("*/*.yaml"))


def load_case(path: Path) -> dict[str, Any]:
    """A fixture file: ``objects``, ``expected`` and optional ``memory``/``root``."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def derive_case(case: dict[str, Any]) -> dict[str, Any]:
    """Load the case's objects into a fresh state and derive the record of its root."""
    state = ClusterState()
    for kind in KINDS:
        state.set_tracked(kind, True)
    for obj in case["objects"]:
        state.upsert(obj)
    roots = state.roots
    if "root" in case:
        roots = [uid for uid in roots if state.view(uid).root["metadata"]["name"] == case["root"]]
    assert len(roots) == 1, f"expected one workload root, found {roots}"
    view = state.view(roots[0])
    memory = Memory(**case.get("memory", {}))
    return derive_workload(
        view,
        cluster_id=CLUSTER_ID,
        directory=DIRECTORY,
        memory=memory,
        observed_at="2026-01-01T00:00:00.000Z",
    ).record


def at(record: dict[str, Any], dotted: str) -> Any:
    """The value at a dotted path of a record (list items by index)."""
    value: Any = record
    for part in dotted.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


@pytest.mark.parametrize("path", CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_fixture_gives_expected_record(path: Path) -> None:
    case = load_case(path)
    record = derive_case(case)
    for dotted, expected in case["expected"].items():
        assert at(record, dotted) == expected, f"{dotted}: {at(record, dotted)!r}"


def test_every_workload_kind_has_fixtures_in_several_states() -> None:
    phases: dict[str, set[str]] = {}
    for path in CASES:
        phases.setdefault(path.parent.name, set()).add(load_case(path)["expected"]["phase"])
    for kind in KINDS:
        if kind.role in ("workload", "wrapper"):
            assert len(phases.get(kind.kind.lower(), ())) >= 2, f"too few states for {kind.key}"


def test_fixture_roots_use_the_root_uid_as_id() -> None:
    for path in CASES:
        case = load_case(path)
        record = derive_case(case)
        uids = {obj["metadata"]["uid"] for obj in case["objects"]}
        assert record["id"] in uids


def test_every_fixture_record_is_accepted_by_the_ingest_contract() -> None:
    from gpufleet.schemas.ingest import IngestWorkload

    for path in CASES:
        record = derive_case(load_case(path))
        IngestWorkload.model_validate(record)
