"""Free text to an intent of the workflow (only when it is clear), and what the sessions table
says about past runs: recent intents, favourites, durations.

A text matches an intent by its exact name, one of its examples, or one unambiguous keyword;
failing those, by a naive-Bayes model trained on the workflow's examples and on every phrase
the user confirmed (typed, then started an intent), when its probability is high enough. A
figure about the past is computed from recorded sessions or is absent.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from orchestrator_tui.core.models import IntentSpec
from orchestrator_tui.engine.learning import PlanForecast
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
    probability: float | None = None
    """The learned model's probability of `intent` (None: no model given or no intent)."""


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


LEARNED_THRESHOLD = 0.6
"""The learned model's probability an intent needs to be chosen without a rule matching."""
CONFIRMED_WEIGHT = 2
"""How many examples one confirmed phrase counts as."""
_STOPWORDS = frozenset(("a", "an", "the", "this", "that", "my", "our", "me", "i", "it", "to",
                        "of", "for", "in", "on", "and", "or", "with", "please", "some", "all",
                        "is", "are", "be", "do", "can", "you"))


def _terms(text: str) -> list[str]:
    """The words of a text that carry meaning, cut to a common stem (`failing` -> `fail`)."""
    return [_stem(word) for word in _words(text) if word not in _STOPWORDS]


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


@dataclass(frozen=True, slots=True)
class IntentModel:
    """Multinomial naive Bayes over words, with a uniform prior over intents."""

    counts: dict[str, Counter[str]]
    totals: dict[str, int]
    vocabulary: int
    confirmed: int
    """Confirmed phrases it learned from."""
    phrases: dict[str, Counter[str]]
    """Per confirmed phrase (its words joined by spaces): how often each intent was chosen."""
    known: frozenset[str]
    """Every word seen in training; other words say nothing and are left out."""

    def probabilities(self, text: str) -> list[tuple[str, float]]:
        """Each intent's probability for `text`, most likely first (empty: no known word)."""
        terms = [term for term in _terms(text) if term in self.known]
        if not terms or not self.counts:
            return []
        scores = {name: sum(math.log((self.counts[name][term] + 1)
                                     / (self.totals[name] + self.vocabulary)) for term in terms)
                  for name in self.counts}
        top = max(scores.values())
        weights = {name: math.exp(score - top) for name, score in scores.items()}
        total = sum(weights.values())
        return sorted(((name, weight / total) for name, weight in weights.items()),
                      key=lambda item: (-item[1], item[0]))


def train_intents(intents: Mapping[str, IntentSpec],
                  confirmed: Iterable[tuple[str, str]] = ()) -> IntentModel:
    """Learn from each intent's name, description and examples and from confirmed
    (phrase, intent) pairs (those of intents no longer in the workflow are ignored)."""
    counts: dict[str, Counter[str]] = {name: Counter() for name in intents}
    for name, spec in intents.items():
        for text in (name.replace("-", " ").replace("_", " "), spec.description,
                     *spec.examples):
            counts[name].update(_terms(text))
    learned = 0
    phrases: dict[str, Counter[str]] = {}
    for phrase, name in confirmed:
        if name in counts:
            for _ in range(CONFIRMED_WEIGHT):
                counts[name].update(_terms(phrase))
            phrases.setdefault(" ".join(_words(phrase)), Counter())[name] += 1
            learned += 1
    known = frozenset(term for tally in counts.values() for term in tally)
    return IntentModel(counts, {name: sum(tally.values()) for name, tally in counts.items()},
                       len(known) or 1, learned, phrases, known)


def recognise(text: str, intents: Mapping[str, IntentSpec],
              model: IntentModel | None) -> IntentMatch:
    """The exact intent name; else a phrase the user confirmed for one intent at least twice
    (more often than for any other); else `match_intent`'s rules; else the learned model when
    its probability reaches `LEARNED_THRESHOLD`. The match carries the model's probability."""
    found = match_intent(text, intents)
    if model is None:
        return found
    ranked = model.probabilities(text)
    chance = dict(ranked)
    chosen = model.phrases.get(" ".join(_words(text)), Counter()).most_common(2)
    if found.reason != "exact intent name" and chosen and chosen[0][1] >= 2 \
            and (len(chosen) == 1 or chosen[0][1] > chosen[1][1]):
        name, times = chosen[0]
        return IntentMatch(name, f"you chose it for this text {times} times", (),
                           chance.get(name))
    if found.intent is not None:
        return IntentMatch(found.intent, found.reason, found.candidates,
                           chance.get(found.intent))
    if ranked and ranked[0][1] >= LEARNED_THRESHOLD:
        name, probability = ranked[0]
        source = f"learned from {model.confirmed} confirmed phrase(s) and the examples" \
            if model.confirmed else "learned from the examples"
        return IntentMatch(name, source, (), probability)
    return found


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


def forecast_estimate(result: PlanForecast | None) -> str | None:
    """`~8.6 s (80%: 4.0 s to 21.2 s, learned)`: the plan's forecast from recorded task
    durations, or None when some task has no estimate yet."""
    if result is None or result.eta is None or result.eta_low is None \
            or result.eta_high is None:
        return None
    return (f"~{seconds(result.eta)} ({result.coverage:.0%}: {seconds(result.eta_low)} to "
            f"{seconds(result.eta_high)}, learned)")


def estimate_text(history: IntentHistory | None) -> str:
    """`~12.3 s (median of 3 completed runs)`, or `no history yet`."""
    if history is None or history.median_seconds is None:
        return "no history yet"
    runs = "run" if history.completed == 1 else "runs"
    return f"~{seconds(history.median_seconds)} (median of {history.completed} completed {runs})"
