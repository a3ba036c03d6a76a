"""The user's settings (parallel limit, theme, default runner), kept in the database."""

from __future__ import annotations

from pathlib import Path

from orchestrator_tui.core.errors import OrchestratorError
from orchestrator_tui.store.database import connect

KNOWN = {
    "parallel_limit": "the most agents running at once (a whole number, 1 or more)",
    "theme": "the app's colour theme",
    "default_runner": "auto, command, claude, codex or gemini",
}
RUNNERS = ("auto", "command", "claude", "codex", "gemini")


def check(key: str, value: str) -> str:
    """Validate one setting and return it normalised; raise a clear error if it is wrong."""
    if key not in KNOWN:
        raise OrchestratorError(f"unknown setting {key!r}; known: {', '.join(sorted(KNOWN))}")
    value = value.strip()
    if key == "parallel_limit" and not (value.isdigit() and int(value) >= 1):
        raise OrchestratorError(f"parallel_limit must be {KNOWN[key]}, not {value!r}")
    if key == "default_runner" and value not in RUNNERS:
        raise OrchestratorError(f"default_runner must be one of {', '.join(RUNNERS)}")
    if not value:
        raise OrchestratorError(f"{key} cannot be empty")
    return value


async def save_setting(db_path: Path, key: str, value: str) -> None:
    """Store one setting (validated) for every later session."""
    value = check(key, value)
    conn = await connect(db_path)
    try:
        await conn.execute("BEGIN IMMEDIATE")
        await conn.execute("INSERT INTO settings (key, value) VALUES (?, ?) "
                           "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))
        await conn.execute("COMMIT")
    finally:
        await conn.close()


async def load_settings(db_path: Path) -> dict[str, str]:
    """Every stored setting."""
    conn = await connect(db_path)
    try:
        async with conn.execute("SELECT key, value FROM settings") as cursor:
            return {str(k): str(v) for k, v in await cursor.fetchall()}
    finally:
        await conn.close()
