"""Errors whose message is written for the user: what went wrong and where."""

from __future__ import annotations


class OrchestratorError(Exception):
    """Base of every error the tool reports to a user without a traceback."""


class IllegalTransition(OrchestratorError):
    """A state change that the state machine does not allow; nothing was written."""

    def __init__(self, what: str, current: str, target: str, allowed: list[str]) -> None:
        self.what, self.current, self.target = what, current, target
        choices = ", ".join(allowed) if allowed else "none (it is final)"
        super().__init__(
            f"illegal transition of {what}: {current} -> {target}; from {current} the allowed "
            f"states are {choices}"
        )


class WorkflowError(OrchestratorError):
    """A workflow file that cannot be used, naming the file, intent and task."""

    def __init__(
        self, message: str, *, file: str | None = None, intent: str | None = None,
        task: str | None = None,
    ) -> None:
        self.file, self.intent, self.task = file, intent, task
        where = [part for part in (
            file,
            f"intent {intent!r}" if intent else None,
            f"task {task!r}" if task else None,
        ) if part]
        super().__init__(f"{': '.join(where)}: {message}" if where else message)


class CycleError(WorkflowError):
    """A plan whose dependencies form a cycle; `cycle` lists the tasks on it in order."""

    def __init__(self, cycle: list[str], *, file: str | None = None,
                 intent: str | None = None) -> None:
        self.cycle = cycle
        path = " -> ".join([*cycle, cycle[0]]) if cycle else "?"
        super().__init__(f"dependency cycle: {path}", file=file, intent=intent)


class StoreError(OrchestratorError):
    """The database cannot be opened, read or written; the message says which file and why."""


class CheckpointError(OrchestratorError):
    """A checkpoint that cannot be taken or restored; the message says which, where and why."""
