"""The layers below the UI never import textual: checked in a fresh interpreter."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import orchestrator_tui

HEADLESS_PACKAGES = ("core", "store", "engine")


def headless_modules() -> list[str]:
    """Every module of the core, store and engine layers."""
    names = []
    for package in HEADLESS_PACKAGES:
        prefix = f"orchestrator_tui.{package}"
        names.append(prefix)
        path = [str(p) for p in orchestrator_tui.__path__]
        for info in pkgutil.walk_packages([f"{path[0]}/{package}"], prefix=f"{prefix}."):
            names.append(info.name)
    return names


def test_there_are_modules_to_check() -> None:
    names = headless_modules()
    assert "orchestrator_tui.engine.execution" in names
    assert "orchestrator_tui.store.writer" in names
    assert "orchestrator_tui.core.plan" in names


def test_headless_layers_never_import_textual() -> None:
    code = (
        "import importlib, sys\n"
        f"for name in {headless_modules()!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == ""


def test_core_does_no_io_or_asyncio() -> None:
    code = (
        "import importlib, sys, pkgutil, orchestrator_tui.core as core\n"
        "for info in pkgutil.walk_packages(core.__path__, 'orchestrator_tui.core.'):\n"
        "    importlib.import_module(info.name)\n"
        "bad = sorted(m for m in ('aiosqlite', 'sqlite3', 'psutil', 'textual') "
        "if m in sys.modules)\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == ""
