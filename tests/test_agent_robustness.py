"""Whatever the API server hands over, the agent derives a record the ingest API accepts.

Objects are real fixtures with parts replaced by garbage (wrong types, huge numbers, unicode,
SQL metacharacters); derivation must neither raise nor produce an invalid record.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpufleet.agent.kinds import KINDS
from gpufleet.agent.organisation import OrganisationDirectory
from gpufleet.agent.records import derive_workload
from gpufleet.agent.state import ClusterState
from gpufleet.schemas.ingest import IngestWorkload
from tests.test_agent_kinds import CASES, CLUSTER_ID, load_case

UGLY_TEXT = st.sampled_from(
    ["", " ", "'; DROP TABLE workloads; --", "ü🚀\u202e", "a" * 300, "1e999999", "-5", "NaN", "0.5"]
)
UGLY = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | UGLY_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(UGLY_TEXT, inner, max_size=3),
    max_leaves=8,
)
# Places in an object where garbage is planted (created when missing).
TARGETS = [
    ("status",),
    ("status", "conditions"),
    ("status", "phase"),
    ("status", "containerStatuses"),
    ("spec",),
    ("spec", "containers"),
    ("spec", "template"),
    ("spec", "replicas"),
    ("spec", "parallelism"),
    ("spec", "suspend"),
    ("spec", "nodeName"),
    ("metadata", "labels"),
    ("metadata", "annotations"),
    ("metadata", "ownerReferences"),
    ("metadata", "deletionTimestamp"),
    ("metadata", "creationTimestamp"),
]
BASE_CASES = [load_case(path) for path in CASES[:: max(len(CASES) // 12, 1)]]


def plant(obj: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    target = obj
    for part in path[:-1]:
        if not isinstance(target.get(part), dict):
            target[part] = {}
        target = target[part]
    target[path[-1]] = value


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    case_index=st.integers(min_value=0, max_value=len(BASE_CASES) - 1),
    object_index=st.integers(min_value=0, max_value=10),
    target=st.sampled_from(TARGETS),
    garbage=UGLY,
)
def test_garbage_in_objects_still_gives_a_valid_record(
    case_index: int, object_index: int, target: tuple[str, ...], garbage: Any
) -> None:
    objects = copy.deepcopy(BASE_CASES[case_index]["objects"])
    victim = objects[object_index % len(objects)]
    plant(victim, target, garbage)
    state = ClusterState()
    for kind in KINDS:
        state.set_tracked(kind, True)
    for obj in objects:
        state.upsert(obj)
    for root in state.roots:
        record = derive_workload(
            state.view(root),
            cluster_id=CLUSTER_ID,
            directory=OrganisationDirectory(),
            observed_at="2026-01-01T00:00:00.000Z",
        ).record
        IngestWorkload.model_validate(record)


NASTY = [
    (("metadata", "labels"), ["kai.scheduler/queue"]),
    (("metadata", "annotations"), "gpu-fraction"),
    (("metadata", "ownerReferences"), "not-a-list"),
    (("metadata", "ownerReferences"), [{"uid": None, "kind": 5}]),
    (("status", "conditions"), "Ready"),
    (("status", "conditions"), [{"type": None, "status": True}, 7]),
    (("spec", "containers"), {"name": "c"}),
    (("spec", "containers"), [{"resources": {"limits": ["nvidia.com/gpu"]}}]),
    (("spec", "containers"), [{"resources": {"requests": {"cpu": "1e999999", "memory": -1}}}]),
    (("spec", "template"), "template"),
    (("spec",), ["spec"]),
    (("status",), "Running"),
    (("status", "containerStatuses"), [{"state": "waiting"}]),
    (("metadata", "creationTimestamp"), 12345),
    (("metadata", "name"), "ü🚀'; DROP TABLE workloads; --"),
    (("spec", "replicas"), 2**70),
    (("spec", "nodeName"), "Gpu node,name==a"),
    (("spec", "nodeName"), ""),
]


@given(st.sampled_from(NASTY), st.integers(min_value=0, max_value=len(BASE_CASES) - 1))
@settings(max_examples=len(NASTY) * 3, deadline=None)
def test_known_nasty_shapes(nasty: tuple[tuple[str, ...], Any], case_index: int) -> None:
    target, garbage = nasty
    for object_index in range(len(BASE_CASES[case_index]["objects"])):
        test_garbage_in_objects_still_gives_a_valid_record.hypothesis.inner_test(
            case_index, object_index, target, garbage
        )


def test_overlong_label_values_are_not_used_as_names() -> None:
    case = copy.deepcopy(load_case(CASES[0]))
    for obj in case["objects"]:
        obj["metadata"]["labels"] = {
            "project": "p" * 300,
            "user": "u" * 300,
            "priorityClassName": "x" * 300,
        }
    state = ClusterState()
    for kind in KINDS:
        state.set_tracked(kind, True)
    for obj in case["objects"]:
        state.upsert(obj)
    (root,) = state.roots
    record = derive_workload(
        state.view(root), cluster_id=CLUSTER_ID, directory=OrganisationDirectory()
    ).record
    IngestWorkload.model_validate(record)
    assert len(record["projectName"]) <= 253
    assert record["submittedBy"] is None or len(record["submittedBy"]) <= 253
