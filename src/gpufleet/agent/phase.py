"""The workload phase: facts gathered from the objects, then an ordered decision table.

``PHASE_TABLE`` is read top to bottom and the first row whose test holds gives the phase and
its message. The kind-specific knowledge lives in the kinds table (which normalised statuses
an object is in); everything here is the same for every kind.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gpufleet.agent.grouping import kind_of
from gpufleet.agent.matchers import evaluate, explain
from gpufleet.agent.objectpath import conditions, list_at, metadata, value_at
from gpufleet.agent.resources import is_live, templates_of
from gpufleet.agent.state import WorkloadView
from gpufleet.schemas.enums import Phase

# Container waiting reasons that mean "still starting", not "broken after running".
_STARTING_REASONS = ("ContainerCreating", "PodInitializing")
_ACTIVE_STATUSES = frozenset({"Running", "Initializing", "Degraded", "Updating"})


@dataclass(frozen=True)
class Memory:
    """What the agent remembers of a workload between derivations."""

    has_run: bool = False
    was_stopped: bool = False


@dataclass
class Facts:
    """Phase evidence for one workload, kind-independent."""

    deleting: bool = False
    statuses: dict[str, str | None] = field(default_factory=dict)
    desired_stopped: bool = False
    live_pods: int = 0
    ready_pods: int = 0
    required_pods: int = 0
    scaled_to_zero: bool = False
    terminating_pods: int = 0
    podgroups: int = 0
    unschedulable: list[str] = field(default_factory=list)
    unbound_pods: int = 0
    waiting: list[str] = field(default_factory=list)
    crash_looping: list[str] = field(default_factory=list)
    terminated: list[str] = field(default_factory=list)
    memory: Memory = field(default_factory=Memory)

    @property
    def ever_ready(self) -> bool:
        """The workload has been Running (now or before)."""
        return self.ready_pods > 0 or self.memory.has_run

    def status_message(self, status: str) -> str | None:
        """The message of the condition that put the object in ``status``."""
        return self.statuses.get(status)


def _is_ready(pod: Mapping[str, Any]) -> bool:
    return (
        any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions(pod))
        and value_at(pod, "status.phase") == "Running"
    )


def _unschedulable_message(pod: Mapping[str, Any]) -> str | None:
    for condition in conditions(pod):
        if (
            condition.get("type") == "PodScheduled"
            and condition.get("status") == "False"
            and condition.get("reason") in ("Unschedulable", "SchedulingGated")
        ):
            return str(condition.get("message") or condition.get("reason"))
    return None


def _container_states(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    statuses = list_at(pod, "status.initContainerStatuses") + list_at(
        pod, "status.containerStatuses"
    )
    return [s for s in statuses if isinstance(s, Mapping)]


def _describe(reason: Any, message: Any) -> str:
    return f"{reason}: {message}" if message else str(reason)


def podgroup_messages(podgroup: Mapping[str, Any]) -> list[str]:
    """Messages of a KAI PodGroup's active ``UnschedulableOnNodePool`` conditions."""
    messages = []
    for condition in list_at(podgroup, "status.schedulingConditions"):
        if not isinstance(condition, Mapping) or str(condition.get("status")) != "True":
            continue
        reasons = [r for r in list_at(condition, "reasons") if isinstance(r, Mapping)]
        text = condition.get("message") or next(
            (r.get("message") for r in reasons if r.get("message")), None
        )
        messages.append(str(text or condition.get("reason") or "Unschedulable"))
    return messages


def gather_facts(view: WorkloadView, memory: Memory) -> Facts:
    """Collect the phase evidence of a workload from its objects."""
    facts = Facts(memory=memory)
    sources = [view.primary] if view.primary is view.root else [view.root, view.primary]
    for obj in sources:
        _note_object(facts, obj)
    _note_templates(facts, view.primary)
    facts.podgroups = len(view.podgroups)
    for podgroup in view.podgroups:
        facts.unschedulable.extend(podgroup_messages(podgroup))
    for pod in view.pods:
        if is_live(pod):
            _note_live_pod(facts, pod)
        else:
            facts.terminated.extend(_termination_reasons(pod))
    return facts


def _note_object(facts: Facts, obj: Mapping[str, Any]) -> None:
    """What the root or primary object says: deleting, suspended, and its kind's statuses."""
    kind = kind_of(obj)
    if kind is None:
        return
    if metadata(obj).get("deletionTimestamp"):
        facts.deleting = True
    if kind.suspend_path and value_at(obj, kind.suspend_path) is True:
        facts.desired_stopped = True
    for status, matchers in kind.statuses.items():
        matched = next((m for m in matchers if evaluate(m, obj)), None)
        if matched is not None:
            facts.statuses.setdefault(status, explain(matched, obj))


def _note_templates(facts: Facts, primary: Mapping[str, Any]) -> None:
    """How many pods the primary object's templates ask for (none: scaled to zero)."""
    kind = kind_of(primary)
    if kind is None:
        return
    templates = templates_of(kind, primary)
    facts.required_pods = sum(t.pods for t in templates)
    facts.scaled_to_zero = bool(templates) and facts.required_pods == 0


