"""The `command` runner: an argv list in its own process group, never through a shell.

The group stays in the engine's session: where the kernel divides the CPU by session
(autogroups), the engine and all its agents then get one portion together, as a `make -j` in
a terminal does, not one each. Agents run `niceness` steps below the engine, so that the
engine comes first when it and its agents want the CPU at once.

Output arrives on two pipes read straight from the event loop; the last `output_cap` bytes
of each are kept (the rest is counted), so a chatty agent cannot fill the engine's memory and
a screen can show a live tail. The process's end is learned from a pidfd on the event loop
(no thread per process); where pidfds do not exist, a thread waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import os
import select
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import IO

from orchestrator_tui.engine.processes import process_start_time, signal_group, terminate_tree
from orchestrator_tui.engine.runners.base import Job, Outcome
from orchestrator_tui.engine.runners.spawn import FAST_SPAWN, Process, SpawnedProcess, watch_exit

WATCH_DELAY = 0.02
"""Seconds after its start at which a command's output is read as it arrives."""
PIPE_GRACE = 1.0
"""Seconds to wait for the pipes to close after the process exits (a leftover child of the
process may hold them open)."""


class OutputPipe:
    """One pipe's reading end, keeping the tail of what arrives.

    It is read by the event loop only once `watch` is called: most commands of a plan end
    within milliseconds, and for them one `drain` at exit is much cheaper than registering
    with the loop. A command that writes more than a pipe's buffer before `watch` waits
    only until then. Until then the descriptor also stays blocking, and `drain` polls it
    before each read: for a command that wrote nothing, one poll says so.
    """

    def __init__(self, fd: int, cap: int, loop: asyncio.AbstractEventLoop) -> None:
        self.fd = fd
        self.cap = cap
        self.data = bytearray()
        self.total = 0
        self.closed = False
        self._loop = loop
        self._watched = False
        self._closing: asyncio.Future[None] | None = None
        """Made only for `wait_closed` (most pipes close at one drain, with nobody waiting)."""

    def watch(self) -> None:
        """Read whatever arrives from now on, as it arrives."""
        if not self._watched and not self.closed:
            self._watched = True
            fcntl.fcntl(self.fd, fcntl.F_SETFL, os.O_NONBLOCK)  # a pipe's end has no other flag
            self._loop.add_reader(self.fd, self.read)

    @property
    def watched(self) -> bool:
        """Whether the event loop reads this pipe as output arrives."""
        return self._watched

    async def wait_closed(self, grace: float) -> None:
        """Read as output arrives until end of file, for at most `grace` seconds."""
        if self.closed:
            return
        self.watch()
        if self._closing is None:
            self._closing = self._loop.create_future()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._closing), grace)

    def read(self) -> bool:
        """Read one chunk; return whether more may be waiting."""
        try:
            chunk = os.read(self.fd, 65536)
        except BlockingIOError:
            return False
        except OSError:
            chunk = b""
        if not chunk:
            self.close()
            return False
        self.total += len(chunk)
        self.data += chunk
        if len(self.data) > 2 * self.cap:
            del self.data[: len(self.data) - self.cap]
        return True

    def close(self) -> None:
        """Stop reading and release the descriptor."""
        if self.closed:
            return
        self.closed = True
        if self._watched:
            self._loop.remove_reader(self.fd)
        os.close(self.fd)
        if self._closing is not None and not self._closing.done():
            self._closing.set_result(None)

    def text(self) -> str:
        """The kept tail, decoded leniently."""
        return bytes(self.data[-self.cap:]).decode("utf-8", errors="replace")


def drain(pipes: tuple[OutputPipe, ...]) -> None:
    """Read what waits in each pipe now; close those at end of file. Pipes the loop does not
    read yet are polled together before each read: for a command that wrote nothing, one
    poll of both its pipes says so."""
    polled: dict[int, OutputPipe] = {}
    for pipe in pipes:
        if pipe.watched:
            while not pipe.closed and pipe.read():
                pass
        elif not pipe.closed:
            polled[pipe.fd] = pipe
    if not polled:
        return
    poller = select.poll()
    for fd in polled:
        poller.register(fd, select.POLLIN)
    while polled and (events := poller.poll(0)):
        for fd, event in events:
            pipe = polled[fd]
            if event & select.POLLIN and pipe.read():
                continue  # more may wait
            if not event & select.POLLIN:
                pipe.close()  # nothing waits, and no writer is left
            poller.unregister(fd)
            del polled[fd]


