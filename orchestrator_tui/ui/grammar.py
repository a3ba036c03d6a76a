"""The command grammar as the app sees it: command words, their help and arguments, taken from
the one parser in `orchestrator_tui.commands`, and a suggester that completes those words."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from functools import cache

from textual.suggester import Suggester

from orchestrator_tui.commands import slash_parser


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """One command of the grammar, such as `parallel set-limit LIMIT`."""

    words: tuple[str, ...]
    help: str
    arguments: tuple[str, ...]
    """Positional argument names; optional ones in brackets, e.g. `[session]`."""
    needs_argument: bool

    @property
    def line(self) -> str:
        """The command words, e.g. `parallel set-limit`."""
        return " ".join(self.words)

    @property
    def usage(self) -> str:
        """The command with its arguments, e.g. `/parallel set-limit LIMIT`."""
        return "/" + " ".join((*self.words, *self.arguments))


def _subcommands(parser: argparse.ArgumentParser) -> argparse._SubParsersAction | None:  # type: ignore[type-arg]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def _arguments(parser: argparse.ArgumentParser) -> tuple[tuple[str, ...], bool]:
    names, required = [], False
    for action in parser._actions:
        if action.option_strings or isinstance(action, argparse._SubParsersAction):
            continue
        optional = action.nargs in ("?", "*")
        names.append(f"[{action.dest}]" if optional else action.dest.upper())
        required = required or not optional
    return tuple(names), required


@cache
def command_specs() -> tuple[CommandSpec, ...]:
    """Every leaf command of the grammar, in the parser's order."""
    specs: list[CommandSpec] = []

    def walk(parser: argparse.ArgumentParser, words: tuple[str, ...], text: str) -> None:
        sub = _subcommands(parser)
        if sub is None:
            arguments, required = _arguments(parser)
            specs.append(CommandSpec(words, text, arguments, required))
            return
        helps = {choice.dest: choice.help or "" for choice in sub._choices_actions}
        for name, child in sub.choices.items():
            walk(child, (*words, name), helps.get(name, ""))

    walk(slash_parser(), (), "")
    return tuple(specs)


def completions(words: tuple[str, ...]) -> list[str]:
    """The command words that may follow `words` (the groups when `words` is empty)."""
    depth = len(words)
    found: list[str] = []
    for spec in command_specs():
        if spec.words[:depth] == words and len(spec.words) > depth \
                and spec.words[depth] not in found:
            found.append(spec.words[depth])
    return found


class CommandSuggester(Suggester):
    """Completes the command word being typed from the grammar: `/par` → `/parallel`."""

    def __init__(self) -> None:
        super().__init__(use_cache=True, case_sensitive=False)

    async def get_suggestion(self, value: str) -> str | None:
        """The value with its last, partly typed command word completed, or None."""
        body = value.lstrip()
        lead = value[: len(value) - len(body)]
        prefix = ""
        if body[:1] in ("/", ":"):
            prefix, body = body[0], body[1:]
        parts = body.split(" ")
        typed, partial = tuple(part for part in parts[:-1] if part), parts[-1]
        if not partial:
            return None
        for word in completions(typed):
            if word.startswith(partial) and word != partial:
                done = " ".join((*typed, word))
                return f"{lead}{prefix}{done}"
        return None
