"""Work stealing between agents that share a capability. Pure and deterministic.

Ready tasks bound to an agent wait in that agent's queue while the agent has no free slot
(its `max_concurrent`). An agent with a free slot and an empty queue takes the best task
(highest bottom level, then workflow position) from the longest queue of an agent it can
stand in for: one sharing a capability, never an archived one, and only when both run
their tasks with the same kind of runner.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AgentSlots:
    """An agent as stealing sees it: capabilities, runner kind and free slots."""

    name: str
    capabilities: frozenset[str]
    runner: str
    free: int
    archived: bool = False


@dataclass(frozen=True, slots=True)
class Queued:
    """A ready task waiting in an agent's queue."""

    task_id: str
    bottom_level: float
    position: int


@dataclass(frozen=True, slots=True)
class Steal:
    """`thief` runs `task_id`, taken from `victim`'s queue."""

    task_id: str
    victim: str
    thief: str


def can_stand_in(thief: AgentSlots, victim: AgentSlots) -> bool:
    """Whether `thief` may run tasks queued for `victim`."""
    return (thief.name != victim.name and not thief.archived
            and thief.runner == victim.runner
            and bool(thief.capabilities & victim.capabilities))


def plan_steals(queues: Mapping[str, Sequence[Queued]],
                agents: Mapping[str, AgentSlots]) -> list[Steal]:
    """The steals to make now: each idle agent (free slots, empty queue), in name order,
    takes the best task of the longest queue it may take from, one per free slot."""
    left = {name: sorted(tasks, key=lambda q: (-q.bottom_level, q.position))
            for name, tasks in queues.items() if tasks}
    steals: list[Steal] = []
    for thief in sorted(agents.values(), key=lambda a: a.name):
        if thief.archived or thief.free < 1 or queues.get(thief.name):
            continue
        free = thief.free
        while free > 0:
            victims = [name for name, tasks in left.items() if tasks and name in agents
                       and can_stand_in(thief, agents[name])]
            if not victims:
                break
            victim = min(victims, key=lambda name: (-len(left[name]), name))
            steals.append(Steal(left[victim].pop(0).task_id, victim, thief.name))
            free -= 1
    return steals