class CommandHandle:
    """A running command: its process group, its output and its deadline."""

    def __init__(self, job: Job, proc: Process, pipes: tuple[OutputPipe,
                 OutputPipe], exited: asyncio.Future[int]) -> None:
        self.job = job
        self._proc = proc
        self._pipes = pipes
        self._exited = exited
        self._start: float | None = None
        self._paused_at: float | None = None
        self._paused_total = 0.0
        self._started = time.monotonic()
        self._cancelled = False
        self._timed_out = False
        self._deadline: asyncio.TimerHandle | None = None
        self._killer: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def stdin(self) -> IO[bytes] | None:
        """The pipe to the command's standard input, when the job has input for it."""
        return self._proc.stdin

    @property
    def process_start(self) -> float | None:
        if self._start is None and not self._exited.done():
            self._start = process_start_time(self._proc.pid)
        return self._start

    def tail(self) -> tuple[str, str]:
        """What the command has written so far to stdout and stderr (their kept tails)."""
        drain(self._pipes)
        return self._pipes[0].text(), self._pipes[1].text()

    def pause(self) -> bool:
        if self._paused_at is None and not self._exited.done() \
                and signal_group(self.pid, signal.SIGSTOP):
            self._paused_at = time.monotonic()
            return True
        return False

    def resume(self) -> bool:
        if self._paused_at is None:
            return False
        self._paused_total += time.monotonic() - self._paused_at
        self._paused_at = None
        return signal_group(self.pid, signal.SIGCONT)

    async def terminate(self, grace: float) -> None:
        self._cancelled = True
        self._paused_at = None
        await terminate_tree(self.pid, grace)

    def _active_seconds(self) -> float:
        paused = self._paused_total
        if self._paused_at is not None:
            paused += time.monotonic() - self._paused_at
        return time.monotonic() - self._started - paused

    def on_done(self, callback: Callable[[Outcome], None]) -> None:
        """Call `callback(outcome)` from the event loop when the attempt has ended.

        The engine uses this instead of `wait` to follow many short commands without a
        task each.
        """
        loop = self._exited.get_loop()
        if self.job.timeout is not None:
            self._deadline = loop.call_later(self.job.timeout, self._check_deadline)

        def exited(done: asyncio.Future[int]) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            code = done.result()
            drain(self._pipes)
            if all(pipe.closed for pipe in self._pipes):
                callback(self._outcome(code))
                return
            # A leftover child holds a pipe open: give it a moment, then stop reading.
            closing = loop.create_task(self._close_pipes())
            closing.add_done_callback(lambda _: callback(self._outcome(code)))

        self._exited.add_done_callback(exited)

    async def wait(self) -> Outcome:
        ended: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self.on_done(ended.set_result)
        return await ended

    async def _close_pipes(self) -> None:
        for pipe in self._pipes:
            await pipe.wait_closed(PIPE_GRACE)
            pipe.close()

    def watch_output(self) -> None:
        """Start reading the output as it arrives (for commands that outlive a moment)."""
        if not self._exited.done():
            for pipe in self._pipes:
                pipe.watch()

    def _check_deadline(self) -> None:
        """At the deadline: kill the group, unless pauses moved the deadline later."""
        assert self.job.timeout is not None
        if self._exited.done():
            return
        remaining = self.job.timeout - self._active_seconds()
        loop = asyncio.get_running_loop()
        if remaining > 0.01 or self._paused_at is not None:
            self._deadline = loop.call_later(max(remaining, 1.0), self._check_deadline)
            return
        self._timed_out = True
        self._killer = loop.create_task(terminate_tree(self.pid, grace=2.0))

    def _outcome(self, code: int) -> Outcome:
        out, err = self._pipes[0].text(), self._pipes[1].text()
        succeeded = code == 0 and not self._timed_out and not self._cancelled
        if self._timed_out:
            error = f"timed out after {self.job.timeout:g} s"
        elif self._cancelled:
            error = "cancelled"
        elif code < 0:
            error = f"killed by signal {signal.Signals(-code).name}"
        elif code:
            error = f"exit code {code}: {last_line(err) or last_line(out)}"
        else:
            error = ""
        return Outcome(
            succeeded=succeeded, exit_code=code, result=summary_line(out), error=error,
            stdout=out, stderr=err, output_bytes=self._pipes[0].total + self._pipes[1].total,
            timed_out=self._timed_out, cancelled=self._cancelled,
        )


Started = tuple[Process, int, int]
"""A started process and the read ends of its stdout and stderr pipes."""


