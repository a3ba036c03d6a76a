"""Named points where the process can be made to die at once, to prove crash recovery.

`ORCHESTRATOR_CRASH_AT=NAME` (or `NAME:N`, the Nth time) makes the process SIGKILL itself
when it reaches the point `NAME`, the way a power cut or `kill -9` would. Unset, as in normal
use, a point costs one comparison. The points:

- `claimed`: a task's `running` row is committed and its process not yet started.
- `started`: the task's process runs; its completion is not known yet.
- `completing`: the task has ended; its completion is not yet committed.
- `commit`: inside a group commit's transaction, before `COMMIT`.
- `migration`: inside a schema migration's transaction, before `COMMIT`.
- `checkpoint`: the workspace snapshot is written; the checkpoint row is not.
"""

from __future__ import annotations

import os
import signal

POINTS = ("claimed", "started", "completing", "commit", "migration", "checkpoint")
ENV = "ORCHESTRATOR_CRASH_AT"


def _target(value: str | None) -> tuple[str, int] | None:
    if not value:
        return None
    name, _, nth = value.partition(":")
    if name not in POINTS:
        raise SystemExit(f"orchestrator: {ENV}={value!r}: unknown point; known: "
                         f"{', '.join(POINTS)}")
    return name, int(nth) if nth.isdigit() and int(nth) > 0 else 1


_TARGET = _target(os.environ.get(ENV))
_reached: dict[str, int] = {}


def reached(name: str) -> None:
    """Die here if this is the point (and the time) `ORCHESTRATOR_CRASH_AT` names."""
    if _TARGET is None or _TARGET[0] != name:
        return
    _reached[name] = _reached.get(name, 0) + 1
    if _reached[name] == _TARGET[1]:
        os.kill(os.getpid(), signal.SIGKILL)


def armed() -> bool:
    """Whether any crash point is set in this process."""
    return _TARGET is not None
