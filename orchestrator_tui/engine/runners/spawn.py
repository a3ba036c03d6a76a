"""Starting a child process cheaply and learning, on the event loop, that it exited."""

from __future__ import annotations

import asyncio
import os
import select
import signal
import sys
import weakref
from collections.abc import Callable
from typing import IO, Protocol

try:
    import _posixsubprocess

    _cpython_fork_exec: Callable[..., int] | None = _posixsubprocess.fork_exec
except ImportError:  # not a POSIX system
    _cpython_fork_exec = None


class Process(Protocol):
    """What a handle needs of a started process."""

    @property
    def pid(self) -> int: ...

    @property
    def stdin(self) -> IO[bytes] | None: ...

    def wait(self) -> int: ...


FORK_EXEC_VERSIONS = {(3, 11), (3, 12), (3, 13)}
"""The Python versions whose `_posixsubprocess.fork_exec`, the starter `subprocess.Popen`
calls (with vfork on Linux), takes the 23 arguments `SpawnedProcess.spawn` passes. Elsewhere,
and on other systems (where it would fork), a child is started with `os.posix_spawn`, which
was measured slower on Linux per start (for `true`: 36-41 microseconds of the caller's CPU
against 24-26, 89-105 of waiting against 68-75)."""

_fork_exec: Callable[..., int] | None = _cpython_fork_exec \
    if sys.platform == "linux" and sys.version_info[:2] in FORK_EXEC_VERSIONS else None
FAST_SPAWN = hasattr(os, "waitstatus_to_exitcode") and (
    _fork_exec is not None or hasattr(os, "posix_spawn"))
_DEVNULL = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC) if FAST_SPAWN else -1
_RESTORED_SIGNALS = tuple(getattr(signal, name) for name in ("SIGPIPE", "SIGXFSZ")
                          if hasattr(signal, name))
"""Signals Python ignores that a child gets back at their default action, as with `Popen`."""
_REPORT_LIMIT = 50_000


class SpawnedProcess:
    """A child started without `subprocess.Popen`'s bookkeeping (which costs more than the
    start itself): stdin from /dev/null, stdout and stderr on the given descriptors, in a
    process group of its own (within the engine's session), holding no other descriptor of
    the engine's."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.stdin: IO[bytes] | None = None
        self.returncode: int | None = None

    @staticmethod
    def can_start_in(cwd: str) -> bool:
        """Whether `spawn` can start a child in `cwd` (`os.posix_spawn`, where it is the
        starter, cannot change folder)."""
        return _fork_exec is not None or cwd == os.getcwd()  # noqa: PTH109 - plain strings

    @classmethod
    def spawn(cls, argv: tuple[str, ...], env: list[bytes], out: int, err: int,
              cwd: str | None = None) -> SpawnedProcess:
        """Start `argv` (its program an absolute path) with `env` (`NAME=value` entries).

        Raises:
            OSError: the program could not start; it names the program, or the folder.
        """
        sys.audit("subprocess.Popen", argv[0], argv, cwd, env)
        if _fork_exec is None:
            if cwd is not None and not cls.can_start_in(cwd):
                raise ValueError(f"cannot start {argv[0]} in {cwd}: see can_start_in")
            return cls(os.posix_spawn(
                argv[0], argv, dict(entry.split(b"=", 1) for entry in env), setpgroup=0,
                setsigdef=_RESTORED_SIGNALS, file_actions=[
                    (os.POSIX_SPAWN_DUP2, _DEVNULL, 0), (os.POSIX_SPAWN_DUP2, out, 1),
                    (os.POSIX_SPAWN_DUP2, err, 2)]))
        # The child writes why it could not exec to this pipe, whose end closes at its exec.
        report_r, report_w = os.pipe2(os.O_CLOEXEC)
        try:
            pid = _fork_exec(argv, (os.fsencode(argv[0]),), True, (report_w,), cwd, env,
                             _DEVNULL, -1, -1, out, -1, err, report_r, report_w,
                             True, False, 0, None, None, None, -1, None, True)
        finally:
            os.close(report_w)
        try:
            report = b""
            while len(report) <= _REPORT_LIMIT and (chunk := os.read(report_r, _REPORT_LIMIT)):
                report += chunk
        finally:
            os.close(report_r)
        if report:
            os.waitpid(pid, 0)
            raise _start_error(report, argv[0], cwd)
        return cls(pid)

    def wait(self) -> int:
        """Reap the child (it has exited when the pidfd says so) and return its exit code."""
        if self.returncode is None:
            _, status = os.waitpid(self.pid, 0)
            self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode


def _start_error(report: bytes, program: str, cwd: str | None) -> OSError:
    """The error a child reported before its exec (`Popen`'s form: `name:hex errno:detail`,
    the detail `noexec` when it failed before trying the program, at its folder)."""
    name, _, rest = report.partition(b":")
    number, _, detail = rest.partition(b":")
    try:
        code = int(number, 16)
    except ValueError:
        code = 0
    if name == b"OSError" and code:
        return OSError(code, os.strerror(code), cwd if detail == b"noexec" and cwd else program)
    return OSError(f"{program}: the child reported {report.decode(errors='replace')!r}")


def watch_exit(proc: Process,
               loop: asyncio.AbstractEventLoop | None = None) -> asyncio.Future[int]:
    """A future of the process's exit code, resolved by the running event loop (`loop`,
    when the caller has it at hand: asking for it costs a system call)."""
    loop = loop or asyncio.get_running_loop()
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
        self._loop = weakref.proxy(loop)
        """The loop, held weakly (nor is its timer's handle kept): `_exit_watchers` keeps a
        watcher only as long as its loop lives, which a strong reference would prevent."""
        self._epoll: select.epoll | None = None
        self._children: dict[int, tuple[Process, asyncio.Future[int]]] = {}
        self._idle_timer = False
        """Whether the one timer that closes an idle set is set (it is not moved at every
        child)."""
        self._empty_since = 0.0

    def add(self, pidfd: int, proc: Process, exited: asyncio.Future[int]) -> None:
        """Resolve `exited` with the exit code once `pidfd` says the process has ended."""
        if self._epoll is None:
            self._epoll = select.epoll()
            self._loop.add_reader(self._epoll.fileno(), self._reap)
        self._children[pidfd] = (proc, exited)
        # Reported once, then never again: closing the descriptor needs no `unregister`,
        # even while a child being spawned holds a copy of it until its exec (which keeps
        # the closed one in the set, silent).
        self._epoll.register(pidfd, select.EPOLLIN | select.EPOLLONESHOT)

    def _reap(self) -> None:
        assert self._epoll is not None
        for pidfd, _ in self._epoll.poll(0):
            proc, exited = self._children.pop(pidfd)
            os.close(pidfd)
            if not exited.done():
                exited.set_result(proc.wait())
        if not self._children:
            self._empty_since = self._loop.time()
            if not self._idle_timer:
                self._idle_timer = True
                self._loop.call_later(self.IDLE_SECONDS, self._close_if_idle)

    def _close_if_idle(self) -> None:
        self._idle_timer = False
        if self._children or self._epoll is None:
            return  # busy again: the next time the set empties arms the timer anew
        left = self._empty_since + self.IDLE_SECONDS - self._loop.time()
        if left > 0:  # it emptied again since the timer was set
            self._idle_timer = True
            self._loop.call_later(left, self._close_if_idle)
            return
        self._loop.remove_reader(self._epoll.fileno())
        self._epoll.close()
        self._epoll = None


_exit_watchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ExitWatcher] = \
    weakref.WeakKeyDictionary()
