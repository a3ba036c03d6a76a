"""The user's settings (parallel limit, theme, runners and agent CLI limits), kept in the
database."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

from orchestrator_tui.core.admission import parse_resources
from orchestrator_tui.core.errors import OrchestratorError
from orchestrator_tui.store.database import connect

KNOWN = {
    "parallel_limit": "the most agents running at once (a whole number, 1 or more)",
    "theme": "the app's colour theme",
    "default_runner": "auto, command, claude, codex or gemini",
    "llm_cli": "the agent CLI that `auto` uses when it is installed: claude, codex, gemini "
               "or none",
    "claude_permission_mode": "Claude Code's permission mode: default, acceptEdits, plan, auto, "
                              "dontAsk, bypassPermissions, or none (Claude Code decides)",
    "max_turns": "the most agent turns per attempt (a whole number, 1 or more), or none",
    "max_budget_usd": "the most US dollars one attempt may spend (a positive number), or none",
    "checkpoint_max_mb": "the most megabytes of files a checkpoint archives in a workspace that "
                         "is not a git repository (a whole number, 1 or more; default 200)",
    "auto_checkpoints": "on or off: a checkpoint before each phase of a run and on pause",
    "learned_timeouts": "on or off: a task whose workflow sets no timeout gets one learned "
                        "from its kind's recorded durations (at least 5 runs)",
    "pressure_policy": "on or off: when memory or disk runs short, pause lower-priority tasks, "
                       "shrink the pool, then checkpoint and pause the session",
    "resources": "what this machine offers beyond its CPUs and memory, as NAME=AMOUNT,... "
                 "(e.g. gpu=1,llm_slots=4; cpu= or memory_mb= override the measured ones), "
                 "or none",
    "pool_sizing": "fixed or dynamic: whether the number of tasks running at once follows "
                   "the machine's load, up to parallel_limit",
    "cache_max_age_days": "how many days a cached solution is offered for (a whole number, 0 "
                          "turns the cache's offers off; default 7)",
    "executor": "local or ray: where agents run, in the app and by default for `orchestrator "
                "run` and `resume` (ray needs the ray extra)",
    "ray_address": "the Ray cluster the ray executor joins, or none to start a local one",
    "agent_niceness": "how many steps below the orchestrator's CPU priority agents run (a "
                      "whole number, 0 to 19; 0 keeps them level; default 10)",
}
RUNNERS = ("auto", "command", "claude", "codex", "gemini")
LLM_CLIS = ("claude", "codex", "gemini", "none")
PERMISSION_MODES = ("default", "acceptEdits", "plan", "auto", "dontAsk", "bypassPermissions")
DEFAULTS = {"default_runner": "auto", "llm_cli": "claude", "auto_checkpoints": "on",
            "learned_timeouts": "on", "pressure_policy": "on", "pool_sizing": "fixed",
            "executor": "local", "agent_niceness": "10"}
UNSET = "none"
"""The value that turns an optional limit off."""


def check(key: str, value: str) -> str:
    """Validate one setting and return it normalised; raise a clear error if it is wrong."""
    if key not in KNOWN:
        raise OrchestratorError(f"unknown setting {key!r}; known: {', '.join(sorted(KNOWN))}")
    value = value.strip()
    if key == "parallel_limit" and not (value.isdigit() and int(value) >= 1):
        raise OrchestratorError(f"parallel_limit must be {KNOWN[key]}, not {value!r}")
    if key == "cache_max_age_days" and not value.isdigit():
        raise OrchestratorError(f"cache_max_age_days must be {KNOWN[key]}, not {value!r}")
    if key == "checkpoint_max_mb" and not (value.isdigit() and int(value) >= 1):
        raise OrchestratorError(f"checkpoint_max_mb must be {KNOWN[key]}, not {value!r}")
    if key == "agent_niceness" and not (value.isdigit() and int(value) <= 19):
        raise OrchestratorError(f"agent_niceness must be a whole number, 0 to 19, not {value!r}")
    if not value:
        raise OrchestratorError(f"{key} cannot be empty")
    choices = {"default_runner": RUNNERS, "llm_cli": LLM_CLIS, "auto_checkpoints": ("on", "off"),
               "learned_timeouts": ("on", "off"),
               "pressure_policy": ("on", "off"), "pool_sizing": ("fixed", "dynamic"),
               "executor": ("local", "ray"),
               "claude_permission_mode": (*PERMISSION_MODES, UNSET)}.get(key)
    if choices is not None and value not in choices:
        raise OrchestratorError(f"{key} must be one of {', '.join(choices)}, not {value!r}")
    if key == "max_turns" and value != UNSET and not (value.isdigit() and int(value) >= 1):
        raise OrchestratorError(f"max_turns must be {KNOWN[key]}, not {value!r}")
    if key == "max_budget_usd" and value != UNSET and not _positive(value):
        raise OrchestratorError(f"max_budget_usd must be {KNOWN[key]}, not {value!r}")
    if key == "resources":
        parse_resources(value, "setting resources")
    return value


def _positive(text: str) -> bool:
    try:
        number = float(text)
    except ValueError:
        return False
    return math.isfinite(number) and number > 0


def effective(settings: Mapping[str, str], key: str) -> str | None:
    """A setting's value for the engine: the stored one, else its default; None when unset."""
    value = settings.get(key, DEFAULTS.get(key))
    return None if value in (None, "", UNSET) else value


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