def _note_live_pod(facts: Facts, pod: Mapping[str, Any]) -> None:
    """Count a live pod by readiness, binding and termination, and keep why it waits."""
    facts.live_pods += 1
    if metadata(pod).get("deletionTimestamp"):
        facts.terminating_pods += 1
    if _is_ready(pod):
        facts.ready_pods += 1
    unschedulable = _unschedulable_message(pod)
    if unschedulable is not None:
        facts.unschedulable.append(unschedulable)
    if not value_at(pod, "spec.nodeName"):
        facts.unbound_pods += 1
    for state in _container_states(pod):
        _note_waiting(facts, value_at(state, "state.waiting"))


def _note_waiting(facts: Facts, waiting: Any) -> None:
    """A waiting container: crash-looping, stuck (with its message) or merely starting."""
    if not isinstance(waiting, Mapping) or not waiting.get("reason"):
        return
    reason = waiting["reason"]
    if reason == "CrashLoopBackOff":
        facts.crash_looping.append(_describe(reason, waiting.get("message")))
    elif reason not in _STARTING_REASONS:
        facts.waiting.append(_describe(reason, waiting.get("message")))
    else:
        facts.waiting.append(str(reason))


def _termination_reasons(pod: Mapping[str, Any]) -> list[str]:
    reasons = []
    for state in _container_states(pod):
        terminated = value_at(state, "state.terminated")
        if isinstance(terminated, Mapping) and terminated.get("exitCode") not in (0, None):
            reason = terminated.get("reason") or f"ExitCode:{terminated.get('exitCode')}"
            reasons.append(_describe(reason, terminated.get("message")))
    return reasons


def _first(items: list[str]) -> str | None:
    return items[0] if items else None


@dataclass(frozen=True)
class PhaseRule:
    """One row of the decision table."""

    phase: Phase
    when: Callable[[Facts], bool]
    message: Callable[[Facts], str | None] = lambda _facts: None


PHASE_TABLE: tuple[PhaseRule, ...] = (
    PhaseRule(Phase.DELETING, lambda f: f.deleting),
    PhaseRule(
        Phase.COMPLETED,
        lambda f: "Completed" in f.statuses,
        lambda f: f.status_message("Completed"),
    ),
    PhaseRule(
        Phase.FAILED,
        lambda f: "Failed" in f.statuses,
        lambda f: f.status_message("Failed") or _first(f.terminated),
    ),
    PhaseRule(
        Phase.STOPPING,
        lambda f: (f.desired_stopped or "Suspending" in f.statuses) and f.live_pods > 0,
    ),
    PhaseRule(Phase.STOPPED, lambda f: f.desired_stopped or "Suspended" in f.statuses),
    PhaseRule(
        Phase.RESUMING,
        lambda f: (
            "Resuming" in f.statuses
            or (f.memory.was_stopped and f.live_pods < max(f.required_pods, 1))
        ),
    ),
    PhaseRule(Phase.TERMINATING, lambda f: f.terminating_pods > 0),
    PhaseRule(
        Phase.CREATING,
        lambda f: (
            f.live_pods == 0
            and f.podgroups == 0
            and not f.scaled_to_zero
            and not (_ACTIVE_STATUSES & f.statuses.keys())
        ),
    ),
    PhaseRule(
        Phase.PENDING,
        lambda f: bool(f.unschedulable) or f.unbound_pods > 0,
        lambda f: _first(f.unschedulable),
    ),
    PhaseRule(
        Phase.INITIALIZING,
        lambda f: not f.ever_ready and (f.live_pods > f.ready_pods or "Initializing" in f.statuses),
        lambda f: _first(f.waiting) or _first(f.crash_looping),
    ),
    PhaseRule(
        Phase.UPDATING,
        lambda f: "Updating" in f.statuses,
        lambda f: f.status_message("Updating"),
    ),
    PhaseRule(
        Phase.DEGRADED,
        lambda f: "Degraded" in f.statuses or f.live_pods > f.ready_pods,
        lambda f: _first(f.crash_looping) or _first(f.waiting) or f.status_message("Degraded"),
    ),
    PhaseRule(Phase.RUNNING, lambda f: "Running" in f.statuses or f.live_pods > 0),
    PhaseRule(Phase.UNKNOWN, lambda _f: True),
)


@dataclass(frozen=True)
class PhaseResult:
    """The phase of a workload and the message explaining it."""

    phase: Phase
    message: str | None


def decide_phase(facts: Facts) -> PhaseResult:
    """Evaluate the decision table; the first matching row wins."""
    for rule in PHASE_TABLE:
        if rule.when(facts):
            return PhaseResult(rule.phase, rule.message(facts))
    raise AssertionError("the last row always matches")


def k8s_phase(view: WorkloadView) -> str:
    """The raw state of the primary object: its phase field, else its newest True condition."""
    kind = kind_of(view.primary)
    if kind is not None and kind.raw_phase_path:
        raw = value_at(view.primary, kind.raw_phase_path)
        if isinstance(raw, str) and raw:
            return raw
    true_conditions = [c for c in conditions(view.primary) if c.get("status") == "True"]
    if true_conditions:
        newest = max(true_conditions, key=lambda c: str(c.get("lastTransitionTime") or ""))
        return str(newest.get("type"))
    phases = [str(value_at(pod, "status.phase") or "") for pod in view.pods]
    for phase in ("Running", "Pending", "Failed", "Succeeded"):
        if phase in phases:
            return phase
    return "Pending"
