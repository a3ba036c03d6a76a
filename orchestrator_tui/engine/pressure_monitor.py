"""Watches memory and disk while a session runs and applies the pressure policy's steps."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from orchestrator_tui.core.errors import OrchestratorError
from orchestrator_tui.core.pressure import Pressure, PressurePolicy, Thresholds, causes
from orchestrator_tui.engine.execution import Execution

Probe = Callable[[], Pressure]
"""Reads the machine's resources now."""


@dataclass(frozen=True, slots=True)
class MonitorConfig:
    """How the monitor samples: its probe (None: the machine, with the workspace's disk),
    the policy's thresholds, seconds between samples, and the clock that times the
    policy's steps."""

    probe: Probe | None = None
    thresholds: Thresholds = field(default_factory=Thresholds)
    interval: float = 1.0
    clock: Callable[[], float] = time.monotonic


def system_probe(workspace: Path) -> Probe:
    """A probe of this machine: available memory, free bytes where `workspace` lives, and
    the one-minute load per core."""
    cores = os.cpu_count() or 1

    def probe() -> Pressure:
        memory = psutil.virtual_memory()
        try:
            disk_free: int | None = psutil.disk_usage(str(workspace)).free
        except OSError:  # the workspace is gone; the execution deals with that
            disk_free = None
        return Pressure(memory.available / memory.total, disk_free,
                        os.getloadavg()[0] / cores)
    return probe


async def watch(execution: Execution, config: MonitorConfig) -> None:
    """Sample every `config.interval` seconds, feed the policy, apply what it decides.
    Runs until cancelled; a sample that cannot be taken is skipped."""
    probe = config.probe or system_probe(execution.jobs.workspace)
    policy = PressurePolicy(config.thresholds)
    while True:
        try:
            reading = probe()
        except (OSError, psutil.Error):
            reading = None
        work = execution.pressure_work()
        if reading is not None and work is not None:
            action = policy.step(reading, config.clock(), work)
            if action is not None:
                cause = " and ".join(causes(reading, config.thresholds)) or "resource"
                try:
                    execution.apply_pressure(action, reading, cause)
                except OrchestratorError as error:  # never let the watch end the run
                    execution.record.note(f"resources: could not apply {action}: {error}")
        await asyncio.sleep(config.interval)
