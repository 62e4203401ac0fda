"""The ``watcher`` entry point starts the pool's fork server early for a poll, and only then."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from watcher.entry import _command

CHILD = """
import os, sys
sys.argv = ["watcher", *sys.argv[1:]]
from watcher.entry import main
try:
    main()
except SystemExit:
    pass
children = []
for task in os.listdir("/proc/self/task"):
    with open(f"/proc/self/task/{task}/children") as listing:
        children += listing.read().split()
for pid in children:
    with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
        if b"multiprocessing.forkserver" in cmdline.read():
            print("fork server running")
"""


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["poll", "--all"], "poll"),
        (["--config", "my.toml", "--db", "my.db", "-v", "poll"], "poll"),
        (["--db", "poll", "status"], "status"),
        (["--config=poll.toml", "run"], "run"),
        (["--help"], None),
        ([], None),
    ],
)
def test_the_command_is_read_past_the_programs_options(
    argv: list[str], command: str | None
) -> None:
    assert _command(argv) == command


@pytest.mark.skipif(
    sys.platform != "linux" or len(os.sched_getaffinity(0)) < 2,
    reason="the fork server is for Linux with more than one core",
)
@pytest.mark.parametrize(
    ("argv", "started"), [(["poll", "--help"], True), (["status", "--help"], False)]
)
def test_a_poll_starts_the_fork_server_before_the_cli_runs(
    argv: list[str], started: bool, tmp_path: Path
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", CHILD, "--db", str(tmp_path / "w.db"), *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert ("fork server running" in result.stdout) is started
    assert "Usage:" in result.stdout


def test_numpy_gets_one_blas_thread_unless_told_otherwise() -> None:
    """OpenBLAS starts its threads when numpy loads; spinning between calls they took the
    other core from the pool's workers (docs/benchmarks.md)."""
    if not Path("/proc/self/task").is_dir():
        pytest.skip("counts threads through /proc")
    probe = "import watcher, numpy, os; print(len(os.listdir('/proc/self/task')))"
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}

    def threads(**extra: str) -> int:
        run = subprocess.run(
            [sys.executable, "-c", probe], env={**env, **extra}, capture_output=True, text=True
        )
        assert run.returncode == 0, run.stderr
        return int(run.stdout)

    assert threads() == 1
    assert threads(OPENBLAS_NUM_THREADS="2") == 2