class CommandRunner:
    """Starts argv commands, each in a process group of its own, reading their output."""

    def __init__(self, base_env: dict[str, str] | None = None, niceness: int = 0) -> None:
        self.base_env = dict(os.environ if base_env is None else base_env)
        self.nice = min(19, os.getpriority(os.PRIO_PROCESS, 0) + niceness) \
            if niceness > 0 and hasattr(os, "setpriority") else None
        """The nice value the commands run at (None: the engine's own, inherited)."""
        self._encoded_bases: dict[tuple[str, ...], list[bytes]] = {}
        """The base environment as `NAME=value` bytes without the names a job sets, by those
        names (jobs of one engine set the same few): encoded once, not at every start."""
        self._young: deque[tuple[float, CommandHandle]] = deque()
        self._sweep: asyncio.TimerHandle | None = None

    async def start(self, job: Job) -> CommandHandle:
        handle = self.spawn(job)
        if job.stdin is not None and handle.stdin is not None:
            await asyncio.get_running_loop().run_in_executor(None, _feed, handle.stdin,
                                                             job.stdin)
        return handle

    def spawn(self, job: Job) -> CommandHandle:
        """Start the command now, from the event loop's thread, and return its handle."""
        return self.handle(job, self._launch(job))

    def launch_all(self, jobs: list[Job]) -> list[Started | Exception]:
        """Start several commands, from any thread, keeping the error of any that cannot
        start; `handle` then turns each into a handle on the event loop's thread.

        Starting a process blocks its caller until the child has called exec: the engine
        does it right after the commit that recorded the attempts, in the thread that wrote
        it.
        """
        started: list[Started | Exception] = []
        for job in jobs:
            try:
                started.append(self._launch(job))
            except Exception as error:
                started.append(error)
        return started

    def _launch(self, job: Job) -> Started:
        """Start one process with its output on two new pipes; return it and their read ends."""
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        try:
            proc: Process
            if FAST_SPAWN and job.stdin is None and job.argv[0].startswith("/") \
                    and SpawnedProcess.can_start_in(cwd := str(job.workspace)):
                proc = SpawnedProcess.spawn(job.argv, self._environment(job.env), out_w, err_w,
                                            cwd)
            else:
                env = {**self.base_env, **job.env}
                proc = subprocess.Popen(
                    job.argv, stdin=subprocess.PIPE if job.stdin is not None
                    else subprocess.DEVNULL, stdout=out_w, stderr=err_w, cwd=job.workspace,
                    env=env, process_group=0)
        except BaseException:
            for fd in (out_r, err_r):
                os.close(fd)
            raise
        finally:
            os.close(out_w)
            os.close(err_w)
        if self.nice is not None:
            with contextlib.suppress(OSError):  # it has already ended
                os.setpriority(os.PRIO_PROCESS, proc.pid, self.nice)
        return proc, out_r, err_r

    def _environment(self, env: dict[str, str]) -> list[bytes]:
        """The base environment with `env` over it, as `NAME=value` entries."""
        names = tuple(env)
        base = self._encoded_bases.get(names)
        if base is None:
            base = self._encoded_bases[names] = [
                _entry(name, value) for name, value in self.base_env.items()
                if name not in env and name and "=" not in name]
        return base + [_entry(name, value) for name, value in env.items()]

    def handle(self, job: Job, started: Started,
               loop: asyncio.AbstractEventLoop | None = None) -> CommandHandle:
        """The handle of a started command, on the thread of the running event loop (`loop`,
        when the caller has it at hand)."""
        loop = loop or asyncio.get_running_loop()
        proc, out_r, err_r = started
        pipes = (OutputPipe(out_r, job.output_cap, loop), OutputPipe(err_r, job.output_cap, loop))
        handle = CommandHandle(job, proc, pipes, watch_exit(proc, loop))
        self._young.append((loop.time() + WATCH_DELAY, handle))
        if self._sweep is None:
            self._sweep = loop.call_later(WATCH_DELAY, self._watch_grown)
        return handle

    def _watch_grown(self) -> None:
        """One timer for all: commands alive past `WATCH_DELAY` get their output read live."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        while self._young and self._young[0][0] <= now:
            self._young.popleft()[1].watch_output()
        self._sweep = loop.call_later(self._young[0][0] - now, self._watch_grown) \
            if self._young else None


_FS_ENCODING, _FS_ERRORS = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()


@functools.lru_cache(maxsize=4096)  # most of a job's variables repeat from job to job
def _entry(name: str, value: str) -> bytes:
    """`NAME=value` as the bytes a child's environment holds (as `os.fsencode` makes them)."""
    if "=" in name or not name:
        raise ValueError(f"illegal environment variable name {name!r}")
    return f"{name}={value}".encode(_FS_ENCODING, _FS_ERRORS)


def _feed(stdin: IO[bytes], data: bytes) -> None:
    with contextlib.suppress(BrokenPipeError):
        stdin.write(data)
    with contextlib.suppress(BrokenPipeError):
        stdin.close()


def last_line(text: str, width: int = 300) -> str:
    """The last non-empty line of `text`, shortened to `width` characters."""
    for line in reversed(text.splitlines()):
        if line.strip():
            return line.strip()[:width]
    return ""


def summary_line(stdout: str) -> str:
    """An agent's `SUMMARY:` line when it printed one, else its last output line."""
    for line in reversed(stdout.splitlines()):
        if line.startswith("SUMMARY:"):
            return line[len("SUMMARY:"):].strip()[:300]
    return last_line(stdout)
