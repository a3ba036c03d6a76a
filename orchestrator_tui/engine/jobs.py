"""Turning a task of a plan into a runnable job: which runner, which argv, which environment."""

from __future__ import annotations

import functools
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from orchestrator_tui.core.errors import WorkflowError
from orchestrator_tui.core.models import TaskSpec
from orchestrator_tui.core.plan import Plan
from orchestrator_tui.engine.registry import Registry
from orchestrator_tui.engine.runners.base import Job, Runner
from orchestrator_tui.engine.runners.command import CommandRunner
from orchestrator_tui.engine.runners.python import PythonRunner


@dataclass(frozen=True, slots=True)
class Binding:
    """How one task runs: the runner, and the job template without attempt details."""

    runner: Runner
    argv: tuple[str, ...] = ()
    target: str | None = None
    idempotent: bool = True


@functools.lru_cache(maxsize=256)
def _which(program: str) -> str:
    return shutil.which(program) or program


class JobFactory:
    """Binds each task of a plan to a runner once, then makes a `Job` per attempt."""

    def __init__(self, *, session_id: str, intent: str, workspace: Path, db_path: Path,
                 registry: Registry | None = None) -> None:
        self.session_id = session_id
        self.intent = intent
        self.workspace = workspace
        self.registry = registry or Registry()
        self.commands = CommandRunner()
        self.python = PythonRunner()
        self.base_env = {
            "ORCHESTRATOR_DB": str(db_path),
            "ORCHESTRATOR_SESSION": session_id,
            "ORCHESTRATOR_WORKSPACE": str(workspace),
        }
        self._bindings: dict[str, Binding] = {}

    def bind_all(self, plan: Plan) -> None:
        """Bind every task, so a plan that cannot run fails before anything starts.

        Raises:
            WorkflowError: an unknown agent, or an agent with nothing to run it.
        """
        for task in plan.tasks.values():
            self._bindings[task.id] = self._bind(task, plan.intent.name)

    def _bind(self, task: TaskSpec, intent: str) -> Binding:
        if task.python:
            return Binding(self.python, target=task.python, idempotent=task.idempotent)
        if task.command:
            return Binding(self.commands, argv=self._fill(task.command, task.id),
                           idempotent=task.idempotent)
        name = task.agent or ""
        agent = self.registry.agents.get(name)
        if agent is None:
            known = ", ".join(sorted(self.registry.agents)) or "none"
            raise WorkflowError(f"unknown agent {name!r} (known: {known})", intent=intent,
                                task=task.id)
        if agent.command is None:
            raise WorkflowError(
                f"agent {name!r} ({agent.path}) has no `command:` to run it offline; add one, "
                "or install an agent CLI (claude, codex or gemini)", intent=intent, task=task.id)
        return Binding(self.commands, argv=self._fill(agent.command, task.id),
                       idempotent=task.idempotent and agent.idempotent)

    def _fill(self, argv: tuple[str, ...], task_id: str) -> tuple[str, ...]:
        """Fill the placeholders of an argv template; each item stays one argument."""
        values = {"{workspace}": str(self.workspace), "{python}": sys.executable,
                  "{intent}": self.intent, "{task}": task_id, "{session}": self.session_id}
        filled = []
        for template in argv:
            item = template
            for key, value in values.items():
                if key in item:
                    item = item.replace(key, value)
            filled.append(item)
        if filled and os.sep not in filled[0]:
            # Found once here rather than searched for on every start.
            filled[0] = _which(filled[0])
        return tuple(filled)

    def job(self, task: TaskSpec, attempt: int) -> tuple[Runner, Job]:
        """The runner and job for one attempt of `task`."""
        binding = self._bindings.get(task.id) or self._bind(task, self.intent)
        env = {**self.base_env, "ORCHESTRATOR_TASK": task.id,
               "ORCHESTRATOR_AGENT": task.agent or task.kind,
               "ORCHESTRATOR_ATTEMPT": f"{self.session_id}/{task.id}/{attempt}"}
        job = Job(session_id=self.session_id, task_id=task.id, attempt=attempt,
                  workspace=self.workspace, argv=binding.argv, target=binding.target,
                  args=task.args, env=env, timeout=task.timeout)
        return binding.runner, job

    def idempotent(self, task: TaskSpec) -> bool:
        """Whether the task may run again after a crash without asking the user."""
        binding = self._bindings.get(task.id)
        return binding.idempotent if binding else task.idempotent
