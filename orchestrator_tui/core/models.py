"""Workflow and task specifications: plain frozen data, as read from a workflow file."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """One unit of work in a plan: an agent, an argv command or a python callable.

    Exactly one of `agent`, `command` and `python` is set. `command` is an argv list, never a
    shell line; its items may hold the placeholders `{workspace}`, `{python}`, `{intent}`,
    `{task}` and `{session}`. `python` is an import path `package.module:function` naming an
    async callable. `decompose` holds the ids of the task's subtasks (its decomposition, see
    `core.workflow`), which run only if the task fails after its retries and fallbacks.
    """

    id: str
    agent: str | None = None
    command: tuple[str, ...] | None = None
    python: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()
    priority: int = 0
    timeout: float | None = None
    retries: int = 0
    idempotent: bool = True
    resources: dict[str, float] = field(default_factory=dict)
    phase: str | None = None
    description: str = ""
    decompose: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        """What learning groups this task with: its agent, callable or program name."""
        if self.agent:
            return self.agent
        if self.python:
            return self.python
        program = self.command[0] if self.command else "task"
        return program.rsplit("/", 1)[-1]


@dataclass(frozen=True, slots=True)
class RecoveryConfig:
    """How an intent's failed tasks are recovered (the `recovery:` mapping of a workflow).

    `retries` is the default of tasks that set none; `backoff` the first delay before a retry
    in seconds, doubling up to `backoff_max`; `fallback` whether another agent may take over;
    `escalate` what happens when all that failed: `pause` (the user decides), `none` (the
    task fails), or the name of an agent that runs the task once more.
    """

    retries: int = 0
    backoff: float = 0.5
    backoff_max: float = 30.0
    fallback: bool = True
    escalate: str = "pause"


@dataclass(frozen=True, slots=True)
class IntentSpec:
    """A named piece of work the user can ask for, and the tasks that carry it out."""

    name: str
    tasks: tuple[TaskSpec, ...]
    description: str = ""
    max_concurrent: int | None = None
    examples: tuple[str, ...] = ()
    recovery: RecoveryConfig | None = None
    """None: no `recovery:` mapping, so a failed task fails after its retries (and its
    decomposition, if it has one)."""


@dataclass(frozen=True, slots=True)
class Workflow:
    """A workflow file: its intents by name, and where it came from."""

    intents: dict[str, IntentSpec]
    source: str = "<memory>"
