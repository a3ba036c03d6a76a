"""Patterns in recorded history, pure: error signatures, what usually follows an intent,
percentiles and smoothed success rates."""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Sequence

_PATH = re.compile(r"(?:[A-Za-z]:)?(?:[\w.~-]*/)+[\w.-]*")
_HEX = re.compile(r"\b(?:0x)?[0-9a-fA-F]{8,}\b")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_SPACE = re.compile(r"\s+")
SIGNATURE_LENGTH = 120


def error_signature(error: str) -> str:
    """The error with paths, long hex ids and numbers replaced, so that recurrences of the
    same failure group together: `exit 2 in /a/b.py line 7` -> `exit <n> in <path> line <n>`.
    Only the first non-empty line counts (two when
    the first ends with a colon)."""
    lines = [part.strip() for part in error.splitlines() if part.strip()]
    line = " ".join(lines[:2]) if lines and lines[0].endswith(":") else \
        (lines[0] if lines else "")
    line = _PATH.sub("<path>", line)
    line = _HEX.sub("<id>", line)
    line = _NUMBER.sub("<n>", line)
    return _SPACE.sub(" ", line)[:SIGNATURE_LENGTH] or "(no error text)"


def usual_next(intents_in_order: Sequence[str], intent: str) -> list[tuple[str, int]]:
    """What followed `intent` in a sequence of intents run oldest first, most often first
    (ties: the one seen first), with counts."""
    followers = Counter(after for before, after in itertools.pairwise(intents_in_order)
                        if before == intent)
    return followers.most_common()


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The `fraction` quantile of `values` (linear between ranks), None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def smoothed_rate(successes: int, runs: int) -> float:
    """Laplace-smoothed success rate: (successes + 1) / (runs + 2)."""
    return (successes + 1) / (runs + 2)


def most_common(values: Sequence[int]) -> tuple[int, int] | None:
    """The value seen most often and how often (ties: the larger value), None when empty."""
    if not values:
        return None
    tally = Counter(values)
    best = max(tally.items(), key=lambda item: (item[1], item[0]))
    return best
