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
    async callable.
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
class IntentSpec:
    """A named piece of work the user can ask for, and the tasks that carry it out."""

    name: str
    tasks: tuple[TaskSpec, ...]
    description: str = ""
    max_concurrent: int | None = None
    examples: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Workflow:
    """A workflow file: its intents by name, and where it came from."""

    intents: dict[str, IntentSpec]
    source: str = "<memory>"
