"""The phase decision table, row by row: each row wins over the rows below it."""

from __future__ import annotations

import pytest

from gpufleet.agent.phase import PHASE_TABLE, Facts, Memory, decide_phase

RUNNING = {"live_pods": 2, "ready_pods": 2, "required_pods": 2, "statuses": {"Running": None}}

# (facts, expected phase, expected message); each case also satisfies every later row's test.
CASES = [
    ({**RUNNING, "deleting": True, "statuses": {"Completed": "done"}}, "Deleting", None),
    ({"statuses": {"Completed": "all done", "Failed": "x"}}, "Completed", "all done"),
    ({"statuses": {"Failed": None}, "terminated": ["OOMKilled"]}, "Failed", "OOMKilled"),
    ({**RUNNING, "desired_stopped": True}, "Stopping", None),
    ({"statuses": {"Suspended": None}, "required_pods": 1}, "Stopped", None),
    ({"desired_stopped": True, "required_pods": 1}, "Stopped", None),
    ({"live_pods": 1, "required_pods": 2, "memory": Memory(was_stopped=True)}, "Resuming", None),
    ({**RUNNING, "terminating_pods": 1}, "Terminating", None),
    ({"required_pods": 3}, "Creating", None),
    ({"live_pods": 1, "unbound_pods": 1, "unschedulable": ["no GPUs"]}, "Pending", "no GPUs"),
    ({"live_pods": 1, "unbound_pods": 1}, "Pending", None),
    ({"live_pods": 1, "waiting": ["ErrImagePull: denied"]}, "Initializing", "ErrImagePull: denied"),
    (
        {"live_pods": 1, "crash_looping": ["CrashLoopBackOff: x"]},
        "Initializing",
        "CrashLoopBackOff: x",
    ),
    ({**RUNNING, "statuses": {"Updating": "rolling", "Running": None}}, "Updating", "rolling"),
    (
        {"live_pods": 2, "ready_pods": 1, "crash_looping": ["CrashLoopBackOff: y"]},
        "Degraded",
        "CrashLoopBackOff: y",
    ),
    ({"live_pods": 1, "memory": Memory(has_run=True)}, "Degraded", None),
    (RUNNING, "Running", None),
    ({"statuses": {"Running": None}, "scaled_to_zero": True}, "Running", None),
    ({"scaled_to_zero": True}, "Unknown", None),
]


@pytest.mark.parametrize(("fields", "phase", "message"), CASES)
def test_decision_table_row(fields: dict, phase: str, message: str | None) -> None:
    result = decide_phase(Facts(**fields))
    assert (result.phase, result.message) == (phase, message)


def test_table_covers_every_phase_of_the_reference_enum_once() -> None:
    phases = [rule.phase for rule in PHASE_TABLE]
    assert len(phases) == len(set(phases))
    assert set(phases) == {
        "Creating", "Initializing", "Resuming", "Pending", "Deleting", "Running", "Updating",
        "Stopped", "Stopping", "Degraded", "Failed", "Completed", "Terminating", "Unknown",
    }  # fmt: skip
    assert PHASE_TABLE[-1].phase == "Unknown"


def test_every_row_is_reachable() -> None:
    reached = {decide_phase(Facts(**fields)).phase for fields, _, _ in CASES}
    assert reached == {rule.phase for rule in PHASE_TABLE}


def test_order_matters_terminal_beats_stopping() -> None:
    facts = Facts(**{**RUNNING, "desired_stopped": True, "statuses": {"Failed": "boom"}})
    assert decide_phase(facts).phase == "Failed"


def test_crash_loop_after_running_is_degraded_not_initializing() -> None:
    facts = Facts(live_pods=1, crash_looping=["CrashLoopBackOff: z"], memory=Memory(has_run=True))
    assert decide_phase(facts).phase == "Degraded"
