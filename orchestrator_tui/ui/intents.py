"""Free text to an intent of the workflow (only when it is clear), and what the sessions table
says about past runs: recent intents, favourites, durations.

Nothing here guesses: a text matches an intent by its exact name, one of its examples, or one
unambiguous keyword; a figure about the past is computed from recorded sessions or is absent.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from orchestrator_tui.core.models import IntentSpec
from orchestrator_tui.store.queries import SessionRow
from orchestrator_tui.views import seconds

STANDARD_INTENTS = ("analyze", "build", "research", "document", "fix", "improve", "deploy",
                    "report")
"""The eight operations of the menu, on keys 1 to 8."""

_WORD = re.compile(r"[a-z0-9]+")
_SHORT_SUFFIXES = ("", "s", "es", "ed", "ing", "er", "ers")


@dataclass(frozen=True, slots=True)
class IntentMatch:
    """The outcome of matching a text: the intent (or None) and why."""

    intent: str | None
    reason: str
    candidates: tuple[str, ...] = ()
    """The intents that matched equally well, when the text was ambiguous."""


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _mentions(word: str, name: str) -> bool:
    """Whether `word` is a form of the intent name: `fixing` of fix, `analysis` of analyze."""
    if len(name) >= 5:
        return word.startswith(name[:5])
    return any(word == name + suffix for suffix in _SHORT_SUFFIXES)


def match_intent(text: str, intents: Mapping[str, IntentSpec]) -> IntentMatch:
    """Match free text to one intent: by exact name, by an example, or by one clear keyword.

    Returns an `IntentMatch` whose `intent` is None when the text matches none or several.
    """
    words = _words(text)
    if not words:
        return IntentMatch(None, "type what you need, or an intent name")
    joined = " ".join(words)
    if joined in intents:
        return IntentMatch(joined, "exact intent name")
    by_example = sorted(name for name, spec in intents.items()
                        if any(" ".join(_words(example)) == joined for example in spec.examples))
    if len(by_example) == 1:
        return IntentMatch(by_example[0], "one of its examples")
    keyword_hits: dict[str, str] = {}
    for name in intents:
        base = name.replace("-", " ").replace("_", " ").split()[0]
        for word in words:
            if _mentions(word, base):
                keyword_hits.setdefault(name, word)
    if len(keyword_hits) == 1:
        name, word = next(iter(keyword_hits.items()))
        return IntentMatch(name, f"keyword “{word}”")
    if keyword_hits:
        found = tuple(sorted(keyword_hits))
        return IntentMatch(None, "more than one intent is named: " + ", ".join(found), found)
    return IntentMatch(None, "cannot tell which intent this is", tuple(intents))


def recent_intents(sessions: Sequence[SessionRow], count: int = 3) -> list[str]:
    """The last distinct intents run, newest first (`sessions` newest first)."""
    seen: list[str] = []
    for session in sessions:
        if session.intent not in seen:
            seen.append(session.intent)
        if len(seen) == count:
            break
    return seen


def favourite_intents(sessions: Iterable[SessionRow], count: int = 3) -> list[tuple[str, int]]:
    """The intents run most often, with how many times (ties: the more recent first)."""
    tally = Counter(session.intent for session in sessions)
    return [(name, runs) for name, runs in tally.most_common(count)]


@dataclass(frozen=True, slots=True)
class IntentHistory:
    """What the recorded sessions say about one intent."""

    intent: str
    finished: int
    completed: int
    median_seconds: float | None
    """Median duration of the completed runs, or None without any."""

    @property
    def success_rate(self) -> float | None:
        """Completed among finished runs, or None without finished runs."""
        return self.completed / self.finished if self.finished else None


def intent_history(sessions: Iterable[SessionRow], intent: str) -> IntentHistory:
    """Finished and completed runs of `intent`, and the median duration of completed ones."""
    finished = [s for s in sessions if s.intent == intent and s.finished_at is not None]
    durations = [s.finished_at - s.created_at for s in finished
                 if s.state == "COMPLETED" and s.finished_at is not None]
    median = statistics.median(durations) if durations else None
    return IntentHistory(intent, len(finished), len(durations), median)


def estimate_text(history: IntentHistory | None) -> str:
    """`~12.3 s (median of 3 completed runs)`, or `no history yet`."""
    if history is None or history.median_seconds is None:
        return "no history yet"
    runs = "run" if history.completed == 1 else "runs"
    return f"~{seconds(history.median_seconds)} (median of {history.completed} completed {runs})"
