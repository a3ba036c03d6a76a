"""The command palette (Ctrl+P) lists the same commands as the command bar, from the grammar."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from orchestrator_tui.ui.grammar import CommandSpec, command_specs


class SlashCommands(Provider):
    """Every command of the grammar; choosing one runs it in the command bar (or types it
    there when it needs an argument, such as `parallel set-limit N`)."""

    def _open(self, spec: CommandSpec) -> None:
        opener = getattr(self.app, "action_command_bar", None)
        if opener is None:
            return
        if spec.needs_argument:
            opener(spec.line + " ")
        else:
            opener(spec.line, run=True)

    async def search(self, query: str) -> Hits:
        """Commands whose usage matches what was typed."""
        matcher = self.matcher(query.lstrip("/:"))
        for spec in command_specs():
            score = matcher.match(spec.usage)
            if score > 0:
                yield Hit(score, matcher.highlight(spec.usage), partial(self._open, spec),
                          help=spec.help)

    async def discover(self) -> Hits:
        """Every command, before anything is typed."""
        for spec in command_specs():
            yield DiscoveryHit(spec.usage, partial(self._open, spec), help=spec.help)
