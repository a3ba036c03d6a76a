"""Shared helpers of the benchmark scripts: medians, tables and `--json` output."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table


def parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the `--json` and `--runs` options every bench takes."""
    args = argparse.ArgumentParser(description=description)
    args.add_argument("--json", action="store_true", help="print one JSON object of figures")
    args.add_argument("--runs", type=int, default=5, help="repetitions (median reported)")
    return args


@contextlib.contextmanager
def stdout_to_stderr(enabled: bool) -> Iterator[None]:
    """While measuring for `--json`, send what anything writes to standard output (helper
    processes such as Ray's included, which inherit the descriptor) to standard error, so
    that the JSON object is all the output holds."""
    if not enabled:
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def median(values: Sequence[float]) -> float:
    """The median of measured values."""
    return statistics.median(values)


def report(title: str, rows: list[tuple[str, str, str]], figures: dict[str, Any],
           as_json: bool) -> None:
    """Print a table of (figure, value, note) rows, or the figures as one JSON object."""
    if as_json:
        print(json.dumps(figures, indent=2))
        return
    table = Table(title=title, title_justify="left")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("note")
    for row in rows:
        table.add_row(*row)
    Console().print(table)
