"""Grouping objects into workloads as they arrive in any order, change owners and go away."""

from __future__ import annotations

from typing import Any

import pytest

from gpufleet.agent.kinds import BY_KEY, KINDS
from gpufleet.agent.state import ClusterState


def obj(
    api_version: str, kind: str, name: str, uid: str, owner: dict | None = None, **meta: Any
) -> dict:
    metadata: dict[str, Any] = {"name": name, "namespace": "ns", "uid": uid, **meta}
    if owner is not None:
        metadata["ownerReferences"] = [
            {
                "apiVersion": owner["apiVersion"],
                "kind": owner["kind"],
                "name": owner["metadata"]["name"],
                "uid": owner["metadata"]["uid"],
                "controller": True,
            }
        ]
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, "spec": {}, "status": {}}


def tracked_state() -> ClusterState:
    state = ClusterState()
    for kind in KINDS:
        state.set_tracked(kind, True)
    return state


DEPLOY = obj("apps/v1", "Deployment", "web", "d-1")
RS = obj("apps/v1", "ReplicaSet", "web-1", "rs-1", DEPLOY)
POD = obj("v1", "Pod", "web-1-a", "p-1", RS)


def test_pods_arriving_before_their_owners_wait_then_join_the_root() -> None:
    state = tracked_state()
    changes = state.upsert(POD)
    assert changes.dirty == set()
    assert state.roots == []
    changes = state.upsert(RS)
    assert changes.dirty == set()
    changes = state.upsert(DEPLOY)
    assert changes.dirty == {"d-1"}
    assert state.roots == ["d-1"]
    assert [p["metadata"]["uid"] for p in state.view("d-1").pods] == ["p-1"]


def test_owner_of_an_unwatched_kind_ends_the_walk() -> None:
    state = tracked_state()
    state.set_tracked(BY_KEY["ReplicaSet.apps"], False)
    state.upsert(POD)
    # The ReplicaSet is not watched, so the pod is its own workload.
    assert state.roots == ["p-1"]


def test_deleting_the_root_reports_it_and_orphans_wait() -> None:
    state = tracked_state()
    for item in (DEPLOY, RS, POD):
        state.upsert(item)
    changes = state.delete(DEPLOY)
    assert changes.deleted == {"d-1"}
    assert state.roots == []


def test_deleting_a_pod_marks_its_root_dirty() -> None:
    state = tracked_state()
    for item in (DEPLOY, RS, POD):
        state.upsert(item)
    changes = state.delete(POD)
    assert changes.dirty == {"d-1"}
    assert state.view("d-1").pods == ()


def test_relist_deletes_what_vanished() -> None:
    state = tracked_state()
    lone = obj("v1", "Pod", "lone", "p-9")
    for item in (DEPLOY, RS, POD, lone):
        state.upsert(item)
    changes = state.replace(BY_KEY["Pod"], [POD])
    assert changes.deleted == {"p-9"}
    assert set(state.roots) == {"d-1"}


def test_wrapper_stays_root_and_its_child_is_primary() -> None:
    state = tracked_state()
    wrapper = obj("run.ai/v2alpha1", "TrainingWorkload", "t", "w-1", labels={"project": "p"})
    job = obj("batch/v1", "Job", "t", "j-1", wrapper, labels={"user": "u"})
    pod = obj("v1", "Pod", "t-0", "p-2", job)
    for item in (pod, job, wrapper):
        state.upsert(item)
    view = state.view("w-1")
    assert state.roots == ["w-1"]
    assert view.primary["metadata"]["uid"] == "j-1"
    assert view.chain_labels == ({"user": "u"}, {"project": "p"})


def test_member_label_groups_pods_not_linked_by_owner() -> None:
    state = tracked_state()
    service = obj("serving.knative.dev/v1", "Service", "svc", "k-1")
    deployment = obj(
        "apps/v1",
        "Deployment",
        "svc-00001-deployment",
        "d-2",
        labels={"serving.knative.dev/service": "svc"},
    )
    pod = obj("v1", "Pod", "svc-pod", "p-3", labels={"serving.knative.dev/service": "svc"})
    state.upsert(pod)
    state.upsert(deployment)
    assert state.roots == []
    state.upsert(service)
    assert state.roots == ["k-1"]
    assert [p["metadata"]["uid"] for p in state.view("k-1").pods] == ["p-3"]


