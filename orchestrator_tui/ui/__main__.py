"""`python -m orchestrator_tui.ui [--workspace DIR] [--db FILE] [--workflow FILE]` opens the app;
`python -m orchestrator_tui.ui serve [--port N]` serves it to a browser. The `orchestrator`
command does the same once it is wired to `run_app` and `serve`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from orchestrator_tui.store.database import resolve_db_path


def main(argv: list[str] | None = None) -> int:
    """Parse the options and run the app, or serve it."""
    parser = argparse.ArgumentParser(prog="python -m orchestrator_tui.ui")
    parser.add_argument("action", nargs="?", choices=("app", "serve"), default="app")
    parser.add_argument("--workspace", default=".", help="the repository to work on")
    parser.add_argument("--db", help="the database file")
    parser.add_argument("--workflow", help="a workflow YAML (default: the shipped one)")
    parser.add_argument("--host", default="127.0.0.1", help="serve: address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="serve: port to listen on")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    workspace = Path(args.workspace).expanduser().resolve()
    if not workspace.is_dir():
        parser.error(f"workspace {workspace} is not a folder")
    db_path = resolve_db_path(workspace, args.db)
    if args.action == "serve":
        from orchestrator_tui.ui.serve import serve

        serve(workspace, db_path, host=args.host, port=args.port, workflow=args.workflow)
        return 0
    from orchestrator_tui.ui.app import run_app

    return run_app(workspace, db_path, args.workflow)


if __name__ == "__main__":
    raise SystemExit(main())
