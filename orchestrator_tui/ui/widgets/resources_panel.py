"""CPU, memory and disk I/O of the machine, each with a sparkline of the last minute, and the
load per CPU under the panel."""

from __future__ import annotations

from collections import deque

from textual.app import ComposeResult
from textual.containers import Grid
from textual.widgets import Label, Sparkline

from orchestrator_tui.ui.resources import ResourceSample, rate_text

HISTORY = 60
"""Samples kept for each sparkline."""


class ResourcesPanel(Grid):
    """Three rows of figure and sparkline; `add` takes one sample."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._cpu: deque[float] = deque(maxlen=HISTORY)
        self._memory: deque[float] = deque(maxlen=HISTORY)
        self._disk: deque[float] = deque(maxlen=HISTORY)

    def compose(self) -> ComposeResult:
        for key in ("cpu", "memory", "disk"):
            yield Label("", id=f"{key}-figure", classes="figure")
            yield Sparkline([], id=f"{key}-spark", classes="spark")

    def add(self, sample: ResourceSample) -> None:
        """Show one sample and extend the sparklines."""
        self._cpu.append(sample.cpu_percent)
        self._memory.append(sample.memory_percent)
        if sample.disk_bytes_per_s is not None:
            self._disk.append(sample.disk_bytes_per_s)
        self.query_one("#cpu-figure", Label).update(f"CPU    {sample.cpu_percent:5.1f}%",
                                                    layout=False)
        self.query_one("#memory-figure", Label).update(
            f"Memory {sample.memory_percent:5.1f}%", layout=False)
        self.query_one("#disk-figure", Label).update(
            f"Disk   {rate_text(sample.disk_bytes_per_s):>9}", layout=False)
        if sample.load_per_cpu is not None:
            self.border_subtitle = f"load {sample.load_per_cpu:.2f} per CPU"
        for key, values in (("cpu", self._cpu), ("memory", self._memory), ("disk", self._disk)):
            self.query_one(f"#{key}-spark", Sparkline).data = list(values)
