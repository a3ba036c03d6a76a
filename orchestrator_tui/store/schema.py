"""The schema as an ordered list of forward migrations; `PRAGMA user_version` is the version."""

from __future__ import annotations

MIGRATIONS: list[str] = [
    # 1: sessions, tasks, attempts, transitions, control requests, settings, engines.
    """
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        intent TEXT NOT NULL,
        workflow TEXT NOT NULL,
        workspace TEXT NOT NULL,
        state TEXT NOT NULL,
        plan TEXT NOT NULL,
        parallel_limit INTEGER NOT NULL,
        max_concurrent INTEGER,
        boot_id TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        finished_at REAL
    );
    CREATE INDEX sessions_by_state ON sessions(state);
    CREATE TABLE tasks (
        session_id TEXT NOT NULL REFERENCES sessions(id),
        id TEXT NOT NULL,
        kind TEXT NOT NULL,
        agent TEXT,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        idempotent INTEGER NOT NULL DEFAULT 1,
        exit_code INTEGER,
        result TEXT,
        error TEXT,
        started_at REAL,
        finished_at REAL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (session_id, id)
    ) WITHOUT ROWID;
    CREATE TABLE attempts (
        id INTEGER PRIMARY KEY,
        session_id TEXT NOT NULL,
        task_id TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        boot_id TEXT NOT NULL,
        pid INTEGER,
        process_start REAL,
        started_at REAL NOT NULL,
        finished_at REAL,
        outcome TEXT,
        exit_code INTEGER,
        stdout TEXT,
        stderr TEXT,
        output_bytes INTEGER,
        UNIQUE (session_id, task_id, attempt)
    );
    CREATE TABLE transitions (
        id INTEGER PRIMARY KEY,
        session_id TEXT NOT NULL,
        task_id TEXT,
        from_state TEXT,
        to_state TEXT NOT NULL,
        reason TEXT NOT NULL,
        at REAL NOT NULL
    );
    CREATE INDEX transitions_by_session ON transitions(session_id, id);
    CREATE TABLE control (
        id INTEGER PRIMARY KEY,
        session_id TEXT NOT NULL,
        action TEXT NOT NULL,
        argument TEXT,
        requested_at REAL NOT NULL,
        handled_at REAL,
        outcome TEXT
    );
    CREATE INDEX control_open ON control(session_id) WHERE handled_at IS NULL;
    CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE engines (
        boot_id TEXT PRIMARY KEY,
        pid INTEGER NOT NULL,
        process_start REAL NOT NULL,
        started_at REAL NOT NULL,
        heartbeat_at REAL NOT NULL
    );
    """,
    # 2: what an agent CLI reports per attempt (runner, its session id, tokens, cost, turns),
    #    and checkpoints (a session's state plus a snapshot of the workspace files).
    """
    ALTER TABLE attempts ADD COLUMN runner TEXT;
    ALTER TABLE attempts ADD COLUMN agent_session TEXT;
    ALTER TABLE attempts ADD COLUMN tokens_in INTEGER;
    ALTER TABLE attempts ADD COLUMN tokens_out INTEGER;
    ALTER TABLE attempts ADD COLUMN cost_usd REAL;
    ALTER TABLE attempts ADD COLUMN turns INTEGER;
    CREATE TABLE checkpoints (
        id TEXT PRIMARY KEY,
        session_id TEXT,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        snapshot TEXT NOT NULL,
        state TEXT NOT NULL,
        reason TEXT NOT NULL,
        undo_of TEXT,
        size_bytes INTEGER,
        created_at REAL NOT NULL
    );
    CREATE INDEX checkpoints_by_session ON checkpoints(session_id, created_at);
    """,
    # 3: when an engine closed cleanly (its process may live on, like the app after a quit).
    """
    ALTER TABLE engines ADD COLUMN stopped_at REAL;
    """,
    # 4: the message bus (agents, subscriptions, messages, events), the shared context store
    #    with its history, and the progress agents report.
    """
    CREATE TABLE bus_agents (
        name TEXT PRIMARY KEY,
        session_id TEXT,
        capabilities TEXT NOT NULL,
        active INTEGER NOT NULL DEFAULT 1,
        registered_at REAL NOT NULL,
        seen_at REAL NOT NULL
    );
    CREATE TABLE bus_subscriptions (
        event TEXT NOT NULL,
        agent TEXT NOT NULL,
        PRIMARY KEY (event, agent)
    ) WITHOUT ROWID;
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        session_id TEXT,
        sender TEXT NOT NULL,
        recipient_kind TEXT NOT NULL,
        recipient TEXT NOT NULL,
        agent TEXT,
        type TEXT NOT NULL,
        payload TEXT NOT NULL,
        priority INTEGER NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        max_attempts INTEGER NOT NULL,
        visible_at REAL NOT NULL,
        reason TEXT,
        event_id INTEGER,
        created_at REAL NOT NULL,
        delivered_at REAL,
        acked_at REAL
    );
    CREATE INDEX messages_queue ON messages(agent, priority, id)
        WHERE state IN ('pending', 'delivered', 'failed');
    CREATE INDEX messages_by_type ON messages(type, id);
    CREATE TABLE bus_events (
        id INTEGER PRIMARY KEY,
        session_id TEXT,
        source TEXT NOT NULL,
        type TEXT NOT NULL,
        payload TEXT NOT NULL,
        subscribers INTEGER NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE context (
        session_id TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        version INTEGER NOT NULL,
        written_by TEXT NOT NULL,
        written_at REAL NOT NULL,
        PRIMARY KEY (session_id, key)
    ) WITHOUT ROWID;
    CREATE TABLE context_history (
        id INTEGER PRIMARY KEY,
        session_id TEXT NOT NULL,
        key TEXT NOT NULL,
        version INTEGER NOT NULL,
        value TEXT NOT NULL,
        written_by TEXT NOT NULL,
        written_at REAL NOT NULL
    );
    CREATE INDEX context_history_by_key ON context_history(session_id, key, version);
    CREATE TABLE progress (
        id INTEGER PRIMARY KEY,
        session_id TEXT,
        task_id TEXT,
        agent TEXT NOT NULL,
        percent REAL NOT NULL,
        note TEXT,
        at REAL NOT NULL
    );
    CREATE INDEX progress_by_session ON progress(session_id, id);
    """,
    # 5: learning: the solution cache (problem hash -> a completed session's summary), its
    #    hit and miss counters, and the intents users confirmed for phrases they typed.
    """
    CREATE TABLE solution_cache (
        problem_hash TEXT PRIMARY KEY,
        intent TEXT NOT NULL,
        session_id TEXT NOT NULL,
        summary TEXT NOT NULL,
        created_at REAL NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE cache_counters (
        name TEXT PRIMARY KEY,
        count INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE intent_choices (
        id INTEGER PRIMARY KEY,
        phrase TEXT NOT NULL,
        intent TEXT NOT NULL,
        chosen_at REAL NOT NULL
    );
    """,
    # 6: how a session dispatches (`list` or `levels`), so that a recovered one goes on alike.
    """
    ALTER TABLE sessions ADD COLUMN mode TEXT;
    """,
    # 7: the time limit each attempt ran under, and how many recorded runs it was learned from
    #    (NULL: the workflow's `timeout:`, or no limit at all).
    """
    ALTER TABLE attempts ADD COLUMN timeout REAL;
    ALTER TABLE attempts ADD COLUMN timeout_runs INTEGER;
    """,
    # 8: what learning records besides: each session's plan hash (NULL before this version),
    #    and each attempt's input size in bytes (an agent's prompt; NULL: not known).
    """
    ALTER TABLE sessions ADD COLUMN plan_hash TEXT;
    ALTER TABLE attempts ADD COLUMN input_bytes INTEGER;
    """,
    # 9: each agent file generated (`agent generate`, `agent create`) and how long it took,
    #    for the success metric "agent generation time".
    """
    CREATE TABLE agent_generations (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        seconds REAL NOT NULL,
        created_at REAL NOT NULL
    );
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)
"""The version this code writes; a database with a higher one is refused untouched."""
