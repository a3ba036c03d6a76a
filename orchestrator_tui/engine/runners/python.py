"""The `python` runner: an async callable named by import path, run in the engine's loop."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator_tui.core.errors import OrchestratorError
from orchestrator_tui.engine.runners.base import Job, Outcome


@dataclass(frozen=True, slots=True)
class TaskContext:
    """What a python task receives: where it runs and its arguments."""

    session_id: str
    task_id: str
    attempt: int
    workspace: Path
    args: dict[str, Any]


TaskFunction = Callable[[TaskContext], Coroutine[Any, Any, Any]]
_cache: dict[str, TaskFunction] = {}


def resolve(target: str) -> TaskFunction:
    """Import `package.module:function` and check that it is an async callable."""
    if target in _cache:
        return _cache[target]
    module_name, _, attribute = target.partition(":")
    try:
        function = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise OrchestratorError(f"python task target {target!r} cannot be imported: {error}") \
            from error
    if not inspect.iscoroutinefunction(function):
        raise OrchestratorError(f"python task target {target!r} is not an async function")
    _cache[target] = function
    return function  # type: ignore[no-any-return]


class PythonHandle:
    """An in-process task: it cannot be stopped with a signal, only cancelled."""

    def __init__(self, job: Job, task: asyncio.Task[Any]) -> None:
        self.job = job
        self._task = task

    @property
    def pid(self) -> None:
        return None

    @property
    def process_start(self) -> None:
        return None

    def pause(self) -> bool:
        return False

    def resume(self) -> bool:
        return False

    async def terminate(self, grace: float) -> None:
        self._task.cancel()

    async def wait(self) -> Outcome:
        try:
            if self.job.timeout is None:
                value = await self._task
            else:
                value = await asyncio.wait_for(self._task, self.job.timeout)
        except asyncio.CancelledError:
            if self._task.cancelled():
                return Outcome(succeeded=False, error="cancelled", cancelled=True)
            raise
        except TimeoutError:
            return Outcome(succeeded=False, error=f"timed out after {self.job.timeout:g} s",
                           timed_out=True)
        except Exception as error:  # the task's own failure is its outcome
            return Outcome(succeeded=False, error=f"{type(error).__name__}: {error}")
        return Outcome(succeeded=True, result=describe(value))


def describe(value: Any) -> str:
    """A one-line summary of a task's return value."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value[:300]
    try:
        return json.dumps(value, default=str)[:300]
    except (TypeError, ValueError):
        return repr(value)[:300]


class PythonRunner:
    """Runs python tasks as asyncio tasks of the engine's loop."""

    async def start(self, job: Job) -> PythonHandle:
        function = resolve(job.target or "")
        context = TaskContext(job.session_id, job.task_id, job.attempt, job.workspace, job.args)
        task: asyncio.Task[Any] = asyncio.get_running_loop().create_task(function(context))
        return PythonHandle(job, task)


async def noop(context: TaskContext) -> None:
    """A task that does nothing: the benchmarks use it to measure the engine alone."""
