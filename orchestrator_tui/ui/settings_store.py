"""The user's settings (parallel limit, theme, default runner) as the app uses them: read and
stored through `orchestrator_tui.engine.settings` (the app never writes SQL)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from orchestrator_tui.engine import settings as engine_settings

RUNNERS = engine_settings.RUNNERS
"""Choices of the default runner setting."""


@dataclass(frozen=True, slots=True)
class SaveOutcome:
    """What was stored, and what to tell the user."""

    stored: tuple[str, ...]
    message: str


def _exists(path: Path) -> bool:
    return path.exists()


async def load_settings(db_path: Path) -> dict[str, str]:
    """Every stored setting; an empty mapping while there is no database yet (none is made)."""
    if not _exists(db_path):
        return {}
    return await engine_settings.load_settings(db_path)


async def save_settings(db_path: Path, values: dict[str, str],
                        changed: set[str]) -> SaveOutcome:
    """Store the `changed` keys of `values`.

    Raises:
        OrchestratorError: a value was refused (the message says why); nothing after it
            was stored.
    """
    stored = []
    for key in sorted(changed):
        await engine_settings.save_setting(db_path, key, values[key])
        stored.append(key)
    names = ", ".join(key.replace("_", " ") for key in stored)
    return SaveOutcome(tuple(stored), f"saved: {names}" if stored else "nothing changed")
