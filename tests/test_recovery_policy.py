"""The recovery policy on its own: every branch of the matrix, the fallback order, and (by
property) that a recovery always ends without choosing an archived or already tried agent."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator_tui.core.models import IntentSpec, RecoveryConfig, TaskSpec
from orchestrator_tui.core.recovery_policy import (
    AgentProfile,
    Decompose,
    Escalate,
    Fallback,
    GiveUp,
    PauseForUser,
    RetrySame,
    Situation,
    backoff_delay,
    fallback_order,
    next_step,
    success_rate,
    uses_history,
)

CONFIG = RecoveryConfig(backoff=0.5, backoff_max=3.0)
AGENTS = {
    "lint": AgentProfile("lint", ("code-review",), fallback=("buddy",)),
    "buddy": AgentProfile("buddy", ("docs",), successes=0, runs=10),
    "strong": AgentProfile("strong", ("code-review",), successes=21, runs=23),
    "weak": AgentProfile("weak", ("code-review",), successes=1, runs=9),
    "fresh": AgentProfile("fresh", ("code-review", "testing")),
    "also-fresh": AgentProfile("also-fresh", ("code-review",)),
    "shelved": AgentProfile("shelved", ("code-review",), archived=True, successes=50, runs=50),
    "other": AgentProfile("other", ("security",), successes=9, runs=9),
    "architect": AgentProfile("architect", ("architecture",)),
}


def failed(**fields: object) -> Situation:
    """The lint task after its retries are spent, nothing else tried."""
    base = Situation(task_id="lint", agent="lint", failures=3, retries=2,
                     tried=frozenset({"lint"}))
    return replace(base, **fields)  # type: ignore[arg-type]


def test_success_rate_is_laplace_smoothed() -> None:
    assert success_rate(0, 0) == 0.5
    assert success_rate(21, 23) == 22 / 25
    assert success_rate(0, 8) == 0.1


def test_retries_back_off_exponentially_up_to_the_maximum() -> None:
    assert [backoff_delay(n, CONFIG) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert backoff_delay(10_000, CONFIG) == 3.0
    assert next_step(failed(failures=1), CONFIG, AGENTS) == RetrySame(0.5)
    assert next_step(failed(failures=2), CONFIG, AGENTS) == RetrySame(1.0)


def test_without_a_recovery_mapping_only_retries_and_decompositions_happen() -> None:
    assert next_step(failed(failures=1), None, AGENTS) == RetrySame(0.5)
    assert next_step(failed(), None, AGENTS) == GiveUp("the workflow sets no `recovery:`")
    step = next_step(failed(subtasks=("lint.sub.a",)), None, AGENTS)
    assert step == Decompose(("lint.sub.a",))


def test_the_own_fallback_list_comes_first_then_the_best_success_rate() -> None:
    order = fallback_order("lint", AGENTS)
    names = [agent.name for agent, _ in order]
    # buddy shares no capability but is listed; shelved is archived; other shares nothing.
    assert names == ["buddy", "strong", "also-fresh", "fresh", "weak"]
    assert order[0][1] == "named in lint's fallback list; success 0% of 10"
    assert order[1][1] == "success 91% of 23"
    assert order[2][1] == "no history yet"


def test_fallback_picks_the_next_untried_agent() -> None:
    assert next_step(failed(), CONFIG, AGENTS) == Fallback(
        "buddy", "named in lint's fallback list; success 0% of 10")
    step = next_step(failed(switched=True, failures=1, tried=frozenset({"lint", "buddy"})),
                     CONFIG, AGENTS)
    assert step == Fallback("strong", "success 91% of 23")


def test_a_fallback_agent_is_not_retried() -> None:
    step = next_step(failed(switched=True, failures=1, retries=5,
                            tried=frozenset({"lint", "buddy"})), CONFIG, AGENTS)
    assert isinstance(step, Fallback)


def test_fallback_lists_naming_unknown_agents_are_ignored() -> None:
    agents = {**AGENTS, "lint": AgentProfile("lint", ("code-review",),
                                             fallback=("ghost", "lint", "weak"))}
    assert [a.name for a, _ in fallback_order("lint", agents)][:2] == ["weak", "strong"]


def test_no_fallback_when_disabled_or_for_command_tasks() -> None:
    off = replace(CONFIG, fallback=False, escalate="none")
    assert next_step(failed(), off, AGENTS) == GiveUp("escalate: none")
    assert next_step(failed(agent=None, tried=frozenset()), replace(CONFIG, escalate="none"),
                     AGENTS) == GiveUp("escalate: none")


def test_decomposition_comes_after_every_fallback() -> None:
    everyone = frozenset(AGENTS)
    situation = failed(switched=True, failures=1, tried=everyone, subtasks=("lint.sub.a",))
    assert next_step(situation, CONFIG, AGENTS) == Decompose(("lint.sub.a",))


def test_escalation_pause_agent_or_none_once_all_else_failed() -> None:
    done = failed(switched=True, failures=1, tried=frozenset(AGENTS), subtasks=("a",),
                  decomposed=True)
    assert next_step(done, CONFIG, AGENTS) == PauseForUser(
        "lint failed after retries and fallbacks; decide: /resume to skip it, /abort")
    assert next_step(done, replace(CONFIG, escalate="architect"), AGENTS) == \
        Escalate("architect")
    assert next_step(done, replace(CONFIG, escalate="none"), AGENTS) == \
        GiveUp("escalate: none")
    again = replace(done, escalated=True)
    assert next_step(again, replace(CONFIG, escalate="architect"), AGENTS) == \
        GiveUp("it failed after its escalation too")


def test_escalation_to_an_unusable_agent_gives_up_saying_why() -> None:
    done = failed(switched=True, tried=frozenset(AGENTS))
    assert next_step(done, replace(CONFIG, escalate="shelved"), AGENTS) == \
        GiveUp("cannot escalate to 'shelved': it is archived")
    assert next_step(done, replace(CONFIG, escalate="nobody"), AGENTS) == \
        GiveUp("cannot escalate to 'nobody': no such agent")


def test_a_subtask_leaves_the_escalation_to_its_parent() -> None:
    step = next_step(failed(switched=True, tried=frozenset(AGENTS), subtask=True), CONFIG,
                     AGENTS)
    assert step == GiveUp("its parent's recovery goes on")


def test_history_is_read_only_when_fallbacks_are_ranked() -> None:
    intent = IntentSpec("x", (TaskSpec(id="a", command=("ls",)),))
    assert not uses_history(intent)
    assert uses_history(replace(intent, recovery=CONFIG))
    assert not uses_history(replace(intent, recovery=replace(CONFIG, fallback=False)))


NAMES = [f"agent-{i}" for i in range(7)]
profiles = st.builds(
    AgentProfile, name=st.sampled_from(NAMES),
    capabilities=st.lists(st.sampled_from(["a", "b", "c"]), max_size=2).map(tuple),
    fallback=st.lists(st.sampled_from([*NAMES, "ghost"]), max_size=4).map(tuple),
    archived=st.booleans(), successes=st.integers(0, 5), runs=st.integers(5, 10))


@settings(max_examples=300, deadline=None)
@given(agents=st.lists(profiles, max_size=7, unique_by=lambda a: a.name),
       own=st.sampled_from(NAMES), retries=st.integers(0, 3), subtasks=st.booleans(),
       subtask=st.booleans(),
       escalate=st.sampled_from(["pause", "none", *NAMES, "ghost"]),
       fallback=st.booleans(), configured=st.booleans())
def test_recovery_always_ends_and_never_reuses_an_agent(
        agents: list[AgentProfile], own: str, retries: int, subtasks: bool, subtask: bool,
        escalate: str, fallback: bool, configured: bool) -> None:
    """Every attempt fails: the steps still end, in a bounded number, and never choose an
    archived agent or one that already ran the task."""
    known = {agent.name: agent for agent in agents}
    config = RecoveryConfig(fallback=fallback, escalate=escalate) if configured else None
    situation = Situation(task_id="t", agent=own, failures=1, retries=retries,
                          tried=frozenset({own}),
                          subtasks=("t.sub.x",) if subtasks and not subtask else (),
                          subtask=subtask)
    bound = retries + len(NAMES) + 3
    for _ in range(bound):
        step = next_step(situation, config, known)
        if isinstance(step, GiveUp | PauseForUser):
            return
        if isinstance(step, RetrySame):
            assert not situation.switched and situation.failures <= retries
            situation = replace(situation, failures=situation.failures + 1)
        elif isinstance(step, Fallback):
            assert step.agent not in situation.tried and step.agent != own
            assert not known[step.agent].archived
            situation = replace(situation, switched=True, failures=1,
                                tried=situation.tried | {step.agent})
        elif isinstance(step, Decompose):
            assert not situation.decomposed and not subtask
            situation = replace(situation, decomposed=True)
        else:
            assert isinstance(step, Escalate) and not situation.escalated
            assert not known[step.agent].archived and not subtask
            situation = replace(situation, escalated=True, switched=True, failures=1,
                                tried=situation.tried | {step.agent})
    raise AssertionError(f"no end after {bound} steps")
