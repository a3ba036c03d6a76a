"""The one grammar of commands, shared by the app's command bar and the `orchestrator` CLI.

Each module of this package adds one group of commands; importing the package registers them.
"""

from orchestrator_tui.commands import session
from orchestrator_tui.commands.grammar import (
    CommandContext,
    CommandError,
    CommandResult,
    add_command_parsers,
    execute,
    is_command,
    parse_slash,
    slash_parser,
)

__all__ = ["CommandContext", "CommandError", "CommandResult", "add_command_parsers", "execute",
           "is_command", "parse_slash", "session", "slash_parser"]
