"""What has been tried to recover each failed task of a session, and the words for it.

The execution asks `next_step` when a task has failed; the step comes from the pure
`core.recovery_policy`, and what it implies (an agent tried, a decomposition started, the
escalation used) is remembered here, so that no step repeats and every recovery ends.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from orchestrator_tui.core.plan import Plan
from orchestrator_tui.core.recovery_policy import (
    AgentProfile,
    Decompose,
    Escalate,
    Fallback,
    GiveUp,
    PauseForUser,
    RetrySame,
    Situation,
    Step,
    next_step,
)
from orchestrator_tui.engine.registry import Registry

ERROR_SHOWN = 120
"""Characters of a failure's first line quoted in a recovery note."""


@dataclass
class Progress:
    """The recovery of one task so far."""

    tried: set[str] = field(default_factory=set)
    fallbacks: list[str] = field(default_factory=list)
    agent: str | None = None
    """The agent running the task now, when it is not the task's own."""
    first_attempt: int = 1
    """The first attempt of the agent running the task now."""
    decomposition: str = ""
    """"" (not started), "running", "failed" or "recovered"."""
    escalated: bool = False


class FailureRecovery:
    """The recovery bookkeeping of one session's plan."""

    def __init__(self, plan: Plan, registry: Registry,
                 success_rates: Mapping[str, tuple[int, int]] | None = None) -> None:
        self.plan = plan
        self.config = plan.intent.recovery
        self.parent_of = {sub: task.id for task in plan.tasks.values()
                          for sub in task.decompose}
        """The parent of each subtask of a decomposition."""
        self._registry = registry
        self._rates = dict(success_rates or {})
        self._profiles: dict[str, AgentProfile] | None = None
        self._progress: dict[str, Progress] = {}

    def progress(self, tid: str) -> Progress:
        """What was tried for `tid` so far."""
        found = self._progress.get(tid)
        if found is None:
            own = self.plan.tasks[tid].agent
            found = self._progress[tid] = Progress(tried={own} if own else set())
        return found

    def next_step(self, tid: str, attempt: int) -> Step:
        """The next step for `tid`, whose attempt number `attempt` failed; remembered."""
        task = self.plan.tasks[tid]
        progress = self.progress(tid)
        switched = progress.agent is not None
        situation = Situation(
            task_id=tid, agent=task.agent,
            failures=attempt - progress.first_attempt + 1 if switched else attempt,
            retries=task.retries, switched=switched, tried=frozenset(progress.tried),
            subtasks=task.decompose, decomposed=bool(progress.decomposition),
            escalated=progress.escalated, subtask=tid in self.parent_of)
        step = next_step(situation, self.config, self.profiles())
        if isinstance(step, Fallback | Escalate):
            progress.tried.add(step.agent)
            progress.agent, progress.first_attempt = step.agent, attempt + 1
            if isinstance(step, Fallback):
                progress.fallbacks.append(step.agent)
            else:
                progress.escalated = True
        elif isinstance(step, Decompose):
            progress.decomposition = "running"
        return step

    def unusable(self, tid: str, agent: str) -> None:
        """A fallback agent could not be bound: it stays tried, but never ran."""
        progress = self.progress(tid)
        if agent in progress.fallbacks:
            progress.fallbacks.remove(agent)

    def profiles(self) -> dict[str, AgentProfile]:
        """Every known agent with its recorded successes (built on first use)."""
        if self._profiles is None:
            self._profiles = {
                name: AgentProfile(name, spec.capabilities, spec.fallback, spec.archived,
                                   *self._rates.get(name, (0, 0)))
                for name, spec in self._registry.agents.items()}
        return self._profiles

    def describe(self, tid: str, step: Step, error: str, attempt: int) -> str:
        """The journal note of a step: what failed, what was tried, what happens now."""
        task = self.plan.tasks[tid]
        head = f"recovery: {tid} failed ({brief(error)})"
        if isinstance(step, RetrySame):
            return f"{head}; retry {attempt} of {task.retries} in {step.delay:g} s"
        head += self._history(tid, step)
        if isinstance(step, Fallback):
            return f"{head}; falling back to {step.agent} ({step.why})"
        if isinstance(step, Decompose):
            return f"{head}; decomposing it into {', '.join(step.subtasks)}"
        if isinstance(step, Escalate):
            return f"{head}; escalating to {step.agent}, with the failure in its prompt"
        if isinstance(step, PauseForUser):
            return f"{head}; pausing the session: {step.why}"
        assert isinstance(step, GiveUp)
        return f"{head}; giving up: {step.why}"

    def _history(self, tid: str, step: Step) -> str:
        task = self.plan.tasks[tid]
        progress = self.progress(tid)
        parts = []
        if task.retries:
            parts.append(f"{task.retries} retr{'y' if task.retries == 1 else 'ies'}")
        fallbacks = [name for name in progress.fallbacks
                     if not (isinstance(step, Fallback) and name == step.agent)]
        if fallbacks:
            parts.append(f"fallback to {', '.join(fallbacks)}")
        if progress.escalated and not isinstance(step, Escalate):
            parts.append("its escalation")
        return f" after {' and '.join(parts)}" if parts else ""

    def switched_to(self, tid: str) -> str | None:
        """The agent that took the task over (a fallback or the escalation), if any."""
        progress = self._progress.get(tid)
        return progress.agent if progress is not None else None


def brief(error: str) -> str:
    """The first line of an error, shortened for a note."""
    lines = error.strip().splitlines()
    line = lines[0].strip() if lines else "no error text"
    return line if len(line) <= ERROR_SHOWN else line[:ERROR_SHOWN - 1] + "…"
