"""Signalling an agent's process group: pause, resume, and terminate without orphans."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path

import psutil

_BOOT_TIME = psutil.boot_time()
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PROC = Path(f"/proc/{os.getpid()}/stat").exists()


def process_start_time(pid: int) -> float | None:
    """When `pid` started (epoch seconds, as psutil reports it), or None if it is gone."""
    if _PROC:
        try:
            with open(f"/proc/{pid}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
            return _BOOT_TIME + int(fields[19]) / _CLOCK_TICKS
        except (OSError, IndexError, ValueError):
            return None
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


def signal_group(pgid: int, signum: int) -> bool:
    """Send `signum` to every process of the group; False when the group is gone."""
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def descendants(pid: int) -> list[psutil.Process]:
    """Every living descendant of `pid`, including ones that left its process group."""
    try:
        return psutil.Process(pid).children(recursive=True)
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return []


def group_alive(pgid: int) -> bool:
    """Whether any process of the group is still there (zombies excepted)."""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    for proc in psutil.process_iter(["pid"]):
        with contextlib.suppress(psutil.Error):
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                return True
    return False


async def terminate_tree(pid: int, grace: float) -> None:
    """SIGTERM the group led by `pid` and its stray descendants, then SIGKILL what remains.

    Stopped processes are continued first so that they can act on SIGTERM.
    """
    strays = [p for p in descendants(pid) if _pgid(p) != pid]
    signal_group(pid, signal.SIGTERM)
    signal_group(pid, signal.SIGCONT)
    for proc in strays:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
            proc.resume()
    deadline = asyncio.get_running_loop().time() + grace
    while asyncio.get_running_loop().time() < deadline:
        if not _any_alive(pid, strays):
            return
        await asyncio.sleep(0.05)
    signal_group(pid, signal.SIGKILL)
    for proc in strays:
        with contextlib.suppress(psutil.Error):
            proc.kill()


def _pgid(proc: psutil.Process) -> int | None:
    try:
        return os.getpgid(proc.pid)
    except OSError:
        return None


def _any_alive(pgid: int, strays: list[psutil.Process]) -> bool:
    return group_alive(pgid) or any(_alive(p) for p in strays)


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
