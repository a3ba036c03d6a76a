"""App-level messages: what screens and workers tell the app (messages up)."""

from __future__ import annotations

from textual.message import Message

from orchestrator_tui.commands import CommandResult


class StartIntent(Message):
    """The user asked to run an intent of the workflow."""

    def __init__(self, intent: str, why: str = "") -> None:
        super().__init__()
        self.intent = intent
        self.why = why


class RunStarted(Message):
    """A session was recorded and its run begins."""

    def __init__(self, session_id: str, intent: str) -> None:
        super().__init__()
        self.session_id = session_id
        self.intent = intent


class RunFinished(Message):
    """A session of this app ended."""

    def __init__(self, session_id: str, state: str, seconds: float) -> None:
        super().__init__()
        self.session_id = session_id
        self.state = state
        self.seconds = seconds


class SessionControl(Message):
    """The user asked to pause, resume or abort (the confirmed abort included)."""

    def __init__(self, action: str) -> None:
        super().__init__()
        self.action = action


class FocusSession(Message):
    """Show this session on the dashboard, messages and graph screens."""

    def __init__(self, session_id: str, mode: str | None = None) -> None:
        super().__init__()
        self.session_id = session_id
        self.mode = mode
        """A mode to switch to as well, or None to stay."""


class CommandDone(Message):
    """A command of the command bar finished (or was refused)."""

    def __init__(self, line: str, result: CommandResult) -> None:
        super().__init__()
        self.line = line
        self.result = result


class SettingsChanged(Message):
    """Settings were saved; the app applies what it can at once (theme, parallel limit)."""

    def __init__(self, values: dict[str, str]) -> None:
        super().__init__()
        self.values = values
