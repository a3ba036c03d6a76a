"""`orchestrator serve`: the same app in a browser, through textual-serve, on 127.0.0.1."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path


def app_command(workspace: Path, db_path: Path, workflow: str | None = None) -> list[str]:
    """The argv that starts the app for one browser connection."""
    argv = [sys.executable, "-m", "orchestrator_tui", "--workspace", str(workspace),
            "--db", str(db_path)]
    if workflow:
        argv += ["--workflow", workflow]
    return argv


def serve(workspace: Path, db_path: Path, host: str = "127.0.0.1", port: int = 8000,
          workflow: str | None = None) -> None:
    """Serve the app on `host:port` until interrupted.

    textual-serve starts the app through a shell for each browser connection; the command is
    quoted with `shlex.join`, so paths with spaces or quotes stay single arguments.
    """
    from textual_serve.server import Server

    command = shlex.join(app_command(workspace, db_path, workflow))
    Server(command, host=host, port=port, title="orchestrator").serve()
