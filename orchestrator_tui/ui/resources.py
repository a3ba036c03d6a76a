"""System resources for the dashboard: CPU, memory, disk I/O and load, sampled cheaply with
psutil.

Each call reads a few lines of /proc (well under a millisecond) and compares them with the
previous call, so sampling never blocks or sleeps.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import psutil


@dataclass(frozen=True, slots=True)
class ResourceSample:
    """One reading: CPU and memory in percent, disk I/O in bytes per second."""

    cpu_percent: float
    memory_percent: float
    disk_bytes_per_s: float | None
    """Read plus written per second since the last sample; None on the first one, or where
    psutil cannot count disk I/O."""
    load_per_cpu: float | None = None
    """The one-minute load average divided by the logical CPUs; None where unknown."""


class Sampler(Protocol):
    """Anything that gives a resource sample when asked."""

    def sample(self) -> ResourceSample:
        """A reading now."""


class PsutilSampler:
    """Samples the machine with psutil, each reading relative to the previous one."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last_disk: tuple[float, int] | None = None
        psutil.cpu_percent(interval=None)  # the first call only sets the baseline

    def _disk_rate(self) -> float | None:
        try:
            counters = psutil.disk_io_counters()
        except (OSError, RuntimeError):
            return None
        if counters is None:
            return None
        now, total = self._clock(), counters.read_bytes + counters.write_bytes
        last, self._last_disk = self._last_disk, (now, total)
        if last is None or now <= last[0]:
            return None
        return max(0.0, (total - last[1]) / (now - last[0]))

    def sample(self) -> ResourceSample:
        """CPU since the last call, memory now, disk throughput since the last call, load."""
        return ResourceSample(psutil.cpu_percent(interval=None),
                              psutil.virtual_memory().percent, self._disk_rate(), _load())


def _load() -> float | None:
    try:
        return psutil.getloadavg()[0] / (psutil.cpu_count() or 1)
    except (OSError, AttributeError):
        return None


def rate_text(value: float | None) -> str:
    """Bytes per second for people: `1.2 MB/s`, or `-` when not known yet."""
    if value is None:
        return "-"
    for unit in ("B/s", "kB/s", "MB/s", "GB/s"):
        if value < 1000 or unit == "GB/s":
            return f"{value:.0f} {unit}" if unit == "B/s" else f"{value:.1f} {unit}"
        value /= 1000
    return "-"
