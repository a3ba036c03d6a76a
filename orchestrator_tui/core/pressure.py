"""What to do when memory or disk runs short: a pure, deterministic state machine.

Under pressure the policy escalates one step per `dwell` seconds: 1 pause the
lowest-priority running task(s), 2 shrink the pool, 3 run one task at a time, 4 pause the
session (checkpointed). When pressure is gone it undoes the steps in reverse, one per
`dwell`. Between the high and low thresholds (hysteresis) nothing changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MB = 1024 * 1024
GB = 1024 * MB
TOP_LEVEL = 4
"""Steps: 0 nothing, 1 tasks paused, 2 pool shrunk, 3 one at a time, 4 session paused."""


@dataclass(frozen=True, slots=True)
class Pressure:
    """One reading of the machine's resources."""

    memory_available: float
    """Available memory as a fraction of the total (0 to 1)."""
    disk_free: int | None
    """Free bytes of the workspace's file system; None when it could not be read."""
    load: float | None = None
    """The one-minute load average per core, when measured."""


@dataclass(frozen=True, slots=True)
class Thresholds:
    """When pressure is high, when it is gone, and how fast the policy moves."""

    memory_high: float = 0.10
    """Pressure is high when the available fraction of memory is below this ..."""
    memory_low: float = 0.20
    """... and low only when it is above this."""
    disk_high: int = 500 * MB
    disk_low: int = 1 * GB
    load_high: float | None = None
    """Load per core above which pressure is high; None ignores the load."""
    load_low: float | None = None
    dwell: float = 5.0
    """Seconds between two steps, up or down."""


@dataclass(frozen=True, slots=True)
class RunningTask:
    """A task running (not paused) as the policy sees it."""

    task_id: str
    priority: int
    bottom_level: float
    pausable: bool = True

    @property
    def rank(self) -> tuple[int, float, str]:
        """Sorts best first: higher priority, then longer remaining path, then id."""
        return (-self.priority, -self.bottom_level, self.task_id)


@dataclass(frozen=True, slots=True)
class Work:
    """What the execution is doing: its running tasks, the tasks this policy paused that
    are still there, the limit now and the user's own limit."""

    running: tuple[RunningTask, ...]
    held: tuple[RunningTask, ...]
    limit: int
    user_limit: int


@dataclass(frozen=True, slots=True)
class PauseTasks:
    """Step 1: pause these tasks (possibly none), keeping `kept` running."""

    task_ids: tuple[str, ...]
    kept: str | None
    level: int = 1


@dataclass(frozen=True, slots=True)
class ResumeTasks:
    """Continue these pressure-paused tasks."""

    task_ids: tuple[str, ...]
    level: int


@dataclass(frozen=True, slots=True)
class SetLimit:
    """Steps 2 and 3 (and their undoing): the parallel limit becomes `limit`;
    `restored` when it is the user's own limit again."""

    limit: int
    level: int
    restored: bool = False


@dataclass(frozen=True, slots=True)
class PauseSession:
    """Step 4: checkpoint and pause the session."""

    level: int = TOP_LEVEL


@dataclass(frozen=True, slots=True)
class ResumeSession:
    """Undo step 4: resume the session the policy paused, and with it `task_ids`, held
    tasks to run again at once because no other task is left running."""

    level: int = TOP_LEVEL - 1
    task_ids: tuple[str, ...] = ()


Action = PauseTasks | ResumeTasks | SetLimit | PauseSession | ResumeSession


def is_high(reading: Pressure, limits: Thresholds) -> bool:
    """Whether any resource is short enough to act."""
    return bool(causes(reading, limits))


def is_low(reading: Pressure, limits: Thresholds) -> bool:
    """Whether every resource is plentiful enough to undo a step."""
    if reading.memory_available <= limits.memory_low:
        return False
    if reading.disk_free is not None and reading.disk_free <= limits.disk_low:
        return False
    return not (limits.load_low is not None and reading.load is not None
                and reading.load >= limits.load_low)


