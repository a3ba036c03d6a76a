"""`agent generate` and `agent create`: new agent files from templates."""

from __future__ import annotations

from typing import Any


def add_generate_parsers(agent_actions: Any) -> None:
    """Add `generate` and `create` to the `agent` command's subparsers."""
