"""Starting children and following their exits: a child starts in its folder with its
environment and Python's ignored signals back at their defaults, whichever way it is started;
one that cannot start is reported with the program or folder at fault; every future gets its
own child's exit code, whatever order they end in, and the loop's shared epoll set is
released once idle."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import os
import shutil
import signal
import sys
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator_tui.engine.runners import spawn
from orchestrator_tui.engine.runners.base import Job
from orchestrator_tui.engine.runners.command import CommandRunner, OutputPipe, drain
from orchestrator_tui.engine.runners.spawn import SpawnedProcess, watch_exit

pytestmark = pytest.mark.skipif(not spawn.FAST_SPAWN or not hasattr(os, "pidfd_open"),
                                reason="needs a cheap starter and pidfds")


ENVIRON = [name + b"=" + value for name, value in os.environb.items()]


@pytest.fixture(params=["fork_exec", "posix_spawn"])
def starter(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Each test runs with both ways of starting a child (where this Python has both)."""
    if request.param == "posix_spawn":
        if not hasattr(os, "posix_spawn"):
            pytest.skip("no posix_spawn")
        monkeypatch.setattr(spawn, "_fork_exec", None)
    elif spawn._fork_exec is None:
        pytest.skip(f"fork_exec is not used on Python {sys.version_info[:2]}")
    yield request.param


def start(code: int, delay: float) -> SpawnedProcess:
    argv = (sys.executable, "-c", f"import time, sys; time.sleep({delay}); sys.exit({code})")
    return SpawnedProcess.spawn(argv, ENVIRON, 1, 2)


def output_of(argv: tuple[str, ...], env: list[bytes], cwd: str | None = None) -> str:
    """What a spawned command prints, once it has exited with 0."""
    read, write = os.pipe2(os.O_CLOEXEC)
    try:
        child = SpawnedProcess.spawn(argv, env, write, 2, cwd)
    finally:
        os.close(write)
    with os.fdopen(read, "rb") as pipe:
        text = pipe.read().decode()
    assert child.wait() == 0
    return text


def test_a_child_gets_its_environment_and_folder(starter: str, tmp_path: Path) -> None:
    env = output_of((shutil.which("env") or "/usr/bin/env",), [b"ONE=1", b"TWO=a=b"])
    assert env.splitlines() == ["ONE=1", "TWO=a=b"]
    folder = str(tmp_path.resolve())
    cwd = None if starter == "posix_spawn" else folder  # posix_spawn keeps the caller's
    where = output_of((sys.executable, "-c", "import os; print(os.getcwd())"), ENVIRON, cwd)
    assert where.strip() == (folder if cwd else str(Path.cwd()))


def test_a_child_has_default_sigpipe_in_a_group_of_its_own(starter: str) -> None:
    """Python ignores SIGPIPE; a child must not inherit that (`yes | head` would never end).
    The child leads a process group of its own, in the engine's session."""
    child = SpawnedProcess.spawn((shutil.which("sleep") or "/bin/sleep", "5"), ENVIRON, 1, 2)
    try:
        status = Path(f"/proc/{child.pid}/status").read_text()
        ignored = int(next(line.split()[1] for line in status.splitlines()
                           if line.startswith("SigIgn:")), 16)
        assert not ignored & (1 << (signal.SIGPIPE - 1))
        assert os.getpgid(child.pid) == child.pid
        assert os.getsid(child.pid) == os.getsid(0)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()