def causes(reading: Pressure, limits: Thresholds) -> list[str]:
    """The resources under pressure: `memory`, `disk`, `load`."""
    found = []
    if reading.memory_available < limits.memory_high:
        found.append("memory")
    if reading.disk_free is not None and reading.disk_free < limits.disk_high:
        found.append("disk")
    if limits.load_high is not None and reading.load is not None \
            and reading.load > limits.load_high:
        found.append("load")
    return found


def describe(reading: Pressure) -> str:
    """The reading as people read it: `memory 6% available, disk 320 MB free`."""
    parts = [f"memory {reading.memory_available:.0%} available"]
    if reading.disk_free is not None:
        free = reading.disk_free
        parts.append(f"disk {free / GB:.1f} GB free" if free >= GB
                     else f"disk {free // MB} MB free")
    if reading.load is not None:
        parts.append(f"load {reading.load:.1f} per core")
    return ", ".join(parts)


def choose_to_pause(running: tuple[RunningTask, ...]) -> tuple[tuple[str, ...], str | None]:
    """The tasks step 1 pauses and the one it keeps: every pausable task of lower priority
    than the best running one; when all share its priority, the single worst pausable one.
    The best task is never paused, so at least one keeps running."""
    if len(running) <= 1:
        return (), running[0].task_id if running else None
    ranked = sorted(running, key=lambda task: task.rank)
    best, others = ranked[0], [task for task in ranked[1:] if task.pausable]
    lower = tuple(task.task_id for task in others if task.priority < best.priority)
    if lower:
        return lower, best.task_id
    return ((others[-1].task_id,) if others else ()), best.task_id


@dataclass(slots=True)
class PressurePolicy:
    """The escalation state machine; feed it a reading and the work at each sample."""

    limits: Thresholds = field(default_factory=Thresholds)
    level: int = 0
    shrunk: int | None = None
    """The limit step 2 set."""
    _changed_at: float | None = None

    def step(self, reading: Pressure, now: float, work: Work) -> Action | None:
        """The one action to take now, or None; the level moves at most one step per
        `dwell` seconds. When no task runs while some are held (the others ended), the
        best held one is resumed at once: the policy never holds the last task."""
        if self.level < TOP_LEVEL and not work.running and work.held:
            best = min(work.held, key=lambda task: task.rank)
            return ResumeTasks((best.task_id,), self.level)
        due = self._changed_at is None or now - self._changed_at >= self.limits.dwell
        if not due:
            return None
        if is_high(reading, self.limits) and self.level < TOP_LEVEL:
            action = self._escalate(work)
        elif is_low(reading, self.limits) and self.level > 0:
            action = self._relax(work)
        else:
            return None
        self.level = action.level
        self._changed_at = now
        return action

    def _escalate(self, work: Work) -> Action:
        if self.level == 0:
            chosen, kept = choose_to_pause(work.running)
            return PauseTasks(chosen, kept)
        if self.level == 1:
            left = len(work.running)
            self.shrunk = max(1, min(work.limit, left - 1))
            return SetLimit(self.shrunk, 2)
        if self.level == 2:
            return SetLimit(1, 3)
        return PauseSession()

    def _relax(self, work: Work) -> Action:
        if self.level == TOP_LEVEL:
            if work.running or not work.held:
                return ResumeSession()
            return ResumeSession(task_ids=(min(work.held, key=lambda task: task.rank).task_id,))
        if self.level == 3:
            shrunk = self.shrunk if self.shrunk is not None else work.user_limit
            return SetLimit(max(1, min(shrunk, work.user_limit)), 2)
        if self.level == 2:
            self.shrunk = None
            return SetLimit(work.user_limit, 1, restored=True)
        held = sorted(work.held, key=lambda task: task.rank)
        return ResumeTasks(tuple(task.task_id for task in held), 0)

