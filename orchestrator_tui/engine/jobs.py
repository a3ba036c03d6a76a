"""Turning a task of a plan into a runnable job: which runner, which argv, which environment."""

from __future__ import annotations

import dataclasses
import functools
import os
import shutil
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from orchestrator_tui.core.errors import WorkflowError
from orchestrator_tui.core.models import TaskSpec
from orchestrator_tui.core.plan import Plan
from orchestrator_tui.core.timeouts import Timeout, choose_timeout
from orchestrator_tui.engine import backends
from orchestrator_tui.engine.isolation import IsolationError, Worktrees
from orchestrator_tui.engine.registry import AgentSpec, Registry
from orchestrator_tui.engine.runners import agent_events
from orchestrator_tui.engine.runners.base import Job, Runner
from orchestrator_tui.engine.runners.command import CommandRunner
from orchestrator_tui.engine.runners.isolated import IsolatedRunner
from orchestrator_tui.engine.runners.python import PythonRunner
from orchestrator_tui.engine.runners.ray_runner import RayRunner
from orchestrator_tui.engine.runners.stream import AgentCall, StreamRunner
from orchestrator_tui.engine.settings import effective

PREVIOUS_ERROR_LIMIT = 4000
"""Characters of the previous attempt's error passed on in the environment."""
AgentListener = Callable[[str, int, str, agent_events.AgentEvent], None]
"""Called with (task id, attempt, runner name, event) for each event of an agent CLI."""


@dataclass(frozen=True, slots=True)
class Binding:
    """How one task runs: the runner, and the job template without attempt details."""

    runner: Runner
    argv: tuple[str, ...] = ()
    target: str | None = None
    idempotent: bool = True
    agent: AgentSpec | None = None
    """Set when an agent CLI runs the task: its argv is built per attempt."""
    cli: str | None = None
    """The agent CLI (`claude`, `codex`, `gemini`) and its program's path."""
    program: str | None = None


@functools.lru_cache(maxsize=256)
def _which(program: str) -> str:
    return shutil.which(program) or program


