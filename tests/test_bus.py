"""The message bus on a real database file: ordering, routing, retries, context, crashes."""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from orchestrator_tui.engine.bus import Bus, publish_event
from orchestrator_tui.store import bus, bus_events, bus_rules, context
from orchestrator_tui.store.bus import Outgoing
from orchestrator_tui.store.bus_rules import BusError
from orchestrator_tui.store.context import ContextConflict
from orchestrator_tui.store.writer import Writer


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A migrated database file."""
    return tmp_path / "state.db"


@pytest.fixture(autouse=True)
def _migrated(db: Path) -> None:
    async def open_close() -> None:
        await (await Bus.open(db)).close()
    asyncio.run(open_close())


def connect(db: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False, timeout=15)
    conn.execute("PRAGMA busy_timeout = 15000")
    return conn


def count(db: Path, where: str = "1") -> int:
    with connect(db) as conn:
        return int(conn.execute(f"SELECT count(*) FROM messages WHERE {where}").fetchone()[0])


def msg(sender: str, to: str, payload: object, priority: str = "normal",
        kind: str = "agent", type: str = "note") -> Outgoing:
    return Outgoing(sender, to, type, json.dumps(payload), priority, kind)


def test_priority_then_fifo_under_concurrent_senders(db: Path) -> None:
    conn = connect(db)
    bus.register(conn, "sink")
    priorities = list(bus_rules.PRIORITIES)

    def sender(name: str) -> None:
        own, rng = connect(db), random.Random(name)
        for batch in range(10):
            bus.send_many(own, [msg(name, "sink", {"seq": batch * 5 + i},
                                    rng.choice(priorities)) for i in range(5)])
        own.close()

    threads = [threading.Thread(target=sender, args=(f"s{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    got = bus.receive(conn, "sink", 100) + bus.receive(conn, "sink", 1000)
    assert len(got) == 300
    order = [(bus_rules.PRIORITIES[m.priority], m.id) for m in got]
    assert order == sorted(order)
    for name in (f"s{i}" for i in range(6)):
        for priority in priorities:
            seqs = [json.loads(m.payload)["seq"] for m in got
                    if m.sender == name and m.priority == priority]
            assert seqs == sorted(seqs)
    assert bus.receive(conn, "sink", 10) == []


def test_capability_routing_least_loaded_then_success_rate(db: Path) -> None:
    conn = connect(db)
    for name in ("alpha", "beta", "gamma"):
        bus.register(conn, name, capabilities=["build"])
    bus.register(conn, "delta", capabilities=["review"])
    bus.deactivate(conn, "gamma")
    now = time.time()
    conn.executemany("INSERT INTO tasks (session_id, id, kind, agent, state, updated_at) "
                     "VALUES ('s', ?, 'agent', ?, ?, ?)",
                     [("t1", "alpha", "failed", now), ("t2", "beta", "succeeded", now),
                      ("t3", "gamma", "succeeded", now)])
    first = bus.send(conn, msg("lead", "build", {"n": 1}, kind="capability"))
    assert first.agents == ("beta",)  # equal load: the better success rate
    second = bus.send(conn, msg("lead", "build", {"n": 2}, kind="capability"))
    assert second.agents == ("alpha",)  # beta now carries one more message
    batch = bus.send_many(conn, [msg("lead", "build", {"n": n}, kind="capability")
                                 for n in range(4)])
    assert sorted(s.agents[0] for s in batch) == ["alpha", "alpha", "beta", "beta"]
    dead = bus.send(conn, msg("lead", "deploy", {}, kind="capability"))
    assert dead.agents == () and "deploy" in (dead.reason or "")
    assert count(db, "state = 'dead_letter'") == 1
    everyone = bus.send(conn, msg("lead", "*", {"all": True}, kind="broadcast"))
    assert everyone.agents == ("alpha", "beta", "delta")


def test_ack_retry_and_dead_letter(db: Path) -> None:
    conn = connect(db)
    bus.register(conn, "worker")
    bus.register(conn, "other")
    sent = bus.send_many(conn, [msg("x", "worker", {"i": 1}), msg("x", "ghost", {"i": 2})],
                         max_attempts=2)
    assert sent[1].reason and "ghost" in sent[1].reason
    with pytest.raises(BusError, match="not delivered yet"):
        bus.ack(conn, "worker", [sent[0].ids[0]])
    [first] = bus.receive(conn, "worker", 5)
    with pytest.raises(BusError, match="not to 'other'"):
        bus.ack(conn, "other", [first.id])
    assert bus.fail(conn, "worker", first.id, "disk busy") == "failed"
    [again] = bus.receive(conn, "worker", 5)
    assert again.id == first.id and again.attempts == 2
    assert bus.fail(conn, "worker", again.id, "still busy") == "dead_letter"
    assert bus.receive(conn, "worker", 5) == []
    [row] = bus.messages(conn, state="dead_letter", agent="worker")
    assert "failed 2 times" in (row.reason or "") and "still busy" in (row.reason or "")
    ok = bus.send(conn, msg("x", "worker", {"i": 3}))
    [got] = bus.receive(conn, "worker")
    assert bus.ack(conn, "worker", [got.id, got.id]) == [ok.ids[0]]
    assert bus.ack(conn, "worker", [got.id]) == []
    with pytest.raises(BusError, match="no message 999"):
        bus.ack(conn, "worker", [999])


def test_visibility_timeout_redelivers_then_dead_letters(db: Path) -> None:
    conn = connect(db)
    bus.register(conn, "slow")
    bus.send_many(conn, [msg("x", "slow", {"i": 1})], max_attempts=2)
    [first] = bus.receive(conn, "slow", visibility=0.05)
    assert bus.receive(conn, "slow", visibility=0.05) == []  # still invisible
    time.sleep(0.1)
    [second] = bus.receive(conn, "slow", visibility=0.05)
    assert second.id == first.id and second.attempts == 2
    time.sleep(0.1)
    assert bus.receive(conn, "slow") == []
    [dead] = bus.messages(conn, state="dead_letter")
    assert "not acknowledged after 2 deliveries" in (dead.reason or "")


def test_compare_and_set_conflicts_and_history(db: Path) -> None:
    conn = connect(db)
    first = context.context_set(conn, "s1", "plan", '{"step": 1}', "a", expect_version=0)
    assert first.version == 1
    with pytest.raises(ContextConflict, match=r"version 1 .*written by a.*not the expected 0"):
        context.context_set(conn, "s1", "plan", '{"step": 9}', "b", expect_version=0)
    context.context_set(conn, "s1", "plan", '{"step": 2}', "b", expect_version=1)
    with pytest.raises(ContextConflict):
        context.context_set(conn, "s1", "plan", '{"step": 3}', "c", expect_version=1)
    assert [(v.version, v.written_by) for v in context.context_history(conn, "s1", "plan")] == \
        [(1, "a"), (2, "b")]
    assert context.context_get(conn, "s2", "plan") is None

    def bump(name: str) -> None:
        own = connect(db)
        done = 0
        while done < 10:
            current = context.context_get(own, "s1", "counter")
            value = json.loads(current.value) if current else 0
            try:
                context.context_set(own, "s1", "counter", json.dumps(value + 1), name,
                                expect_version=current.version if current else 0)
                done += 1
            except ContextConflict:
                continue
        own.close()

    threads = [threading.Thread(target=bump, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    final = context.context_get(conn, "s1", "counter")
    assert final is not None and json.loads(final.value) == 40 and final.version == 40


@pytest.mark.parametrize(("payload", "words"), [
    ("x" * (bus_rules.PAYLOAD_LIMIT + 1), "over the limit"),
    ('{"a": ', "not valid JSON"),
    ("NaN", "not valid JSON"),
    (b"\x89PNG\r\n\x1a\n\x00", "not UTF-8"),
    ("\udcff", "not UTF-8"),
])
def test_bad_payloads_are_refused_and_nothing_is_stored(db: Path, payload: str | bytes,
                                                        words: str) -> None:
    conn = connect(db)
    bus.register(conn, "r")
    good = msg("x", "r", {"fine": True})
    bad = Outgoing("x", "r", "blob", payload)
    with pytest.raises(BusError, match=f"message 2 of 3 to 'r' .type 'blob'.: payload .*{words}"):
        bus.send_many(conn, [good, bad, good])
    with pytest.raises(BusError, match=words):
        context.context_set(conn, "s", "k", payload, "x")
    with pytest.raises(BusError, match=words):
        bus_events.publish(conn, "x", "evt", payload)
    assert count(db) == 0
    assert conn.execute("SELECT count(*) FROM context").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM bus_events").fetchone()[0] == 0


RECEIVER = """
import os, signal, sqlite3, sys
from orchestrator_tui.store import bus
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=15)
got = bus.receive(conn, "r", 3, visibility=0.3)
print(" ".join(str(m.id) for m in got), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""

KILLED_SENDER = """
import os, signal, sqlite3, sys
from orchestrator_tui.store import bus, bus_rules
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=15)
def body(db):
    bus.send_many(db, [bus.Outgoing("k", "r", "t", '{"lost": true}')] * 5)
    os.kill(os.getpid(), signal.SIGKILL)
bus_rules.transaction(conn, body)
"""


def test_messages_survive_sigkill_and_are_processed_once(db: Path) -> None:
    conn = connect(db)
    bus.register(conn, "r")
    bus.send_many(conn, [msg("x", "r", {"n": n}) for n in range(8)])
    killed = subprocess.run([sys.executable, "-c", RECEIVER, str(db)], capture_output=True,
                            text=True, timeout=30, check=False)
    assert killed.returncode == -9
    taken = [int(i) for i in killed.stdout.split()]
    assert len(taken) == 3
    half = subprocess.run([sys.executable, "-c", KILLED_SENDER, str(db)], timeout=30,
                          check=False)
    assert half.returncode == -9
    assert count(db) == 8  # the killed batch left nothing behind
    processed: list[int] = []
    deadline = time.monotonic() + 20
    while len(processed) < 8 and time.monotonic() < deadline:
        got = bus.receive(conn, "r", 4)
        processed += bus.ack(conn, "r", [m.id for m in got])
        if not got:
            time.sleep(0.05)
    assert sorted(processed) == list(range(1, 9))
    assert len(set(processed)) == 8
    assert count(db, "state = 'acknowledged'") == 8
    redelivered = conn.execute("SELECT id FROM messages WHERE attempts = 2").fetchall()
    assert sorted(r[0] for r in redelivered) == sorted(taken)


def test_events_reach_subscribers_through_the_engine_writer(db: Path) -> None:
    conn = connect(db)
    bus.register(conn, "watcher", events=["task_completed"])
    bus.register(conn, "all", events=["*"])
    bus.register(conn, "deaf")

    async def engine_side() -> tuple[int, int]:
        writer = Writer(db)
        await writer.start()
        try:
            return await publish_event(writer, "task_completed", {"task": "t1"},
                                       session_id="s1")
        finally:
            await writer.close()

    event_id, reached = asyncio.run(engine_side())
    assert reached == 2
    [seen] = bus.receive(conn, "watcher")
    assert seen.type == "task_completed" and json.loads(seen.payload) == {"task": "t1"}
    assert bus.receive(conn, "deaf") == []
    assert bus_events.events(conn)[0]["id"] == event_id
    context.record_progress(conn, "watcher", 40, "half", session_id="s1", task_id="t2")
    assert context.latest_progress(conn, "s1")["t2"]["percent"] == 40
    assert bus.receive(conn, "all", 5)[-1].type == "progress"


def test_async_bus_waits_for_a_message(db: Path) -> None:
    async def scenario() -> list[str]:
        async with await Bus.open(db) as one, await Bus.open(db) as two:
            await one.register("listener")
            waiting = asyncio.create_task(two.receive("listener", 5, wait=10))
            await asyncio.sleep(0.1)
            await one.send(msg("x", "listener", {"hi": 1}))
            got = await waiting
            await two.ack("listener", [m.id for m in got])
            return [m.payload for m in got]
    assert asyncio.run(scenario()) == ['{"hi": 1}']
