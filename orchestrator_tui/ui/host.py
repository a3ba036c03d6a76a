"""The engine inside the app: opened on the first run, runs one session at a time on the app's
event loop, and is closed when the app ends.

Quitting keeps a live session: its agent processes are stopped and its records left as they
are, so the next start of the app (or `orchestrator resume`) recovers it where it was.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from pathlib import Path

from orchestrator_tui.core.states import ACTIVE_SESSION_STATES, SessionState
from orchestrator_tui.engine.agent_state import archived_agents
from orchestrator_tui.engine.control import session_engine_alive
from orchestrator_tui.engine.events import Control
from orchestrator_tui.engine.execution import Execution
from orchestrator_tui.engine.recovery import Settled
from orchestrator_tui.engine.registry import load_registry
from orchestrator_tui.engine.runners.ray_runner import executor_runner
from orchestrator_tui.engine.session import Engine, SessionRequest
from orchestrator_tui.engine.settings import load_settings
from orchestrator_tui.engine.workflows import load_plan
from orchestrator_tui.store import queries
from orchestrator_tui.store.database import connect
from orchestrator_tui.store.queries import SessionRow

ABORT_WAIT = 15.0
"""Seconds to wait for an aborted run to stop its processes."""
SUSPEND_GRACE = 3.0
"""Seconds agents get after SIGTERM when the app quits with a live session."""


class RunHost:
    """Owns this app's engine and the session it runs (at most one at a time)."""

    def __init__(self, workspace: Path, db_path: Path, workflow: str | None,
                 agent_dirs: Sequence[Path] = ()) -> None:
        self.workspace = workspace
        self.db_path = db_path
        self.workflow = workflow
        self.agent_dirs = list(agent_dirs)
        self.engine: Engine | None = None
        self.execution: Execution | None = None
        """The session started last in this app, running or finished."""
        self._run: asyncio.Task[SessionState] | None = None

    @property
    def active(self) -> bool:
        """Whether the last session started here is still active (not finished)."""
        return self.execution is not None and \
            self.execution.session_state in ACTIVE_SESSION_STATES

    async def start(self, intent: str) -> Execution:
        """Plan `intent` and record a new session, ready to run.

        Raises:
            OrchestratorError: unknown intent, invalid workflow or agents, database problems.
        """
        archived = await archived_agents(self.db_path)
        plan, registry, source = await asyncio.to_thread(
            load_plan, intent, self.workflow, self.workspace, self.agent_dirs, archived)
        if self.engine is None:
            self.engine = await Engine.open(self.db_path)
        ray = executor_runner(await load_settings(self.db_path))  # says what to install
        self.execution = await self.engine.start(SessionRequest(
            plan=plan, workspace=self.workspace, workflow=source, registry=registry, ray=ray))
        return self.execution

    async def run(self, execution: Execution) -> SessionState:
        """Run a started session to its end.

        The engine runs in a task of its own: when the caller is cancelled (the app closes),
        the session is aborted and its processes are stopped before this returns.
        """
        assert self.engine is not None
        self._run = asyncio.get_running_loop().create_task(self.engine.run(execution))
        try:
            return await asyncio.shield(self._run)
        except asyncio.CancelledError:
            await self.suspend()
            raise

    async def recover(self, session: SessionRow) -> tuple[Execution, Settled]:
        """Take over a session whose engine is gone, as it was (paused stays paused)."""
        archived = await archived_agents(self.db_path)
        registry = await asyncio.to_thread(load_registry, Path(session.workspace),
                                           self.agent_dirs, archived)
        if self.engine is None:
            self.engine = await Engine.open(self.db_path)
        self.execution, settled = await self.engine.recover(session, registry,
                                                            keep_paused=True)
        return self.execution, settled

    async def orphans(self) -> list[SessionRow]:
        """Active sessions of this workspace whose engine is gone, newest first."""
        conn = await connect(self.db_path)
        try:
            found = []
            for session in await queries.list_sessions(conn):
                if session.state in ACTIVE_SESSION_STATES and \
                        Path(session.workspace) == self.workspace and \
                        not await session_engine_alive(conn, session):
                    found.append(session)
            return found
        finally:
            await conn.close()

    async def suspend(self) -> None:
        """Stop the live session's agents and its loop, leaving its records for recovery."""
        run, execution = self._run, self.execution
        if execution is None or run is None or run.done():
            return
        handles = execution.running_handles()
        run.cancel()
        with contextlib.suppress(BaseException):
            await run
        await asyncio.gather(*(handle.terminate(SUSPEND_GRACE) for handle in handles),
                             return_exceptions=True)

    def request(self, action: str, argument: str | None = None) -> bool:
        """Hand pause, resume, abort or set-limit to the live session; False if none."""
        if self.execution is None or not self.active:
            return False
        self.execution.request(Control(action, argument, reason=f"{action} requested in the app"))
        return True

    async def abort_and_wait(self, reason: str) -> None:
        """Abort the live session and wait until its processes are stopped."""
        run = self._run
        if self.execution is not None and self.active:
            self.execution.request(Control("abort", reason=reason))
        if run is not None and not run.done():
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(asyncio.shield(run), ABORT_WAIT)

    async def close(self) -> None:
        """Suspend a live session, then close the engine (its writer commits what is left)."""
        await self.suspend()
        if self.engine is not None:
            engine, self.engine = self.engine, None
            await engine.close()
