"""The ``watcher`` entry point starts the pool's fork server early for a poll, and only then."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from watcher.entry import _command
from watcher.fork_server import available as fork_server_available

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


PRELOAD_CHILD = """
import sys
from watcher import fork_server
fork_server.start(encoder=sys.argv[1] == "1")
from tests.worker_probes import encoder_loaded
with fork_server.context().Pool(1) as pool:
    print(pool.apply(encoder_loaded, (None,)))
"""


@pytest.mark.parametrize(("encoder", "loaded"), [("0", "False"), ("1", "True")])
def test_workers_hold_the_lead_encoder_only_when_the_store_encodes(
    encoder: str, loaded: str
) -> None:
    """The fork server loads the encoder (160 MB) for every worker only when told to: a
    corpus in one language never encodes, and a worker that does loads it itself."""
    if not fork_server_available():
        pytest.skip("workers come from a fork server on Linux only")
    run = subprocess.run(
        [sys.executable, "-c", PRELOAD_CHILD, encoder],
        cwd=Path(__file__).parent.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == loaded


STAGES_CHILD = """
from watcher import fork_server
fork_server.start(encoder=False)
from tests.worker_probes import stages_loaded
with fork_server.context().Pool(1) as pool:
    print(pool.apply(stages_loaded, (None,)))
"""


def test_workers_get_the_preparation_stages_from_the_fork_server() -> None:
    """feedparser, the tagger, fingerprints and story vectors are imported by the fork server
    before it forks (the main process, which never prepares a feed, no longer imports them):
    every worker shares their pages and starts its first feed without importing them."""
    if not fork_server_available():
        pytest.skip("workers come from a fork server on Linux only")
    run = subprocess.run(
        [sys.executable, "-c", STAGES_CHILD],
        cwd=Path(__file__).parent.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


def test_the_encoder_is_in_use_where_both_scripts_were_encoded_lately(tmp_path: Path) -> None:
    from watcher.fork_server import encoder_in_use
    from watcher.store import Store
    from watcher.store import stories as story_store

    db = tmp_path / "w.db"
    assert not encoder_in_use(db)  # no database yet
    store = Store.open(db)
    for item_id in (1, 2):
        store.db.execute(
            "INSERT INTO items(id, url, title, summary, content, first_seen_at, content_hash) "
            "VALUES (?, ?, 't', '', '', '2026-12-07T00:00:00Z', ?)",
            [item_id, f"https://e.example/{item_id}", f"h{item_id}"],
        )
    with store.transaction():
        story_store.save_leads(store, [(1, 0, "2026-12-06T00:00:00Z", b"x")])
    assert not encoder_in_use(db, now=1_796_601_600)  # 2026-12-07: one script only
    with store.transaction():
        story_store.save_leads(store, [(2, 1, "2026-12-06T00:00:00Z", b"x")])
    store.close()
    assert encoder_in_use(db, now=1_796_601_600)
    assert not encoder_in_use(db, now=1_796_601_600 + 30 * 86400)  # not lately


def test_the_open_takes_the_check_begun_early_instead_of_checking_again(tmp_path: Path) -> None:
    """:func:`quick_check.begin` checks the file in a thread of its own; ``Store.open``
    with ``check`` waits for that answer and does not run the check a second time."""
    import threading

    from watcher import quick_check
    from watcher.store import Store

    db = tmp_path / "watcher.db"
    Store.open(db).close()
    checked_in: list[str] = []
    original = quick_check.problems

    def counted(connection: Any) -> list[str]:
        checked_in.append(threading.current_thread().name)
        return original(connection)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(quick_check, "problems", counted)
        quick_check.begin(db)
        Store.open(db, check=True).close()
        assert checked_in == ["watcher-quick-check"]
        Store.open(db, check=True).close()  # a later open checks for itself
        assert checked_in == ["watcher-quick-check", "MainThread"]
        quick_check.begin(tmp_path / "absent.db")  # nothing to check: created by the open
        Store.open(tmp_path / "absent.db", check=True).close()
        assert checked_in[-1] == "MainThread"


def test_a_poll_process_on_a_damaged_database_writes_nothing(tmp_path: Path) -> None:
    """Through the real entry point, where the check is begun before the CLI is imported:
    one line saying the file is damaged, exit status 1, the file untouched."""
    import hashlib

    from tests.conftest import write_config
    from tests.test_faults import damage
    from watcher.store import Store

    db = tmp_path / "watcher.db"
    store = Store.open(db)
    store.db["padding"].insert_all({"n": n, "text": "x" * 500} for n in range(2000))
    store.close()
    damage(db)
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    config = write_config(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "watcher", "--config", str(config), "--db", str(db), "poll"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 1, result.stderr
    assert "damaged" in result.stderr
    assert "Traceback" not in result.stderr
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


def test_a_check_that_cannot_run_leaves_the_open_to_check(tmp_path: Path) -> None:
    """A file SQLite cannot read gives no early answer: the open checks for itself and
    classifies what is wrong, as when nothing was begun."""
    from watcher import quick_check

    not_sqlite = tmp_path / "watcher.db"
    not_sqlite.write_bytes(b"this is not SQLite " * 500)
    quick_check.begin(not_sqlite)
    assert quick_check.take(not_sqlite) is None
    assert quick_check.take(not_sqlite) is None  # taken once, and nothing left behind


@pytest.mark.parametrize(
    "command",
    [["status"], ["init"], ["retag"], ["regroup"], ["corpus", "import", "empty.jsonl"]],
)
def test_every_command_the_entry_point_checks_for_takes_that_check(
    command: list[str], tmp_path: Path
) -> None:
    """The entry point begins the check for the commands in ``_COMMANDS_THAT_CHECK``: each
    of them does open the database with ``check``, so no check is begun for nothing."""
    from click.testing import CliRunner

    from tests.conftest import write_config
    from watcher import quick_check
    from watcher.cli import main
    from watcher.entry import _COMMANDS_THAT_CHECK
    from watcher.store import Store

    assert command[0] in _COMMANDS_THAT_CHECK
    db = tmp_path / "watcher.db"
    Store.open(db).close()
    (tmp_path / "empty.jsonl").write_text("", encoding="utf-8")
    config = write_config(tmp_path)
    quick_check.begin(db)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)
        CliRunner().invoke(main, ["--config", str(config), "--db", str(db), *command])
    assert quick_check.take(db) is None  # taken by the command's open
