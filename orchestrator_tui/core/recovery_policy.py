"""What to do when a task has failed: the agent-failure part of the error-recovery matrix.

Pure: the engine says where a task's recovery stands (`Situation`), the policy answers with
one step. The steps come in a fixed order, and every step but a retry is taken at most once
per agent or per task, so a task's recovery always ends:

1. `RetrySame`: the task's own agent (or command) again, after a backoff that doubles from
   `backoff` up to `backoff_max`, while its failures are within the task's `retries`.
2. `Fallback`: another agent, one attempt each (fallback agents are not retried). First the
   agents of the own agent's `fallback:` list, in their order; then agents sharing a
   capability with it, best recorded success rate first ((s + 1) / (n + 2), so an agent
   without history counts 0.5), ties by name. Archived agents and agents that already ran
   the task are never chosen.
3. `Decompose`: the task's subtasks (its `decompose:` list) run instead of it.
4. `Escalate` to the agent named by `escalate` (once, with the failure in its prompt), or
   `PauseForUser` (`escalate: pause`), or `GiveUp` (`escalate: none`).

A subtask of a decomposition retries and falls back like any task, but never escalates:
its parent's recovery goes on instead. Without a `recovery:` mapping (`config` None) tasks
only retry and decompose.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from orchestrator_tui.core.models import IntentSpec, RecoveryConfig

WITHOUT_CONFIG = RecoveryConfig(fallback=False, escalate="none")
"""What applies when a workflow has no `recovery:` mapping: retries and decompositions only."""
ESCALATE_WORDS = ("pause", "none")


@dataclass(frozen=True, slots=True)
class AgentProfile:
    """What the policy knows of an agent: what it is good at and how it has done."""

    name: str
    capabilities: tuple[str, ...] = ()
    fallback: tuple[str, ...] = ()
    archived: bool = False
    successes: int = 0
    runs: int = 0
    """Tasks it finished (succeeded or failed) in every recorded session."""

    @property
    def score(self) -> float:
        """The Laplace-smoothed success rate: 0.5 without history."""
        return success_rate(self.successes, self.runs)

    def record(self) -> str:
        """The history in words, such as "success 91% of 23"."""
        if not self.runs:
            return "no history yet"
        return f"success {round(100 * self.successes / self.runs)}% of {self.runs}"


@dataclass(frozen=True, slots=True)
class Situation:
    """Where the recovery of one failed task stands."""

    task_id: str
    agent: str | None
    """The task's own agent (None for command and python tasks)."""
    failures: int
    """Failed attempts with the agent (or command) that failed last."""
    retries: int
    """How often the task's own agent may be retried."""
    switched: bool = False
    """The agent that failed last is a fallback or the escalation, not the task's own."""
    tried: frozenset[str] = frozenset()
    """Agents that have run the task, its own included."""
    subtasks: tuple[str, ...] = ()
    decomposed: bool = False
    escalated: bool = False
    subtask: bool = False
    """The task is itself a subtask of a decomposition."""


@dataclass(frozen=True, slots=True)
class RetrySame:
    """Run the same agent or command again after `delay` seconds."""

    delay: float


@dataclass(frozen=True, slots=True)
class Fallback:
    """Run the task once with another agent; `why` that one (its record, or a list)."""

    agent: str
    why: str


@dataclass(frozen=True, slots=True)
class Decompose:
    """Run the task's subtasks instead of it."""

    subtasks: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Escalate:
    """Run the task once more with `agent`, telling it how the task failed."""

    agent: str


@dataclass(frozen=True, slots=True)
class PauseForUser:
    """Fail the task and pause the session until the user decides."""

    why: str


@dataclass(frozen=True, slots=True)
class GiveUp:
    """Fail the task (its dependents are skipped)."""

    why: str


Step = RetrySame | Fallback | Decompose | Escalate | PauseForUser | GiveUp


def success_rate(successes: int, runs: int) -> float:
    """(successes + 1) / (runs + 2): an agent without history counts 0.5."""
    return (successes + 1) / (runs + 2)


def backoff_delay(failures: int, config: RecoveryConfig) -> float:
    """Seconds before retry number `failures`: `backoff`, doubling, at most `backoff_max`."""
    doubled = config.backoff * float(2 ** max(0, min(failures - 1, 60)))
    return min(config.backoff_max, doubled)


def uses_history(intent: IntentSpec) -> bool:
    """Whether the intent's recovery ranks fallback agents by their recorded success."""
    return intent.recovery is not None and intent.recovery.fallback


def fallback_order(own: str, agents: Mapping[str, AgentProfile],
                   tried: frozenset[str] = frozenset()) -> list[tuple[AgentProfile, str]]:
    """The agents that may take over from `own`, best first, each with why it was chosen."""
    mine = agents.get(own)
    if mine is None:
        return []

    def usable(name: str) -> bool:
        agent = agents.get(name)
        return agent is not None and not agent.archived and name != own and name not in tried

    listed = [name for name in dict.fromkeys(mine.fallback) if usable(name)]
    order = [(agents[name], f"named in {own}'s fallback list; {agents[name].record()}")
             for name in listed]
    skills = set(mine.capabilities)
    alike = [agent for name, agent in agents.items()
             if usable(name) and name not in listed and skills.intersection(agent.capabilities)]
    alike.sort(key=lambda agent: (-agent.score, agent.name))
    order += [(agent, agent.record()) for agent in alike]
    return order


def next_step(situation: Situation, config: RecoveryConfig | None,
              agents: Mapping[str, AgentProfile]) -> Step:
    """The next step of a failed task's recovery (see the module docstring for the order)."""
    configured = config is not None
    config = config or WITHOUT_CONFIG
    if not situation.switched and situation.failures <= situation.retries:
        return RetrySame(backoff_delay(situation.failures, config))
    if situation.agent is not None and config.fallback and not situation.decomposed \
            and not situation.escalated:
        tried = situation.tried | {situation.agent}
        choices = fallback_order(situation.agent, agents, tried)
        if choices:
            agent, why = choices[0]
            return Fallback(agent.name, why)
    if situation.subtasks and not situation.decomposed:
        return Decompose(situation.subtasks)
    if situation.subtask:
        return GiveUp("its parent's recovery goes on")
    if situation.escalated:
        return GiveUp("it failed after its escalation too")
    if config.escalate == "none":
        return GiveUp("escalate: none" if configured else "the workflow sets no `recovery:`")
    if config.escalate == "pause":
        return PauseForUser(f"{situation.task_id} failed after retries and fallbacks; decide: "
                            "/resume to skip it, /abort")
    target = agents.get(config.escalate)
    if target is None:
        return GiveUp(f"cannot escalate to {config.escalate!r}: no such agent")
    if target.archived:
        return GiveUp(f"cannot escalate to {config.escalate!r}: it is archived")
    return Escalate(target.name)
