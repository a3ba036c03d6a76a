"""The Ray runner: each attempt runs as a Ray task, placed on a node by its declared resources.

Design. `RayRunner` connects once (`ray.init`, in a thread) and submits each job as a Ray
streaming task (`ray_remote.run_job`, `max_retries=0`: the engine decides about retries).
The task starts the job's argv in its own process group on the node and yields where it
runs (node id, IP, pid), the output written since its last report, and at last the exit
code. The driver side (`RayHandle`) keeps the capped tails, feeds agent CLIs' JSON lines to
their parsers, and builds the attempt's `Outcome`, recorded by the engine like any other.
Pause, resume and abort reach the remote process group through one small `Signaller` actor
per node, created when first needed and pinned there; a job not yet located is cancelled
through Ray instead (the task then kills its group itself). The timeout is kept here, not
counting paused time. Python callables run with `asyncio.run` on the node; they can be
cancelled, not paused. A node that dies mid-task ends the attempt with `lost=True`.

Ray is an optional extra; it is imported only when a runner connects.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Mapping
from typing import Any

from orchestrator_tui.core.errors import OrchestratorError
from orchestrator_tui.engine.runners.base import Job, Outcome, Runner
from orchestrator_tui.engine.runners.command import last_line, summary_line
from orchestrator_tui.engine.runners.python import PythonRunner
from orchestrator_tui.engine.runners.ray_remote import Signaller, run_job
from orchestrator_tui.engine.runners.stream import (
    MIN_CAP,
    StreamBackend,
    StreamReading,
    StreamRunner,
)
from orchestrator_tui.engine.settings import effective

MISSING = "the ray executor needs Ray: pip install 'orchestrator-tui[ray]'"
EXECUTORS = ("local", "ray")


def require_ray() -> None:
    """Raise a one-line error naming what to install when Ray is missing."""
    try:
        import ray  # noqa: F401 - only whether it imports
    except ImportError as error:
        raise OrchestratorError(MISSING) from error


def ray_options(resources: Mapping[str, float]) -> dict[str, Any]:
    """Ray task options for a task's declared resources: `cpu` (default 1) is `num_cpus`,
    `gpu` is `num_gpus`, `memory_mb` is `memory`, any other name a custom resource."""
    options: dict[str, Any] = {"num_cpus": float(resources.get("cpu", 1))}
    custom = {name: float(value) for name, value in resources.items()
              if name not in ("cpu", "gpu", "memory_mb")}
    if "gpu" in resources:
        options["num_gpus"] = float(resources["gpu"])
    if "memory_mb" in resources:
        options["memory"] = int(float(resources["memory_mb"]) * 1024 * 1024)
    if custom:
        options["resources"] = custom
    return options


class Kept:
    """The tail of one output stream, as it arrives from the node."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.data = bytearray()

    def add(self, chunk: bytes) -> None:
        self.data += chunk
        if len(self.data) > 2 * self.cap:
            del self.data[: len(self.data) - self.cap]

    def text(self) -> str:
        return bytes(self.data[-self.cap:]).decode("utf-8", errors="replace")


class AgentStream:
    """An agent CLI's stdout read on the coordinating machine, chunk by chunk."""

    def __init__(self, backend: StreamBackend, job: Job) -> None:
        self.reading = StreamReading(backend, job)
        self.partial = bytearray()

    def feed(self, chunk: bytes, final: bool = False) -> None:
        """Parse the complete lines of `chunk` (and the rest, when `final`)."""
        self.partial += chunk
        *lines, rest = bytes(self.partial).split(b"\n")
        self.partial = bytearray(rest)
        if final and rest:
            lines.append(rest)
            self.partial.clear()
        for raw in lines:
            self.reading.line(raw.decode("utf-8", errors="replace").strip())

    def outcome(self, base: Outcome) -> Outcome:
        """The attempt's outcome from the CLI's own words, as the stream runner gives it."""
        return self.reading.outcome(base)


