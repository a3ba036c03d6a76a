"""The one grammar of commands, shared by the app's command bar and the `orchestrator` CLI.

Each module of this package adds one group of commands; importing the package registers them,
and `ORDER` is the order in which help and completion list them.
"""

from orchestrator_tui.commands import (
    agents,
    checkpoint,
    comm,
    context,
    database,
    doctor,
    learn,
    session,
    settings,
)
from orchestrator_tui.commands.grammar import (
    PARSERS,
    CommandContext,
    CommandError,
    CommandResult,
    add_command_parsers,
    execute,
    is_command,
    parse_slash,
    slash_parser,
)

ORDER = (session, checkpoint, agents, comm, context, learn, settings, database, doctor)
PARSERS.sort(key=lambda adder: [module.__name__ for module in ORDER].index(adder.__module__))

__all__ = ["CommandContext", "CommandError", "CommandResult", "add_command_parsers", "execute",
           "is_command", "parse_slash", "slash_parser"]
