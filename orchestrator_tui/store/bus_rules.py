"""What every part of the message bus shares: its names and limits, the checks of what
is sent (names, payloads, priorities), and `transaction`, which opens `BEGIN IMMEDIATE`
(or joins the caller's transaction, as inside the engine's writer) and retries a lock
held past the busy timeout, so "database is locked" never reaches a user."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Callable
from typing import Any, TypeVar

from orchestrator_tui.core.errors import OrchestratorError

T = TypeVar("T")
PAYLOAD_LIMIT = 256 * 1024
PRIORITIES = {"critical": 0, "high": 1, "normal": 2, "low": 3}
PRIORITY_NAMES = {number: name for name, number in PRIORITIES.items()}
KINDS = ("agent", "capability", "broadcast")
OPEN_STATES = "('pending', 'delivered', 'failed')"
VISIBILITY_S = 30.0
MAX_ATTEMPTS = 5
ENGINE = "engine"
"""The engine's own name on the bus: always a known recipient."""
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:@/-]{0,127}")
_RETRY_BUSY_S = 60.0


class BusError(OrchestratorError):
    """A message, event or context value that cannot be used; says what and where."""


# -- validation --------------------------------------------------------------------------


def check_name(value: str, what: str) -> str:
    """A sender, recipient, capability or type name: letters, digits and `_.:@/-`."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise BusError(f"{what} {value!r} is not a valid name: use 1 to 128 letters, digits "
                       "and _ . : @ / - (starting with a letter, digit or _)")
    return value


def check_payload(payload: str | bytes, where: str) -> str:
    """Payload text checked to be UTF-8, at most 256 KiB and valid JSON; returned as text.

    Raises:
        BusError: naming `where` and what is wrong (binary, oversize, not JSON).
    """
    if isinstance(payload, bytes):
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError as error:
            raise BusError(f"{where}: payload is not UTF-8 text (byte 0x{payload[error.start]:02x}"
                           f" at offset {error.start}); send JSON text") from None
        size = len(payload)
    else:
        text = payload
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError as error:
            raise BusError(f"{where}: payload is not UTF-8 text (undecodable character at "
                           f"offset {error.start}); send JSON text") from None
    if size > PAYLOAD_LIMIT:
        raise BusError(f"{where}: payload is {size} bytes, over the limit of {PAYLOAD_LIMIT} "
                       "bytes (256 KiB); store large data in a file and send its path")
    if "\x00" in text:
        raise BusError(f"{where}: payload contains a NUL character; send JSON text")
    try:
        json.loads(text, parse_constant=_refuse_constant)
    except ValueError as error:
        raise BusError(f"{where}: payload is not valid JSON ({error})") from None
    return text


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def check_priority(priority: str, where: str) -> int:
    """The number of a priority name (critical 0 ... low 3)."""
    if priority not in PRIORITIES:
        raise BusError(f"{where}: unknown priority {priority!r}; use one of "
                       f"{', '.join(PRIORITIES)}")
    return PRIORITIES[priority]


# -- transactions ------------------------------------------------------------------------


def transaction(conn: sqlite3.Connection, body: Callable[[sqlite3.Connection], T]) -> T:
    """Run `body` in one `BEGIN IMMEDIATE` transaction (or in the caller's open one).

    A lock held by another process past the busy timeout is retried with back-off for up to
    a minute before the error is raised (for the caller to describe).
    """
    if conn.in_transaction:
        return body(conn)
    deadline, pause = time.monotonic() + _RETRY_BUSY_S, 0.01
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            if not _is_busy(error) or time.monotonic() > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.5)
            continue
        try:
            result = body(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return result


def _is_busy(error: sqlite3.Error) -> bool:
    name = str(getattr(error, "sqlite_errorname", ""))
    return name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in str(error)
