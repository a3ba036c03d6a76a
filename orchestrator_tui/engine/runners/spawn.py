"""Starting a child process cheaply and learning, on the event loop, that it exited."""

from __future__ import annotations

import asyncio
import os
from typing import IO, Protocol


class Process(Protocol):
    """What a handle needs of a started process."""

    @property
    def pid(self) -> int: ...

    @property
    def stdin(self) -> IO[bytes] | None: ...

    def wait(self) -> int: ...


FAST_SPAWN = hasattr(os, "posix_spawn") and hasattr(os, "waitstatus_to_exitcode")
_DEVNULL = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC) if FAST_SPAWN else -1


class SpawnedProcess:
    """A child started with `posix_spawn`: cheaper than `Popen` (no Python-side fork
    bookkeeping), used when the command runs in the engine's own working folder, which
    `posix_spawn` cannot change before Python 3.13."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.stdin: IO[bytes] | None = None
        self.returncode: int | None = None

    @classmethod
    def spawn(cls, argv: tuple[str, ...], env: dict[str, str], out: int,
              err: int) -> SpawnedProcess:
        """Start `argv` in a new session with stdin from /dev/null and the given outputs."""
        pid = os.posix_spawn(argv[0], argv, env, setsid=True, file_actions=[
            (os.POSIX_SPAWN_DUP2, _DEVNULL, 0), (os.POSIX_SPAWN_DUP2, out, 1),
            (os.POSIX_SPAWN_DUP2, err, 2)])
        return cls(pid)

    def wait(self) -> int:
        """Reap the child (it has exited when the pidfd says so) and return its exit code."""
        if self.returncode is None:
            _, status = os.waitpid(self.pid, 0)
            self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode


def watch_exit(proc: Process) -> asyncio.Future[int]:
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
