"""The `orchestrator` command: the app without a subcommand, headless subcommands with one."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from orchestrator_tui import __version__, commands
from orchestrator_tui.core.errors import OrchestratorError
from orchestrator_tui.store.database import resolve_db_path

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_ABORTED = 0, 1, 2, 3


def common_options() -> argparse.ArgumentParser:
    """Options every subcommand takes, before or after its name."""
    common = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    common.add_argument("--db", metavar="FILE",
                        help="the database (default: $ORCHESTRATOR_DB, else "
                             ".orchestrator/state.db in the workspace)")
    common.add_argument("--workspace", metavar="DIR", help="the repository to work on "
                                                           "(default: the current folder)")
    common.add_argument("--json", action="store_true", help="print one JSON object")
    common.add_argument("--agents-dir", action="append", type=Path, metavar="DIR",
                        help="another folder of agent files (repeatable)")
    return common


def build_parser() -> argparse.ArgumentParser:
    """The full command line grammar."""
    parser = argparse.ArgumentParser(
        prog="orchestrator", parents=[common_options()],
        description="Plan, run and watch a team of coding agents in parallel.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--workflow", dest="app_workflow", metavar="FILE",
                        help="the workflow of the app's menu, and of any command given "
                             "none of its own (default: shipped)")
    sub = parser.add_subparsers(dest="group", metavar="COMMAND")
    run = sub.add_parser("run", help="run an intent of a workflow to its end, headless")
    run.add_argument("intent", help="e.g. analyze, build, fix (see the workflow)")
    run.add_argument("--workflow", metavar="FILE", help="a workflow YAML (default: shipped)")
    run.add_argument("--parallel", type=int, metavar="N", help="most agents at once")
    run.add_argument("--mode", choices=("list", "levels"), default="list", help="list: a task "
                     "starts once its dependencies are done (default); levels: level by level")
    run.add_argument("--executor", choices=("local", "ray"), default=None,
                     help="local: processes on this machine; ray: Ray tasks on a Ray "
                          "cluster, placed by the tasks' resources (default: the `executor` "
                          "setting, else local)")
    run.add_argument("--address", metavar="ADDRESS", help="the Ray cluster to join with "
                     "--executor ray (default: start a local one)")
    run.add_argument("--show-output", action="store_true",
                     help="print each task's output after the summary")
    run.add_argument("--no-cache", action="store_true",
                     help="run even when a cached solution of the same problem exists")
    serve = sub.add_parser("serve", help="serve the app to a browser (127.0.0.1 by default)")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (8000)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (127.0.0.1; anything else exposes the app)")
    serve.add_argument("--workflow", metavar="FILE", help="a workflow YAML (default: shipped)")
    commands.add_command_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `orchestrator` and `python -m orchestrator_tui`."""
    if hasattr(signal, "SIGTTIN") and threading.current_thread() is threading.main_thread():
        # Agents run in process groups of this terminal's session, in its background, and
        # inherit this: one reading the terminal itself (a password prompt) then gets an
        # error, instead of being stopped until someone ends it.
        signal.signal(signal.SIGTTIN, signal.SIG_IGN)
    argv = list(sys.argv[1:] if argv is None else argv)
    common, rest = common_options().parse_known_args(argv)
    args = build_parser().parse_args(rest)
    for key in ("db", "workspace", "json", "agents_dir"):
        if getattr(common, key):
            setattr(args, key, getattr(common, key))
    if getattr(args, "workflow", "") is None:  # a command taking a workflow was given none
        args.workflow = args.app_workflow
    try:
        return dispatch(args)
    except OrchestratorError as error:
        print(f"orchestrator: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("orchestrator: interrupted", file=sys.stderr)
        return EXIT_ABORTED
    except BrokenPipeError:  # the reader of our output went away (`| head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    except Exception as error:  # the last line of defence: no traceback reaches a user
        if os.environ.get("ORCHESTRATOR_DEBUG"):
            raise
        print(f"orchestrator: internal error: {type(error).__name__}: {error}\n"
              "Set ORCHESTRATOR_DEBUG=1 to see the traceback, and please report it.",
              file=sys.stderr)
        return EXIT_USAGE


def workspace_of(args: argparse.Namespace) -> Path:
    """The workspace folder, checked to exist."""
    path = Path(args.workspace or Path.cwd()).expanduser().resolve()
    if not path.is_dir():
        raise OrchestratorError(f"workspace {path} is not a folder")
    return path


def dispatch(args: argparse.Namespace) -> int:
    """Run the subcommand named by `args`."""
    workspace = workspace_of(args)
    db_path = resolve_db_path(workspace, args.db)
    if args.group is None:
        from orchestrator_tui.ui.app import run_app

        return run_app(workspace, db_path, workflow=args.app_workflow,
                       agent_dirs=args.agents_dir or ())
    if args.group == "serve":
        from orchestrator_tui.ui.serve import serve

        serve(workspace, db_path, host=args.host, port=args.port, workflow=args.workflow)
        return EXIT_OK
    if args.group == "run":
        from orchestrator_tui.headless import run_intent

        return asyncio.run(run_intent(args, workspace, db_path))
    if args.group == "resume":
        from orchestrator_tui.headless import resume_session

        return asyncio.run(resume_session(args, workspace, db_path))
    context = commands.CommandContext(db_path=db_path, workspace=workspace,
                                      agent_dirs=tuple(args.agents_dir or ()))
    result = asyncio.run(commands.execute(args, context))
    if args.json:
        print(json.dumps(result.data, indent=2, default=str))
    else:
        print(result.text)
    return EXIT_OK if result.ok else EXIT_FAILED
