"""Sizes the pool from the machine's load while a session runs (the `pool_sizing` setting)
and keeps the resource capacity's available memory current."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import psutil

from orchestrator_tui.core.errors import OrchestratorError
from orchestrator_tui.core.pool import Load, PoolThresholds, next_size
from orchestrator_tui.engine.execution import Execution

LoadProbe = Callable[[], Load]
"""Reads the machine's load now."""


@dataclass(frozen=True, slots=True)
class PoolConfig:
    """How the pool is sized: its probe (None: this machine), the thresholds, seconds
    between samples (the pool changes by at most one per sample)."""

    probe: LoadProbe | None = None
    thresholds: PoolThresholds = field(default_factory=PoolThresholds)
    interval: float = 2.0


def system_load() -> Load:
    """This machine's CPU idle share since the last call, available memory and one-minute
    load per core."""
    idle = psutil.cpu_times_percent(interval=None).idle / 100
    memory = psutil.virtual_memory()
    return Load(idle, memory.available / memory.total,
                os.getloadavg()[0] / (os.cpu_count() or 1))


def start_size(execution: Execution) -> int:
    """Where a dynamic pool starts: the user's limit, at most one task per logical CPU."""
    return max(1, min(execution.user_limit, os.cpu_count() or 1))


async def watch_pool(execution: Execution, config: PoolConfig, *, dynamic: bool) -> None:
    """Every `config.interval` seconds: refresh the available memory of the execution's
    capacity and, when `dynamic`, grow or shrink its pool by one as the load says. Runs
    until cancelled; a sample that cannot be taken is skipped."""
    probe = config.probe or system_load
    if dynamic:
        execution.start_pool(start_size(execution))
    while True:
        try:
            load = probe()
            if execution.admission is not None and config.probe is None:
                execution.refresh_capacity(psutil.virtual_memory().available / 2**20)
        except (OSError, psutil.Error):
            load = None
        work = execution.pool_work()
        if dynamic and load is not None and work is not None:
            resize = next_size(work, load, config.thresholds)
            if resize is not None:
                try:
                    execution.resize_pool(resize)
                except OrchestratorError as error:  # never let the watch end the run
                    execution.record.note(f"pool: could not resize: {error}")
        await asyncio.sleep(config.interval)
