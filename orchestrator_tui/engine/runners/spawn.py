"""Starting a child process cheaply and learning, on the event loop, that it exited."""

from __future__ import annotations

import asyncio
import os
import select
import weakref
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
    def spawn(cls, argv: tuple[str, ...], env: dict[bytes, bytes], out: int,
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
    watcher = _exit_watchers.get(loop)
    if watcher is None:
        watcher = _exit_watchers[loop] = ExitWatcher(loop)
    watcher.add(pidfd, proc, exited)
    return exited


class ExitWatcher:
    """The pidfds of one event loop's children, in an epoll set of their own that the loop
    watches as one descriptor: a child costs two `epoll_ctl` calls and no selector work,
    and one wake-up reaps every child that has exited since the last."""

    IDLE_SECONDS = 1.0
    """With no child left for this long, the epoll set is closed (and made again on need)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._epoll: select.epoll | None = None
        self._children: dict[int, tuple[Process, asyncio.Future[int]]] = {}
        self._idle: asyncio.TimerHandle | None = None
        """The one timer that closes an idle set; it is not moved at every child."""
        self._empty_since = 0.0

    def add(self, pidfd: int, proc: Process, exited: asyncio.Future[int]) -> None:
        """Resolve `exited` with the exit code once `pidfd` says the process has ended."""
        if self._epoll is None:
            self._epoll = select.epoll()
            self._loop.add_reader(self._epoll.fileno(), self._reap)
        self._children[pidfd] = (proc, exited)
        self._epoll.register(pidfd, select.EPOLLIN)

    def _reap(self) -> None:
        assert self._epoll is not None
        for pidfd, _ in self._epoll.poll(0):
            # Out of the set before closing: a child being spawned meanwhile may hold a copy
            # of the descriptor until its exec, which would keep a closed one in the set.
            self._epoll.unregister(pidfd)
            proc, exited = self._children.pop(pidfd)
            os.close(pidfd)
            if not exited.done():
                exited.set_result(proc.wait())
        if not self._children:
            self._empty_since = self._loop.time()
            if self._idle is None:
                self._idle = self._loop.call_later(self.IDLE_SECONDS, self._close_if_idle)

    def _close_if_idle(self) -> None:
        self._idle = None
        if self._children or self._epoll is None:
            return  # busy again: the next time the set empties arms the timer anew
        left = self._empty_since + self.IDLE_SECONDS - self._loop.time()
        if left > 0:  # it emptied again since the timer was set
            self._idle = self._loop.call_later(left, self._close_if_idle)
            return
        self._loop.remove_reader(self._epoll.fileno())
        self._epoll.close()
        self._epoll = None


_exit_watchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ExitWatcher] = \
    weakref.WeakKeyDictionary()
