"""Running the engine's event loop, with the cheapest way to learn that a child exited."""

from __future__ import annotations

import asyncio
import os
import sys
import warnings
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def use_pidfd_child_watcher() -> None:
    """On Python 3.11, watch children with pidfds instead of a thread per child.

    Python 3.12 and later do this by themselves where the kernel supports pidfd_open.
    """
    if sys.version_info >= (3, 12) or not hasattr(os, "pidfd_open"):
        return
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        asyncio.set_child_watcher(asyncio.PidfdChildWatcher())


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` with the child watcher above."""
    use_pidfd_child_watcher()
    return asyncio.run(main)
