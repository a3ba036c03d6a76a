"""The `command` runner: an argv list in its own process group, never through a shell.

Output arrives on two pipes read straight from the event loop; the last `output_cap` bytes
of each are kept (the rest is counted), so a chatty agent cannot fill the engine's memory and
a screen can show a live tail. The process's end is learned from a pidfd on the event loop
(no thread per process); where pidfds do not exist, a thread waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time

from orchestrator_tui.engine.processes import process_start_time, signal_group, terminate_tree
from orchestrator_tui.engine.runners.base import Job, Outcome

PIPE_GRACE = 1.0
"""Seconds to wait for the pipes to close after the process exits (a leftover child of the
process may hold them open)."""


class OutputPipe:
    """One pipe's reading end, registered with the loop, keeping the tail of what arrives."""

    def __init__(self, fd: int, cap: int, loop: asyncio.AbstractEventLoop) -> None:
        self.fd = fd
        self.cap = cap
        self.data = bytearray()
        self.total = 0
        self.closed: asyncio.Future[None] = loop.create_future()
        self._loop = loop
        os.set_blocking(fd, False)
        loop.add_reader(fd, self._read)

    def _read(self) -> None:
        try:
            chunk = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self.close()
            return
        self.total += len(chunk)
        self.data += chunk
        if len(self.data) > 2 * self.cap:
            del self.data[: len(self.data) - self.cap]

    def close(self) -> None:
        """Stop reading and release the descriptor."""
        if self.closed.done():
            return
        self._loop.remove_reader(self.fd)
        os.close(self.fd)
        self.closed.set_result(None)

    def text(self) -> str:
        """The kept tail, decoded leniently."""
        return bytes(self.data[-self.cap:]).decode("utf-8", errors="replace")


class CommandHandle:
    """A running command: its process group, its output and its deadline."""

    def __init__(self, job: Job, proc: subprocess.Popen[bytes], pipes: tuple[OutputPipe,
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
    def process_start(self) -> float | None:
        if self._start is None and not self._exited.done():
            self._start = process_start_time(self._proc.pid)
        return self._start

    def tail(self) -> tuple[str, str]:
        """What the command has written so far to stdout and stderr (their kept tails)."""
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

    async def wait(self) -> Outcome:
        if self.job.timeout is not None:
            self._deadline = asyncio.get_running_loop().call_later(self.job.timeout,
                                                                   self._check_deadline)
        try:
            code = await asyncio.shield(self._exited)
        finally:
            if self._deadline is not None:
                self._deadline.cancel()
        for pipe in self._pipes:
            if not pipe.closed.done():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(pipe.closed), PIPE_GRACE)
                pipe.close()
        return self._outcome(code)

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


class CommandRunner:
    """Starts argv commands in a new session (process group), reading their output."""

    def __init__(self, base_env: dict[str, str] | None = None) -> None:
        self.base_env = dict(os.environ if base_env is None else base_env)

    async def start(self, job: Job) -> CommandHandle:
        loop = asyncio.get_running_loop()
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        env = {**self.base_env, **job.env} if job.env else self.base_env
        try:
            proc = subprocess.Popen(  # noqa: ASYNC220 - spawning does not wait (as asyncio's own)
                job.argv, stdin=subprocess.PIPE if job.stdin is not None else subprocess.DEVNULL,
                stdout=out_w, stderr=err_w, cwd=job.workspace, env=env, start_new_session=True)
        except BaseException:
            for fd in (out_r, err_r):
                os.close(fd)
            raise
        finally:
            os.close(out_w)
            os.close(err_w)
        pipes = (OutputPipe(out_r, job.output_cap, loop), OutputPipe(err_r, job.output_cap, loop))
        if job.stdin is not None and proc.stdin is not None:
            await loop.run_in_executor(None, _feed, proc, job.stdin)
        return CommandHandle(job, proc, pipes, watch_exit(proc))


def _feed(proc: subprocess.Popen[bytes], data: bytes) -> None:
    assert proc.stdin is not None
    with contextlib.suppress(BrokenPipeError):
        proc.stdin.write(data)
    with contextlib.suppress(BrokenPipeError):
        proc.stdin.close()


def watch_exit(proc: subprocess.Popen[bytes]) -> asyncio.Future[int]:
    """A future of the process's exit code, resolved by the event loop."""
    loop = asyncio.get_running_loop()
    exited: asyncio.Future[int] = loop.create_future()
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        waiter = loop.run_in_executor(None, proc.wait)

        def on_wait(done: asyncio.Future[int]) -> None:
            if not exited.done():
                exited.set_result(done.result())

        waiter.add_done_callback(on_wait)
        return exited

    def on_exit() -> None:
        loop.remove_reader(pidfd)
        os.close(pidfd)
        if not exited.done():
            exited.set_result(proc.wait())

    loop.add_reader(pidfd, on_exit)
    return exited


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
