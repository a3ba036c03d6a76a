"""A runner wrapper that gives each attempt its own git worktree (`isolation: worktree`)."""

from __future__ import annotations

import asyncio
import dataclasses

from orchestrator_tui.engine.isolation import Worktrees
from orchestrator_tui.engine.runners.base import Handle, Job, Outcome, Runner


class IsolatedHandle:
    """An attempt running in a worktree; when it ends, its changes are committed on its
    branch."""

    def __init__(self, inner: Handle, worktrees: Worktrees, task_id: str) -> None:
        self._inner = inner
        self._worktrees = worktrees
        self._task_id = task_id

    @property
    def pid(self) -> int | None:
        return self._inner.pid

    @property
    def process_start(self) -> float | None:
        return self._inner.process_start

    def pause(self) -> bool:
        return self._inner.pause()

    def resume(self) -> bool:
        return self._inner.resume()

    async def terminate(self, grace: float) -> None:
        await self._inner.terminate(grace)

    async def wait(self) -> Outcome:
        outcome = await self._inner.wait()
        try:
            commit = await asyncio.to_thread(self._worktrees.finish, self._task_id)
        except Exception as error:  # the work is in the worktree folder, which stays
            note = f"changes left in {self._worktrees.path(self._task_id)}: {error}"
            return dataclasses.replace(outcome, error="; ".join(filter(None, [outcome.error,
                                                                               note])))
        branch = self._worktrees.branch(self._task_id)
        note = f"[branch {branch}]" if commit else "[no changes]"
        return dataclasses.replace(outcome, result=f"{outcome.result} {note}".strip())


class IsolatedRunner:
    """Starts each job of `inner` in the task's worktree, made (or reused) first."""

    def __init__(self, inner: Runner, worktrees: Worktrees) -> None:
        self.inner = inner
        self.worktrees = worktrees

    async def start(self, job: Job) -> IsolatedHandle:
        path = await asyncio.to_thread(self.worktrees.prepare, job.task_id)
        handle = await self.inner.start(dataclasses.replace(job, workspace=path))
        return IsolatedHandle(handle, self.worktrees, job.task_id)