class JobFactory:
    """Binds each task of a plan to a runner once, then makes a `Job` per attempt."""

    def __init__(self, *, session_id: str, intent: str, workspace: Path, db_path: Path,
                 registry: Registry | None = None,
                 settings: Mapping[str, str] | None = None,
                 ray: RayRunner | None = None) -> None:
        self.session_id = session_id
        self.ray = ray
        """Set under the Ray executor: every task then runs as a Ray task."""
        self.intent = intent
        self.intent_description = ""
        self.workspace = workspace
        self.registry = registry or Registry()
        self.settings = dict(settings or {})
        self.niceness = int(effective(self.settings, "agent_niceness") or 0)
        """How many steps below the engine's CPU priority its agents run."""
        self.commands = CommandRunner(niceness=self.niceness)
        self.python = PythonRunner()
        self.streams: dict[str, StreamRunner] = {}
        self.listener: AgentListener | None = None
        """Where agent CLI events go (the execution sets it)."""
        self.agent_sessions: dict[str, str] = {}
        """The last agent CLI session of each task, continued by its next attempt."""
        self.last_errors: dict[str, str] = {}
        """How the last failed attempt of each task ended, told to its next attempt."""
        self._found: dict[str, str | None] = {}
        self.base_env = {
            "ORCHESTRATOR_DB": str(db_path),
            "ORCHESTRATOR_SESSION": session_id,
            "ORCHESTRATOR_WORKSPACE": str(workspace),
        }
        self._bindings: dict[str, Binding] = {}
        self._tasks: dict[str, TaskSpec] = {}
        self._rebound: dict[str, TaskSpec] = {}
        """Tasks run by another agent than their own (`rebind`), as that agent's tasks."""
        self.worktrees: Worktrees | None = None
        """The worktrees of isolated agents' tasks, once one is bound."""
        self.learned_timeout: Callable[[TaskSpec], Timeout | None] | None = None
        """The timeout history gives a task whose workflow sets none (the engine sets it
        when there is history, unless the `learned_timeouts` setting is off)."""

    def bind_all(self, plan: Plan) -> None:
        """Bind every task, so a plan that cannot run fails before anything starts.

        Raises:
            WorkflowError: an unknown agent, or an agent with nothing to run it.
        """
        self.intent_description = plan.intent.description
        self._tasks = plan.tasks
        for task in plan.tasks.values():
            self._bindings[task.id] = self._bind(task, plan.intent.name)

    def rebind(self, task_id: str, agent_name: str) -> None:
        """Run the next attempts of a bound task with another agent (a fallback, or the
        escalation); it starts a fresh agent CLI session, told how the task failed.

        Raises:
            WorkflowError: no such task, or an agent that is unknown, archived or has
                nothing to run it.
        """
        task = self._tasks.get(task_id)
        if task is None:
            raise WorkflowError(f"cannot run task {task_id!r} with agent {agent_name!r}: "
                                "not a task of this plan", intent=self.intent)
        spec = dataclasses.replace(task, agent=agent_name, command=None, python=None)
        self._bindings[task_id] = self._bind(spec, self.intent)
        self._rebound[task_id] = spec
        self.agent_sessions.pop(task_id, None)

    def _bind(self, task: TaskSpec, intent: str) -> Binding:
        """The task's binding; under the Ray executor its runner runs as a Ray task placed
        by the task's resources (inside the worktree wrapper of an isolated agent)."""
        binding = self._bind_local(task, intent)
        if self.ray is None:
            return binding
        runner = binding.runner
        if isinstance(runner, IsolatedRunner):
            runner = IsolatedRunner(self.ray.placed(runner.inner, task.resources),
                                    runner.worktrees)
        else:
            runner = self.ray.placed(runner, task.resources)
        return dataclasses.replace(binding, runner=runner)

    def _bind_local(self, task: TaskSpec, intent: str) -> Binding:
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
        if agent.archived:
            raise WorkflowError(
                f"agent {name!r} ({agent.path}) is archived; activate it with "
                f"`orchestrator agent activate {name}`", intent=intent, task=task.id)
        return self._bind_agent(task, agent, intent)

    def _bind_agent(self, task: TaskSpec, agent: AgentSpec, intent: str) -> Binding:
        """Bind an agent's task to the runner `backends.choose` picks for it, in its own
        worktree when the agent asks for `isolation: worktree`."""
        if agent.isolation != "worktree":
            return self._bind_runner(task, agent, intent, self.workspace)
        if self.worktrees is None:
            self.worktrees = Worktrees(self.workspace, self.session_id)
        try:
            folder = self.worktrees.path(task.id)
        except IsolationError as error:
            raise WorkflowError(f"agent {agent.name!r} ({agent.path}): {error}",
                                intent=intent, task=task.id) from error
        binding = self._bind_runner(task, agent, intent, folder)
        return dataclasses.replace(binding, runner=IsolatedRunner(binding.runner,
                                                                  self.worktrees))

    def _bind_runner(self, task: TaskSpec, agent: AgentSpec, intent: str,
                     workspace: Path) -> Binding:
        choice = backends.choose(agent, self.settings, self._which)
        idempotent = task.idempotent and agent.idempotent
        if choice.runner is None:
            raise WorkflowError(f"agent {agent.name!r} ({agent.path}) {choice.how}",
                                intent=intent, task=task.id)
        if choice.runner == "python":
            return Binding(self.python, target=backends.python_target(agent),
                           idempotent=idempotent)
        if choice.runner == "command":
            assert agent.command is not None
            return Binding(self.commands, argv=self._fill(agent.command, task.id, workspace),
                           idempotent=idempotent)
        if len(agent.body.encode()) > backends.PROMPT_LIMIT:
            raise WorkflowError(f"agent {agent.name!r} ({agent.path}): its instructions are "
                                f"longer than {backends.PROMPT_LIMIT:,} bytes, too long for "
                                "one command-line argument", intent=intent, task=task.id)
        runner = self.streams.get(choice.runner)
        if runner is None:
            runner = self.streams[choice.runner] = StreamRunner(
                backends.STREAMS[choice.runner], niceness=self.niceness)
        return Binding(runner, idempotent=idempotent, agent=agent, cli=choice.runner,
                       program=choice.program)

    def _which(self, program: str) -> str | None:
        if program not in self._found:
            self._found[program] = shutil.which(program)
        return self._found[program]

    def _agent_call(self, task: TaskSpec, attempt: int,
                    binding: Binding) -> tuple[tuple[str, ...], Callable[..., None], int]:
        """The argv of one attempt of an agent CLI (a retry continues the CLI's session),
        the listener of its events, and the size of its prompt in bytes."""
        assert binding.agent is not None and binding.cli is not None \
            and binding.program is not None
        resume = self.agent_sessions.get(task.id) if attempt > 1 else None
        prompt = backends.task_prompt(binding.agent, task, self.intent,
                                      self.intent_description, attempt=attempt,
                                      previous=self.last_errors.get(task.id, ""))
        call = AgentCall(program=binding.program, agent=binding.agent, prompt=prompt,
                         settings=self.settings, resume=resume)
        listener = functools.partial(self._agent_event, task.id, attempt, binding.cli)
        return backends.STREAMS[binding.cli].argv(call), listener, len(prompt.encode())

    def _agent_event(self, task_id: str, attempt: int, runner: str,
                     event: agent_events.AgentEvent) -> None:
        """Remember what a later attempt needs, then pass the event on."""
        session = getattr(event, "session_id", None)
        if session:
            self.agent_sessions[task_id] = session
        if self.listener is not None:
            self.listener(task_id, attempt, runner, event)

    def _fill(self, argv: tuple[str, ...], task_id: str,
              workspace: Path | None = None) -> tuple[str, ...]:
        """Fill the placeholders of an argv template; each item stays one argument."""
        values = {"{workspace}": str(workspace or self.workspace), "{python}": sys.executable,
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

    def timeout(self, task: TaskSpec) -> Timeout | None:
        """The limit the task's next attempt runs under: its own `timeout:`, else the one
        learned for its kind (that of the agent running it now), else none."""
        task = self._rebound.get(task.id, task)
        learned = self.learned_timeout
        return choose_timeout(task.timeout, None if task.timeout is not None or learned is None
                              else learned(task))

    def job(self, task: TaskSpec, attempt: int) -> tuple[Runner, Job]:
        """The runner and job for one attempt of `task` (a later attempt is told how the
        previous one failed, in `ORCHESTRATOR_PREVIOUS_ERROR`)."""
        task = self._rebound.get(task.id, task)
        binding = self._bindings.get(task.id) or self._bind(task, self.intent)
        env = {**self.base_env, "ORCHESTRATOR_TASK": task.id,
               "ORCHESTRATOR_AGENT": task.agent or task.kind,
               "ORCHESTRATOR_ATTEMPT": f"{self.session_id}/{task.id}/{attempt}"}
        previous = self.last_errors.get(task.id) if attempt > 1 else None
        if previous:
            env["ORCHESTRATOR_PREVIOUS_ERROR"] = previous[:PREVIOUS_ERROR_LIMIT].replace("\0", "")
        argv, on_event, given = binding.argv, None, None
        if binding.agent is not None:
            argv, on_event, given = self._agent_call(task, attempt, binding)
        limit = self.timeout(task)
        job = Job(session_id=self.session_id, task_id=task.id, attempt=attempt,
                  workspace=self.workspace, argv=argv, target=binding.target, args=task.args,
                  env=env, timeout=limit.seconds if limit else None, input_bytes=given,
                  on_event=on_event)
        return binding.runner, job

    def idempotent(self, task: TaskSpec) -> bool:
        """Whether the task may run again after a crash without asking the user."""
        binding = self._bindings.get(task.id)
        return binding.idempotent if binding else task.idempotent
