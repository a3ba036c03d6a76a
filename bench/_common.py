"""Shared helpers of the benchmark scripts: medians, tables and `--json` output."""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table


def parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the `--json` and `--runs` options every bench takes."""
    args = argparse.ArgumentParser(description=description)
    args.add_argument("--json", action="store_true", help="print one JSON object of figures")
    args.add_argument("--runs", type=int, default=5, help="repetitions (median reported)")
    return args


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
