"""Reading workflow files and planning an intent from one: the file I/O around `core.workflow`."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from orchestrator_tui.core.errors import WorkflowError
from orchestrator_tui.core.models import Workflow
from orchestrator_tui.core.plan import Plan
from orchestrator_tui.core.workflow import build_plan, parse_workflow
from orchestrator_tui.engine.registry import Registry, load_registry
from orchestrator_tui.engine.shipped import default_workflow


def workflow_path(workflow_file: str | None) -> Path:
    """The workflow file to use: the one given, else the shipped default."""
    return Path(workflow_file).expanduser().resolve() if workflow_file else default_workflow()


def read_workflow(path: Path, known_agents: Collection[str] | None = None) -> Workflow:
    """Read and validate a workflow file; each intent's plan is checked when it is built.

    Raises:
        WorkflowError: unreadable or invalid file, with its name and the reason.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise WorkflowError(f"cannot read the workflow: {reason}", file=str(path)) from error
    return parse_workflow(text, source=str(path), known_agents=known_agents, check_plans=False)


def load_plan(intent: str, workflow_file: str | None, workspace: Path,
              agents_dirs: list[Path],
              archived: Collection[str] = ()) -> tuple[Plan, Registry, str]:
    """Read the workflow and the agents, and build the validated plan of `intent`.

    The agents named in `archived` are marked so; binding a task to one of them fails.
    """
    path = workflow_path(workflow_file)
    registry = load_registry(workspace, agents_dirs, archived)
    workflow = read_workflow(path, known_agents=set(registry.agents))
    return build_plan(workflow, intent.lower()), registry, str(path)