class RayHandle:
    """An attempt running as a Ray task: it has no local pid; `node_id`, `node_ip` and
    `remote_pid` say where it runs once the node has reported."""

    def __init__(self, runner: RayRunner, job: Job, generator: Any,
                 backend: StreamBackend | None) -> None:
        self.runner = runner
        self.job = job
        self.node_id: str | None = None
        self.node_ip: str | None = None
        self.remote_pid: int | None = None
        self.python = bool(job.target)
        self._generator = generator
        self._stream = AgentStream(backend, job) if backend is not None else None
        cap = max(job.output_cap, MIN_CAP) if backend is not None else job.output_cap
        self._out, self._err = Kept(cap), Kept(cap)
        self._paused_at: float | None = None
        self._paused_total = 0.0
        self._started = time.monotonic()
        self._cancelled = self._timed_out = False
        loop = asyncio.get_running_loop()
        self._located = loop.create_future()
        self._done: asyncio.Future[Outcome] = loop.create_future()
        self._deadline = loop.call_later(job.timeout, self._check_deadline) \
            if job.timeout is not None else None
        self._helpers: set[asyncio.Task[Any]] = set()
        self._follower = loop.create_task(self._follow(), name=f"ray {job.task_id}")

    @property
    def pid(self) -> None:
        return None

    @property
    def process_start(self) -> None:
        return None

    def where(self) -> str:
        """Where the attempt runs, for people."""
        if self.node_id is None:
            return "ray: not placed yet"
        return f"ray node {self.node_ip} ({self.node_id[:12]}) pid {self.remote_pid}"

    def tail(self) -> tuple[str, str]:
        """What the remote process has written so far (as last reported)."""
        return self._out.text(), self._err.text()

    def pause(self) -> bool:
        if self.python or self._done.done() or self._paused_at is not None:
            return False
        self._paused_at = time.monotonic()
        self._signal_later([signal.SIGSTOP])
        return True

    def resume(self) -> bool:
        if self._paused_at is None:
            return False
        self._paused_total += time.monotonic() - self._paused_at
        self._paused_at = None
        self._signal_later([signal.SIGCONT])
        return True

    async def terminate(self, grace: float) -> None:
        self._cancelled = True
        self._paused_at = None
        await self._stop(grace)

    async def wait(self) -> Outcome:
        return await asyncio.shield(self._done)

    # ----- reaching the remote process ---------------------------------------------------

    def _signal_later(self, signums: list[int]) -> None:
        """Signal the remote group once it is located (at once when it already is)."""
        task = asyncio.get_running_loop().create_task(self._signal(signums))
        self._helpers.add(task)
        task.add_done_callback(self._helpers.discard)

    async def _signal(self, signums: list[int]) -> bool:
        await asyncio.shield(self._located)
        if self.node_id is None or self.remote_pid is None or self._done.done():
            return False
        return await self.runner.signal(self.node_id, self.remote_pid, signums)

    async def _stop(self, grace: float) -> None:
        """End the remote attempt: SIGTERM, `grace` seconds, SIGKILL (a python job or one
        not located yet is cancelled through Ray)."""
        if self._done.done():
            return
        if self.python or not self._located.done():
            import ray

            with contextlib.suppress(Exception):
                ray.cancel(self._generator, force=self.python)
            return
        await self._signal([signal.SIGTERM, signal.SIGCONT])
        try:
            await asyncio.wait_for(asyncio.shield(self._done), grace)
        except TimeoutError:
            await self._signal([signal.SIGKILL])

    def _check_deadline(self) -> None:
        """At the deadline: stop the attempt, unless pauses moved the deadline later."""
        assert self.job.timeout is not None
        if self._done.done():
            return
        paused = self._paused_total + (time.monotonic() - self._paused_at
                                       if self._paused_at is not None else 0.0)
        remaining = self.job.timeout - (time.monotonic() - self._started - paused)
        loop = asyncio.get_running_loop()
        if remaining > 0.01 or self._paused_at is not None:
            self._deadline = loop.call_later(max(remaining, 1.0), self._check_deadline)
            return
        self._timed_out = True
        task = loop.create_task(self._stop(2.0))
        self._helpers.add(task)
        task.add_done_callback(self._helpers.discard)

    # ----- following the remote task -----------------------------------------------------

    async def _follow(self) -> None:
        import ray.exceptions as rex

        try:
            outcome = None
            async for ref in self._generator:
                outcome = self._on(await ref)
            outcome = outcome or self._failed("the Ray task ended without a result")
        except rex.TaskCancelledError:
            outcome = self._failed("cancelled")
        except rex.RayTaskError as error:  # the job's own exception (a python task's)
            cause = getattr(error, "cause", None) or error
            outcome = self._failed(f"{type(cause).__name__}: {cause}")
        except rex.RayError as error:  # the node or its worker went away
            outcome = self._failed(f"lost on {self.where()}: {type(error).__name__}: "
                                   f"{first_line(error)}", lost=not self._cancelled)
        except Exception as error:  # whatever happens, the attempt ends with an outcome
            outcome = self._failed(f"{type(error).__name__}: {error}")
        if self._deadline is not None:
            self._deadline.cancel()
        if not self._located.done():
            self._located.set_result(None)
        self._done.set_result(outcome)

    def _on(self, item: dict[str, Any]) -> Outcome | None:
        """Take in one report of the remote task; the outcome once it has ended."""
        if item["event"] == "started":
            self.node_id, self.node_ip, self.remote_pid = item["node"], item["ip"], item["pid"]
            self._located.set_result(None)
            return None
        self._take(item.get("out", b""), item.get("err", b""), final=item["event"] == "ended")
        if item["event"] != "ended":
            return None
        if "error" in item:
            return self._failed(item["error"])
        if "value" in item:
            return self._finish(Outcome(succeeded=not (self._cancelled or self._timed_out),
                                        result=item["value"], error=self._reason()))
        code: int = item["code"]
        out, err = self._out.text(), self._err.text()
        error = self._reason()
        if not error and code < 0:
            error = f"killed by signal {signal.Signals(-code).name}"
        elif not error and code:
            error = f"exit code {code}: {last_line(err) or last_line(out)}"
        base = Outcome(succeeded=code == 0 and not error, exit_code=code,
                       result=summary_line(out), error=error, stdout=out, stderr=err,
                       output_bytes=item["total"], timed_out=self._timed_out,
                       cancelled=self._cancelled)
        return self._finish(self._stream.outcome(base) if self._stream else base)

    def _take(self, out: bytes, err: bytes, final: bool) -> None:
        self._out.add(out)
        self._err.add(err)
        if self._stream is not None:
            self._stream.feed(out, final)

    def _reason(self) -> str:
        if self._timed_out:
            return f"timed out after {self.job.timeout:g} s"
        return "cancelled" if self._cancelled else ""

    def _finish(self, outcome: Outcome) -> Outcome:
        """Say where it ran, in the result line that the database keeps."""
        return _replace(outcome, result=f"{outcome.result} [{self.where()}]".strip())

    def _failed(self, error: str, lost: bool = False) -> Outcome:
        reason = self._reason()
        return Outcome(succeeded=False, error=reason or error, stdout=self._out.text(),
                       stderr=self._err.text(), timed_out=self._timed_out,
                       cancelled=self._cancelled and not lost, lost=lost)


