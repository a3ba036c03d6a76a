"""Properties of the session and task state machines under random transition requests."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator_tui.core.errors import IllegalTransition, OrchestratorError
from orchestrator_tui.core.states import (
    ACTIVE_SESSION_STATES,
    DONE_TASK_STATES,
    FINAL_SESSION_STATES,
    FINAL_TASK_STATES,
    SESSION_TRANSITIONS,
    TASK_TRANSITIONS,
    SessionState,
    TaskState,
    check_session,
    check_task,
)

StateT = TypeVar("StateT", bound=StrEnum)


@dataclass
class Holder(Generic[StateT]):
    """A tiny stand-in for a stored row: the current state and every state it has had."""

    name: str
    state: StateT
    check: Callable[[str, StateT, StateT], None]
    history: list[StateT] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.history.append(self.state)

    def request(self, target: StateT) -> None:
        """Move to `target` if the state machine allows it; otherwise change nothing."""
        self.check(self.name, self.state, target)
        self.state = target
        self.history.append(target)


@dataclass(frozen=True)
class Machine:
    """One state machine under test: its table, initial and final states, and its check."""

    table: Mapping[Any, frozenset[Any]]
    initial: StrEnum
    final: frozenset[Any]
    check: Callable[[str, Any, Any], None]


MACHINES = {
    "session": Machine(SESSION_TRANSITIONS, SessionState.IDLE, FINAL_SESSION_STATES,
                       check_session),
    "task": Machine(TASK_TRANSITIONS, TaskState.PENDING, FINAL_TASK_STATES, check_task),
}


def reachable(table: Mapping[Any, frozenset[Any]], start: StrEnum) -> set[StrEnum]:
    """Every state some sequence of legal transitions leads to from `start`."""
    seen, frontier = {start}, [start]
    while frontier:
        for target in table[frontier.pop()]:
            if target not in seen:
                seen.add(target)
                frontier.append(target)
    return seen


def assert_names_states(error: IllegalTransition, current: StrEnum, target: StrEnum,
                        allowed: frozenset[StrEnum]) -> None:
    """The message says which change was refused and what would have been allowed."""
    message = str(error)
    assert isinstance(error, OrchestratorError)
    assert f"{current.value} -> {target.value}" in message
    assert (error.current, error.target) == (current, target)
    tail = message.split("allowed states are", 1)[1]
    if allowed:
        named = {part.strip() for part in tail.split(",")}
        assert named == {state.value for state in allowed}
    else:
        assert "final" in tail


@settings(max_examples=300)
@given(st.sampled_from(sorted(MACHINES)), st.data())
def test_random_requests_only_ever_apply_legal_changes(machine: str, data: st.DataObject) -> None:
    spec = MACHINES[machine]
    table, initial, final = spec.table, spec.initial, spec.final
    states = list(type(initial))
    holder: Holder[StrEnum] = Holder(f"{machine}-1", initial, spec.check)
    applied = [initial]
    for _ in range(data.draw(st.integers(0, 40), label="steps")):
        allowed = table[holder.state]
        # half the time ask for a legal move so runs get deep; otherwise anything at all
        if allowed and data.draw(st.booleans(), label="legal"):
            target = data.draw(st.sampled_from(sorted(allowed)), label="target")
        else:
            target = data.draw(st.sampled_from(states), label="target")
        before, history = holder.state, list(holder.history)
        if target in allowed:
            holder.request(target)
            applied.append(target)
            assert holder.state == target
        else:
            with pytest.raises(IllegalTransition) as caught:
                holder.request(target)
            assert_names_states(caught.value, before, target, allowed)
            assert holder.state == before
            assert holder.history == history
        assert holder.history == applied
        if holder.state in final:
            assert not table[holder.state]
    for current, nxt in zip(holder.history, holder.history[1:], strict=False):
        assert nxt in table[current]
    assert set(holder.history) <= reachable(table, initial)


@pytest.mark.parametrize("machine", sorted(MACHINES))
def test_tables_are_closed_and_every_state_is_reachable(machine: str) -> None:
    table, initial = MACHINES[machine].table, MACHINES[machine].initial
    states = set(type(initial))
    assert set(table) == states
    for targets in table.values():
        assert targets <= states
    assert reachable(table, initial) == states


@pytest.mark.parametrize("machine", sorted(MACHINES))
def test_final_states_have_no_exits_and_are_reached_from_everywhere(machine: str) -> None:
    spec = MACHINES[machine]
    table, initial, final, check = spec.table, spec.initial, spec.final, spec.check
    assert final == {state for state, targets in table.items() if not targets}
    assert final
    for state in final:
        for target in type(initial):
            with pytest.raises(IllegalTransition) as caught:
                check("x", state, target)
            assert_names_states(caught.value, state, target, frozenset())
    for state in table:
        assert reachable(table, state) & final, f"{state} can never finish"


def test_state_groups_are_consistent() -> None:
    assert FINAL_TASK_STATES <= DONE_TASK_STATES
    assert not ACTIVE_SESSION_STATES & FINAL_SESSION_STATES
    assert SessionState.IDLE not in ACTIVE_SESSION_STATES
    assert ACTIVE_SESSION_STATES | FINAL_SESSION_STATES | {SessionState.IDLE} == set(SessionState)


def test_the_message_of_a_refused_change() -> None:
    with pytest.raises(IllegalTransition) as caught:
        check_task("build", TaskState.SUCCEEDED, TaskState.RUNNING)
    assert str(caught.value) == (
        "illegal transition of task build: succeeded -> running; from succeeded the allowed "
        "states are none (it is final)"
    )
    with pytest.raises(IllegalTransition) as caught:
        check_session("s1", SessionState.IDLE, SessionState.EXECUTING)
    assert str(caught.value) == (
        "illegal transition of session s1: IDLE -> EXECUTING; from IDLE the allowed "
        "states are ABORTED, PLANNING"
    )
