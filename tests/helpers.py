"""Python task targets used by the tests (kept out of test modules, which import fixtures)."""

from __future__ import annotations

import asyncio


async def sleepy(context: object) -> str:
    """A python task that takes a little time, so that controls land mid-run."""
    await asyncio.sleep(0.01)
    return "slept"


async def explode(context: object) -> None:
    """A python task that fails with an exception of its own."""
    raise RuntimeError("exploded on purpose")