def _replace(outcome: Outcome, **changes: Any) -> Outcome:
    import dataclasses

    return dataclasses.replace(outcome, **changes)


def first_line(error: BaseException) -> str:
    """The first non-empty line of an exception's message, shortened."""
    return last_line(str(error).strip().split("\n", 1)[0]) or "no details"


def executor_runner(settings: Mapping[str, str], executor: str | None = None,
                    address: str | None = None) -> RayRunner | None:
    """The Ray runner when the executor (given, else the `executor` setting) is `ray`, joining
    `address` (given, else the `ray_address` setting); None for the local executor.

    Raises:
        OrchestratorError: Ray is not installed (saying what to install), or an address
            without the ray executor.
    """
    chosen = executor or effective(settings, "executor") or "local"
    if chosen != "ray":
        if address:
            raise OrchestratorError("--address needs --executor ray")
        return None
    return RayRunner(address or effective(settings, "ray_address"))


class RayRunner:
    """Runs jobs as Ray tasks on the cluster at `address` (None: a local Ray started here,
    or the one this process already joined)."""

    def __init__(self, address: str | None = None) -> None:
        require_ray()
        self.address = address
        self._connect_lock: asyncio.Lock | None = None
        self._remote: Any = None
        self._signaller: Any = None
        self._signallers: dict[str, Any] = {}

    async def connect(self) -> None:
        """Join (or start) the Ray cluster, once."""
        if self._remote is not None:
            return
        if self._connect_lock is None:
            self._connect_lock = asyncio.Lock()
        async with self._connect_lock:
            if self._remote is None:
                await asyncio.to_thread(self._connect)

    def _connect(self) -> None:
        import ray

        if not ray.is_initialized():
            try:
                ray.init(address=self.address, log_to_driver=False,
                         include_dashboard=False if self.address is None else None)
            except Exception as error:
                raise OrchestratorError(f"cannot reach the Ray cluster at "
                                        f"{self.address or 'a new local one'}: "
                                        f"{first_line(error)}") from error
        self._signaller = ray.remote(Signaller)
        self._remote = ray.remote(run_job)

    def placed(self, inner: Runner, resources: Mapping[str, float]) -> PlacedRunner:
        """A runner that runs `inner`'s kind of job here, with a task's resources."""
        return PlacedRunner(self, inner, dict(resources))

    async def start(self, job: Job) -> RayHandle:
        """Start `job` as a Ray task needing one CPU."""
        return await self.submit(job, {}, None)

    async def submit(self, job: Job, resources: Mapping[str, float],
                     backend: StreamBackend | None) -> RayHandle:
        """Start `job` as a Ray task placed by `resources`."""
        await self.connect()
        spec = {"session_id": job.session_id, "task_id": job.task_id, "attempt": job.attempt,
                "workspace": str(job.workspace), "argv": list(job.argv), "target": job.target,
                "args": job.args, "env": dict(job.env), "stdin": job.stdin,
                "cap": max(job.output_cap, MIN_CAP) if backend else job.output_cap}
        generator = self._remote.options(num_returns="streaming", max_retries=0,
                                         **ray_options(resources)).remote(spec)
        return RayHandle(self, job, generator, backend)

    async def signal(self, node_id: str, pgid: int, signums: list[int]) -> bool:
        """Send signals to a process group on a node (through the node's signaller)."""
        import ray

        actor = self._signallers.get(node_id)
        if actor is None:
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            actor = self._signallers[node_id] = self._signaller.options(
                num_cpus=0, max_restarts=0, scheduling_strategy=NodeAffinitySchedulingStrategy(
                    node_id, soft=False)).remote()
        try:
            return bool(await actor.signal.remote(pgid, [int(s) for s in signums]))
        except ray.exceptions.RayError:  # the node is gone, and its processes with it
            self._signallers.pop(node_id, None)
            return False


class PlacedRunner:
    """One task's runner under the Ray executor: `inner` says what kind of job it is
    (command, python callable, agent CLI), `resources` where it may run."""

    def __init__(self, ray: RayRunner, inner: Runner, resources: dict[str, float]) -> None:
        self.ray = ray
        self.inner = inner
        self.resources = resources
        self.backend = inner.backend if isinstance(inner, StreamRunner) else None
        if not isinstance(inner, (StreamRunner, PythonRunner)) and \
                not hasattr(inner, "launch_all"):
            raise OrchestratorError(f"the ray executor cannot run a {type(inner).__name__}")

    async def start(self, job: Job) -> RayHandle:
        return await self.ray.submit(job, self.resources, self.backend)