def test_podgroups_join_the_workload_but_are_never_roots() -> None:
    state = tracked_state()
    job = obj("batch/v1", "Job", "j", "j-2")
    podgroup = obj("scheduling.run.ai/v2alpha2", "PodGroup", "pg-j", "pg-1", job)
    state.upsert(podgroup)
    state.upsert(job)
    assert state.roots == ["j-2"]
    assert [g["metadata"]["uid"] for g in state.view("j-2").podgroups] == ["pg-1"]


def test_owner_cycles_terminate() -> None:
    state = tracked_state()
    a = obj("batch/v1", "Job", "a", "c-a")
    b = obj("batch/v1", "Job", "b", "c-b", a)
    a["metadata"]["ownerReferences"] = [
        {"apiVersion": "batch/v1", "kind": "Job", "name": "b", "uid": "c-b"}
    ]
    state.upsert(a)
    state.upsert(b)
    assert len(state.roots) == 1


def test_objects_without_uid_or_of_unknown_kinds_are_ignored() -> None:
    state = tracked_state()
    assert (
        state.upsert({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}}).dirty == set()
    )
    assert state.upsert(obj("example.com/v1", "Widget", "w", "u-1")).dirty == set()
    assert len(state) == 0


def test_priority_classes_are_values_not_workloads() -> None:
    state = tracked_state()
    state.upsert(
        {
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {"name": "urgent", "uid": "pc-1"},
            "value": 1000,
        }
    )
    assert state.priority_values == {"urgent": 1000}
    assert state.roots == []


def test_later_changes_win_when_merged() -> None:
    from gpufleet.agent.state import Changes

    pending = Changes(dirty={"a"}, deleted={"b"})
    pending.merge(Changes(dirty={"b"}, deleted={"a"}))
    assert (pending.dirty, pending.deleted) == ({"b"}, {"a"})


def _without_owner(item: dict) -> dict:
    orphan = {**item, "metadata": {**item["metadata"]}}
    orphan["metadata"].pop("ownerReferences", None)
    return orphan


def _owned_by(item: dict, owner: dict) -> dict:
    return obj(item["apiVersion"], item["kind"], item["metadata"]["name"], uid_(item), owner)


def uid_(item: dict) -> str:
    return item["metadata"]["uid"]


@pytest.mark.parametrize("owner_cleared_first", [True, False])
def test_an_adopted_replicaset_brings_every_pod_to_the_new_deployment(owner_cleared_first):
    """``kubectl delete deployment --cascade=orphan``, then the Deployment again: its new
    object adopts the ReplicaSet, and the pods below come along at once."""
    state = tracked_state()
    pods = [obj("v1", "Pod", f"web-1-{n}", f"p-{n}", RS) for n in range(3)]
    for item in (DEPLOY, RS, *pods):
        state.upsert(item)
    assert state.delete(DEPLOY).deleted == {"d-1"}
    if owner_cleared_first:
        # The garbage collector removes the orphaned owner reference.
        state.upsert(_without_owner(RS))
        assert state.roots == ["rs-1"]
    again = obj("apps/v1", "Deployment", "web", "d-2")
    state.upsert(again)
    changes = state.upsert(_owned_by(RS, again))
    assert state.roots == ["d-2"]
    assert changes.dirty == {"d-2"}
    assert changes.deleted == ({"rs-1"} if owner_cleared_first else set())
    assert sorted(uid_(p) for p in state.view("d-2").pods) == ["p-0", "p-1", "p-2"]


@pytest.mark.parametrize("pods_first", [True, False])
def test_an_owner_kind_tracked_after_its_children_takes_them_over(pods_first):
    """A RayCluster (and its pods) seen while RayJob was not yet listed is a workload of its
    own; once RayJob is listed, it is deleted and everything joins the RayJob."""
    state = ClusterState()
    for kind in KINDS:
        if kind.key != "RayJob.ray.io":
            state.set_tracked(kind, True)
    rayjob = obj("ray.io/v1", "RayJob", "train", "rj-1")
    cluster = obj("ray.io/v1", "RayCluster", "train-raycluster", "rc-1", rayjob)
    pods = [obj("v1", "Pod", f"train-worker-{n}", f"rp-{n}", cluster) for n in range(4)]
    for item in (*pods, cluster) if pods_first else (cluster, *pods):
        state.upsert(item)
    assert state.roots == ["rc-1"]
    changes = state.set_tracked(BY_KEY["RayJob.ray.io"], True)
    changes.merge(state.replace(BY_KEY["RayJob.ray.io"], [rayjob]))
    assert changes.deleted == {"rc-1"}
    assert changes.dirty == {"rj-1"}
    assert state.roots == ["rj-1"]
    assert sorted(uid_(p) for p in state.view("rj-1").pods) == [f"rp-{n}" for n in range(4)]
