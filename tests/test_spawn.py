"""Following children's exits: every future gets its own child's exit code, whatever order
they end in, and the loop's shared epoll set is released once idle."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from orchestrator_tui.engine.runners import spawn
from orchestrator_tui.engine.runners.spawn import SpawnedProcess, watch_exit

pytestmark = pytest.mark.skipif(not spawn.FAST_SPAWN or not hasattr(os, "pidfd_open"),
                                reason="needs posix_spawn and pidfds")


def start(code: int, delay: float) -> SpawnedProcess:
    argv = (sys.executable, "-c", f"import time, sys; time.sleep({delay}); sys.exit({code})")
    return SpawnedProcess.spawn(argv, dict(os.environb), 1, 2)


async def test_each_child_reports_its_own_exit_code() -> None:
    children = [start(code, delay) for code, delay in
                [(3, 0.3), (0, 0.0), (7, 0.2), (1, 0.1), (0, 0.25), (9, 0.05)]]
    codes = await asyncio.gather(*(watch_exit(child) for child in children))
    assert codes == [3, 0, 7, 1, 0, 9]
    assert all(child.returncode == code for child, code in zip(children, codes, strict=True))


async def test_descriptors_are_reused_safely_and_the_set_closes_when_idle(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spawn.ExitWatcher, "IDLE_SECONDS", 0.05)
    for round_ in range(3):  # the same descriptor numbers come back each round
        codes = await asyncio.gather(*(watch_exit(start(n % 5, 0.0)) for n in range(40)))
        assert codes == [n % 5 for n in range(40)], round_
    watcher = spawn._exit_watchers[asyncio.get_running_loop()]
    await asyncio.sleep(0.2)
    assert watcher._epoll is None  # released: nothing left to watch
    assert await watch_exit(start(4, 0.0)) == 4  # and made again on need
