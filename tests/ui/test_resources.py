"""The dashboard's resources panel: CPU, memory, disk I/O, and the load per CPU."""

from __future__ import annotations

from pathlib import Path

from orchestrator_tui.ui.app import OrchestratorApp
from orchestrator_tui.ui.resources import PsutilSampler, ResourceSample
from orchestrator_tui.ui.widgets.resources_panel import ResourcesPanel

from .conftest import until


class LoadedSampler:
    def sample(self) -> ResourceSample:
        return ResourceSample(cpu_percent=90.0, memory_percent=50.0, disk_bytes_per_s=0.0,
                              load_per_cpu=1.75)


async def test_the_load_per_cpu_shows_under_the_panel(workspace: Path, db: Path) -> None:
    app = OrchestratorApp(workspace, db, sampler=LoadedSampler(), resource_period=0.05)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("b")
        await until(pilot, lambda: app.screen.query(ResourcesPanel))
        panel = app.screen.query_one(ResourcesPanel)
        await until(pilot, lambda: panel.border_subtitle == "load 1.75 per CPU")


def test_the_machine_sampler_reads_a_load() -> None:
    load = PsutilSampler().sample().load_per_cpu
    assert load is None or load >= 0
