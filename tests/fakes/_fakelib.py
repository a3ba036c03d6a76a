"""What the fake agent CLIs share: the mode they play, their argv log, and JSON lines.

FAKE_AGENT_MODE chooses the behaviour:
  ok            the documented stream of a successful run, exit 0
  error_result  a stream whose result reports an error, exit 1 (gemini: 53)
  exit_nonzero  a line on stderr and exit FAKE_AGENT_EXIT (default 3), no result
  hang          the first event, then sleep until killed
  garbage       lines that are not JSON mixed into a successful stream
  slow          a successful stream with pauses between the events
  fail_once     error_result the first time (per FAKE_AGENT_ARGV_LOG), then ok
FAKE_AGENT_ARGV_LOG names a file that gets one JSON line per call: argv, cwd, task.
FAKE_AGENT_GATE names a file the fake waits for after its first tool use (so a test can look
at a run while the CLI is certainly still running).
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

NOT_JSON = ("warning: this line is not JSON", "{broken json", "[1, 2, 3]")


def record_call(argv: list[str]) -> int:
    """Append this call to the argv log; return how many calls came before it."""
    log = os.environ.get("FAKE_AGENT_ARGV_LOG")
    if not log:
        return 0
    path = Path(log)
    before = len(path.read_text().splitlines()) if path.exists() else 0
    with path.open("a") as out:
        out.write(json.dumps({"argv": argv, "cwd": str(Path.cwd()),
                              "task": os.environ.get("ORCHESTRATOR_TASK")}) + "\n")
    return before


def mode(calls_before: int) -> str:
    """The behaviour to play on this call."""
    chosen = os.environ.get("FAKE_AGENT_MODE", "ok")
    if chosen == "fail_once":
        return "error_result" if calls_before == 0 else "ok"
    return chosen


def new_id() -> str:
    """A session id like the real ones (a UUID)."""
    return str(uuid.uuid4())


def emit(event: dict[str, Any], pause: float = 0.0) -> None:
    """Write one JSON line and flush it, as the real CLIs do."""
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()
    if pause:
        time.sleep(pause)


def garbage(index: int) -> None:
    """Write one line that is not a JSON object."""
    sys.stdout.write(NOT_JSON[index % len(NOT_JSON)] + "\n")
    sys.stdout.flush()


def wait_for_gate() -> None:
    """Wait until the FAKE_AGENT_GATE file exists, if one is named."""
    gate = os.environ.get("FAKE_AGENT_GATE")
    while gate and not Path(gate).exists():
        time.sleep(0.02)


def hang() -> None:
    """Wait until killed."""
    while True:
        time.sleep(60)


def fail_exit() -> int:
    """Exit without a result, with a reason on stderr."""
    sys.stderr.write("fatal: the fake agent broke down\n")
    return int(os.environ.get("FAKE_AGENT_EXIT", "3"))


def usage_error(program: str, message: str) -> None:
    """Fail like a CLI parser: usage on stderr, exit 2."""
    sys.stderr.write(f"usage: {program} ...\n{program}: error: {message}\n")
    raise SystemExit(2)