def test_a_child_that_cannot_start_names_the_program_or_folder(
        starter: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[int] = []
    if starter == "fork_exec":  # note each child's pid, to see it reaped after its failure
        fork_exec = spawn._fork_exec
        assert fork_exec is not None

        def noting(*args: object) -> int:
            started.append(fork_exec(*args))
            return started[-1]

        monkeypatch.setattr(spawn, "_fork_exec", noting)
    missing = str(tmp_path / "missing")
    with pytest.raises(FileNotFoundError) as caught:
        SpawnedProcess.spawn((missing,), ENVIRON, 1, 2)
    assert caught.value.filename == missing
    if starter == "fork_exec":
        with pytest.raises(FileNotFoundError) as caught:
            SpawnedProcess.spawn((sys.executable, "-c", "pass"), ENVIRON, 1, 2, missing)
        assert caught.value.filename == missing
        assert len(started) == 2
    for pid in started:  # reaped: not left as a zombie
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


async def test_each_child_reports_its_own_exit_code(starter: str) -> None:
    children = [start(code, delay) for code, delay in
                [(3, 0.3), (0, 0.0), (7, 0.2), (1, 0.1), (0, 0.25), (9, 0.05)]]
    codes = await asyncio.gather(*(watch_exit(child) for child in children))
    assert codes == [3, 0, 7, 1, 0, 9]
    assert all(child.returncode == code for child, code in zip(children, codes, strict=True))


async def test_every_follower_of_a_command_hears_its_end(tmp_path: Path) -> None:
    runner = CommandRunner()
    job = Job(session_id="s", task_id="t", attempt=1, workspace=tmp_path,
              argv=(shutil.which("true") or "/bin/true",), env={})
    handle = runner.spawn(job)
    heard: list[bool] = []
    handle.on_done(lambda outcome: heard.append(outcome.succeeded))
    assert (await handle.wait()).succeeded  # a second follower
    assert heard == [True]


async def test_one_drain_reads_both_pipes_and_keeps_one_a_writer_holds() -> None:
    loop = asyncio.get_running_loop()
    (out_r, out_w), (err_r, err_w) = os.pipe2(os.O_CLOEXEC), os.pipe2(os.O_CLOEXEC)
    os.write(out_w, b"out")
    os.close(out_w)
    os.write(err_w, b"err")  # its writer stays
    pipes = (OutputPipe(out_r, 100, loop), OutputPipe(err_r, 100, loop))
    drain(pipes)
    assert pipes[0].closed and pipes[0].text() == "out"
    assert not pipes[1].closed and pipes[1].text() == "err"
    os.write(err_w, b" more")
    os.close(err_w)
    drain(pipes)
    assert pipes[1].closed and pipes[1].text() == "err more"


async def test_descriptors_are_reused_safely_and_the_set_closes_when_idle(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spawn.ExitWatcher, "IDLE_SECONDS", 0.05)
    for round_ in range(3):  # the same descriptor numbers come back each round
        codes = await asyncio.gather(*(watch_exit(start(n % 5, 0.0)) for n in range(40)))
        assert codes == [n % 5 for n in range(40)], round_
    watcher = spawn._exit_watchers[asyncio.get_running_loop()]
    await asyncio.sleep(0.2)
    assert watcher._epoll is None  # released: nothing left to watch
    assert await watch_exit(start(4, 0.0)) == 4  # and made again on need


def test_a_finished_loop_and_its_watcher_are_freed() -> None:
    """The loop-keyed registry of watchers does not keep a finished loop alive (each
    `asyncio.run` that followed a child would otherwise leak its loop)."""
    async def follow_one() -> weakref.ref[asyncio.AbstractEventLoop]:
        assert await watch_exit(start(3, 0.0)) == 3
        return weakref.ref(asyncio.get_running_loop())

    loop = asyncio.run(follow_one())
    gc.collect()
    assert loop() is None  # and with it, its entry in the registry


async def test_a_jobs_variables_replace_the_engines_own(starter: str, tmp_path: Path) -> None:
    """Each name appears once in the child's environment: the job's value wins."""
    runner = CommandRunner(base_env={"ORCHESTRATOR_TASK": "outer", "KEEP": "1"})
    job = Job(session_id="s", task_id="t", attempt=1, workspace=tmp_path,
              argv=(shutil.which("env") or "/usr/bin/env",),
              env={"ORCHESTRATOR_TASK": "inner", "ADDED": "é"})
    for added in ("é", "é", "other"):  # later starts reuse what was encoded
        job = dataclasses.replace(job, env={"ORCHESTRATOR_TASK": "inner", "ADDED": added})
        outcome = await (await runner.start(job)).wait()
        assert outcome.succeeded, outcome.error
        assert sorted(outcome.stdout.splitlines()) == [
            f"ADDED={added}", "KEEP=1", "ORCHESTRATOR_TASK=inner"]
    with pytest.raises(ValueError, match="illegal environment variable name"):
        runner.spawn(dataclasses.replace(job, env={"BAD=NAME": "x"}))


@pytest.mark.parametrize("niceness", [0, 7, 40])
async def test_commands_run_below_the_engines_priority(starter: str, tmp_path: Path,
                                                       niceness: int) -> None:
    own = os.getpriority(os.PRIO_PROCESS, 0)
    runner = CommandRunner(niceness=niceness)
    job = Job(session_id="s", task_id="t", attempt=1, workspace=tmp_path,
              argv=(shutil.which("sleep") or "/bin/sleep", "5"), env={})
    handle = runner.spawn(job)
    try:
        assert os.getpriority(os.PRIO_PROCESS, handle.pid) == min(19, own + niceness)
    finally:
        await handle.terminate(grace=1.0)
        await handle.wait()
