"""A soak of crash recovery: a 200-task session (a few tasks not idempotent) killed by SIGKILL
at eight random instants, each followed by `orchestrator resume` in a new process, until it
completes; then the invariants of `bench/recovery.py` (every task done exactly once, nothing
run again after its committed success, non-idempotent tasks never re-run without a
decision, no agent process left, final states those of a run without crashes).

The driver decides on an interrupted task the way a careful user would: `retry` when the
ledger shows its command never ran, else `skip`.
"""

from __future__ import annotations

from pathlib import Path

from bench.recovery import Crashes


def test_eight_kills_at_random_instants_lose_and_repeat_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "soak"
    folder.mkdir()
    soak = Crashes(folder, tasks=200, kills=8, parallel=8, seconds=0.3, delay=(0.1, 0.5),
                   seed=20)
    soak.run()
    figures = soak.check()
    assert figures["kills"] == 8, "the session completed before every kill"
    assert figures["lost"] == figures["completed_twice"] == figures["leftover_processes"] == 0
