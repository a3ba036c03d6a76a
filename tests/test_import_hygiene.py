"""The layers below the UI never import textual, and core/ no I/O library: each is checked by
importing the modules in a fresh interpreter and looking at `sys.modules`."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import orchestrator_tui

HEADLESS_PACKAGES = ("core", "store", "engine")


def modules_of(*packages: str) -> list[str]:
    """Every module of the named subpackages of orchestrator_tui."""
    root = next(iter(orchestrator_tui.__path__))
    names = []
    for package in packages:
        prefix = f"orchestrator_tui.{package}"
        names.append(prefix)
        names += [info.name for info in
                  pkgutil.walk_packages([f"{root}/{package}"], prefix=f"{prefix}.")]
    return names


def loaded_after_importing(modules: list[str], watched: tuple[str, ...]) -> list[str]:
    """Which of `watched` (or their submodules) a fresh interpreter has after `modules`."""
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"watched = {watched!r}\n"
        "print(','.join(sorted(m for m in sys.modules "
        "if m in watched or m.split('.')[0] in watched)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return [name for name in out.stdout.strip().split(",") if name]


def test_there_are_modules_to_check() -> None:
    names = modules_of(*HEADLESS_PACKAGES)
    assert "orchestrator_tui.engine.execution" in names
    assert "orchestrator_tui.store.writer" in names
    assert "orchestrator_tui.core.plan" in names


def test_headless_layers_never_import_textual() -> None:
    assert loaded_after_importing(modules_of(*HEADLESS_PACKAGES), ("textual",)) == []


def test_core_does_no_io_or_asyncio() -> None:
    watched = ("aiosqlite", "sqlite3", "psutil", "textual", "asyncio")
    assert loaded_after_importing(modules_of("core"), watched) == []
