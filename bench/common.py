"""What every benchmark shares: the command line, readings of a process tree's memory and
CPU from /proc (and a thread that samples them), how busy the rest of the machine was, the
machine line, the revision measured, percentiles, Markdown tables, the section writer of
docs/benchmarks.md, daemon runs and the evaluations' scores.

The scripts run as ``python bench/<script>.py``, so this folder is on ``sys.path`` and they
``import common``, which puts the checkout first on ``sys.path``: the ``watcher`` measured is
the one beside bench/, wherever the script runs from.
"""

from __future__ import annotations

import argparse
import compileall
import datetime as dt
import functools
import itertools
import math
import os
import platform
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
TICK = os.sysconf("SC_CLK_TCK")
T = TypeVar("T")

sys.path.insert(0, str(ROOT))

# --------------------------------------------------------------------- the command line


def arguments(
    doc: str | None,
    *,
    quick: str = "",
    write: str = "",
    work: bool = False,
    seed: int | None = None,
    workers: bool = False,
) -> argparse.ArgumentParser:
    """A benchmark's parser, described by the first paragraph of ``doc``: with ``quick`` a
    ``--quick`` option (``quick`` its help), with ``write`` (what the script rewrites) a
    ``--no-write`` option, with ``work`` a ``--workdir``, with ``seed`` a ``--seed`` of that
    default, with ``workers`` the ``[poll] workers`` of the runs. ``args.argv`` is the
    command line, for the report's first line."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0].strip())
    parser.set_defaults(argv=sys.argv[1:])
    if quick:
        parser.add_argument("--quick", action="store_true", help=quick)
    if write:
        parser.add_argument("--no-write", action="store_true", help=f"do not update {write}")
    if work:
        parser.add_argument("--workdir", type=Path, help="work folder, kept (default: temporary)")
    if seed is not None:
        parser.add_argument("--seed", type=int, default=seed)
    if workers:
        parser.add_argument(
            "--workers", type=int, default=0, help="[poll] workers; 0 = one per core"
        )
    return parser


def log(message: str) -> None:
    """A progress line on stderr, with the time."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------- processes


def children(pid: int) -> list[int]:
    """The child processes of every thread of ``pid`` (a worker pool forks replacement
    workers from a thread of its own, not from the main thread)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found.extend(int(part) for part in (task / "children").read_text().split())
        except (OSError, ValueError):
            continue
    return found


def tree(pid: int) -> list[int]:
    found = [pid]
    index = 0
    while index < len(found):
        found.extend(children(found[index]))
        index += 1
    return found


def status_kb(pid: int, key: str, file: str = "status") -> int:
    """A field of /proc/PID/status (VmRSS, VmHWM, ...), or of another /proc/PID ``file``
    in the same form, in kB; 0 when unreadable."""
    try:
        for line in Path(f"/proc/{pid}/{file}").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def own_mb(key: str) -> float:
    """A field of this process's /proc status (VmRSS, VmHWM) in MB."""
    return status_kb(os.getpid(), key) / 1024


def pss_kb(pid: int) -> int:
    return status_kb(pid, "Pss", "smaps_rollup") or status_kb(pid, "VmRSS")


def cpu_seconds(pid: int, *, reaped: bool = False) -> float:
    """User + system CPU time of one process so far; with ``reaped``, also of the children it
    has waited for (a pool worker replaced after its tasks is gone from the tree, its time
    counted here). 0 when unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return sum(int(fields[index]) for index in ((11, 12, 13, 14) if reaped else (11, 12))) / TICK


def tree_cpu(pid: int, *, reaped: bool = False) -> float:
    """CPU time of ``pid``'s tree so far (with ``reaped``, of everything that ran in it)."""
    return sum(cpu_seconds(one, reaped=reaped) for one in tree(pid))


@dataclass(frozen=True)
class Memory:
    """One reading of a process tree: resident and proportional set sizes, summed, and the
    resident size of its root process alone."""

    rss_mb: float
    pss_mb: float
    processes: int
    main_rss_mb: float = 0.0


def tree_memory(pid: int) -> Memory:
    pids = tree(pid)
    rss = sum(status_kb(one, "VmRSS") for one in pids)
    pss = sum(pss_kb(one) for one in pids)
    return Memory(rss / 1024, pss / 1024, len(pids), status_kb(pid, "VmRSS") / 1024)


class Sampler:
    """Calls ``action`` every ``every`` seconds from a thread of its own until :meth:`stop`
    (the first call at once)."""

    def __init__(self, action: Callable[[], object], every: float) -> None:
        self._stopping = threading.Event()

        def loop() -> None:
            while not self._stopping.is_set():
                action()
                self._stopping.wait(every)

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()


@dataclass
class Run:
    """One command run to completion by :func:`measure`: wall and CPU time, memory peaks."""

    label: str
    seconds: float
    cpu_seconds: float
    main_cpu_seconds: float
    main_peak_mb: float
    largest_peak_mb: float
    tree_peak_mb: float
    processes: int
    other_load: float
    stdout: str
    stderr: str
    returncode: int

    @property
    def pool_cpu_seconds(self) -> float:
        return max(0.0, self.cpu_seconds - self.main_cpu_seconds)


@functools.cache
def byte_compiled() -> None:
    """Byte-compile the checkout's ``watcher/`` once, as an installed watcher runs (pip
    compiles at install, Python at a module's first import). With ``PYTHONDONTWRITEBYTECODE``
    set, as in this project's sandboxes, every measured process compiled the sources again:
    0.15-0.2 CPU-s in the main process and in the pool's fork server."""
    compileall.compile_dir(ROOT / "watcher", quiet=1)


def measure(label: str, command: list[str], *, server_pid: int | None = None) -> Run:
    """Run ``command`` to completion: wall time, CPU time and memory of it and its children
    (sampled every 50 ms: peak VmHWM of the main process, peak PSS of the tree), and how busy
    the machine was with anything but the command, the server ``server_pid`` and this script,
    in cores, averaged over the run; the checkout :func:`byte_compiled` first. Exits with its
    output if the command fails."""
    byte_compiled()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        load = Load()
        server_before = cpu_seconds(server_pid) if server_pid else 0.0
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err)
        peaks = {"main": 0, "tree": 0, "processes": 1}
        main_cpu = [0.0]
        # CPU of every process seen in the tree: the pool's workers are children of a fork
        # server, which the command never waits for, so wait4's figure leaves them out
        seen_cpu: dict[int, float] = {}

        def sample() -> None:
            pids = tree(process.pid)
            peaks["main"] = max(peaks["main"], status_kb(process.pid, "VmHWM"))
            peaks["tree"] = max(peaks["tree"], sum(pss_kb(pid) for pid in pids))
            peaks["processes"] = max(peaks["processes"], len(pids))
            main_cpu[0] = cpu_seconds(process.pid) or main_cpu[0]
            for pid in pids:
                seen_cpu[pid] = cpu_seconds(pid) or seen_cpu.get(pid, 0.0)

        sampler = Sampler(sample, 0.05)
        _pid, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        sampler.stop()
        cpu = max(usage.ru_utime + usage.ru_stime, sum(seen_cpu.values()))
        server_cpu = (cpu_seconds(server_pid) or server_before) - server_before if server_pid else 0
        out.seek(0)
        err.seek(0)
        run = Run(
            label=label,
            seconds=seconds,
            cpu_seconds=cpu,
            main_cpu_seconds=main_cpu[0],
            main_peak_mb=peaks["main"] / 1024,
            largest_peak_mb=usage.ru_maxrss / 1024,
            tree_peak_mb=peaks["tree"] / 1024,
            processes=peaks["processes"],
            other_load=max(0.0, load.others(cpu, server_cpu, seconds=seconds)),
            stdout=out.read().decode(errors="replace"),
            stderr=err.read().decode(errors="replace"),
            returncode=os.waitstatus_to_exitcode(status),
        )
    if run.returncode != 0:
        sys.exit(f"{label} failed with exit status {run.returncode}:\n{run.stdout}\n{run.stderr}")
    return run


def watcher(config: Path, db: Path, *argv: str) -> list[str]:
    """The command line of ``python -m watcher --config CONFIG --db DB ARGV...``."""
    return [sys.executable, "-m", "watcher", "--config", str(config), "--db", str(db), *argv]


# --------------------------------------------------------------------- the machine


def machine_busy() -> float:
    """CPU-seconds every core has spent busy since boot (idle and iowait excluded)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields)
    return (user + nice + system + irq + softirq + steal) / TICK


class Load:
    """How busy the rest of the machine was from now on ("other load", in cores)."""

    def __init__(self) -> None:
        self.busy = machine_busy()
        self.own = time.process_time()
        self.wall = time.perf_counter()

    def others(self, *accounted: float, own: bool = True, seconds: float | None = None) -> float:
        """Cores kept busy by anything but the ``accounted`` CPU-seconds (and this process's
        own, with ``own``), averaged over ``seconds`` (default: since the start). It can come
        out a little below zero."""
        spent = machine_busy() - self.busy - sum(accounted)
        if own:
            spent -= time.process_time() - self.own
        return spent / (seconds if seconds is not None else time.perf_counter() - self.wall)


def machine(*extras: str) -> str:
    """nproc, CPU model, RAM, Python and the kernel; ``extras`` (library versions) after."""
    cpu = platform.processor() or platform.machine()
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with suppress(OSError, ValueError, IndexError):
        total_kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {total_kb / 1024 / 1024:.0f} GiB RAM"
    return "; ".join(
        [
            f"nproc {len(os.sched_getaffinity(0))} ({cpu}){mem}",
            f"Python {platform.python_version()} on {platform.system()} {platform.release()}",
            *extras,
        ]
    )


def measured_with(script: str, argv: Sequence[str], note: str = "") -> str:
    """The line that opens a report: when, and with which command line."""
    command = " ".join([f"python bench/{script}", *argv])
    return f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC with `{command}`{note}."


def revision(fmt: str = "%h") -> tuple[str, bool]:
    """``git log -1 --format=FMT`` of the checkout, and whether watcher/ has uncommitted
    changes; ("", False) outside git."""
    try:
        git = ["git", "-C", str(ROOT)]
        head = subprocess.run(
            [*git, "log", "-1", f"--format={fmt}"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--", "watcher"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "", False
    return head, bool(dirty)


# --------------------------------------------------------------------- figures


def timed(action: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[float, Any]:
    """(wall seconds, result) of one call ``action(*args, **kwargs)``."""
    start = time.perf_counter()
    result = action(*args, **kwargs)
    return time.perf_counter() - start, result


def cpu_timed(action: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[float, float, Any]:
    """(wall seconds, CPU seconds of this process, result) of one call, as :func:`timed`."""
    cpu = time.process_time()
    wall, result = timed(action, *args, **kwargs)
    return wall, time.process_time() - cpu, result


class Tally(dict[str, float]):
    """Seconds (or any amounts) by label, adding up; ``clock`` times :meth:`timed`."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        super().__init__()
        self.clock = clock

    def add(self, label: str, amount: float) -> None:
        self[label] = self.get(label, 0.0) + amount

    def timed(self, label: str, action: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``action(*args, **kwargs)``, the ``clock`` seconds it took added to ``label``."""
        start = self.clock()
        try:
            return action(*args, **kwargs)
        finally:
            self.add(label, self.clock() - start)


def time_calls(
    places: Iterable[tuple[Any, str, str]],
    add: Callable[[str, float], None],
    clock: Callable[[], float] = time.perf_counter,
) -> Callable[[], None]:
    """Time every call of ``owner.name`` for each (owner, name, label) of ``places`` (a
    module's function, a class's method or one object's), handing its ``clock`` seconds to
    ``add(label, seconds)``; a name the owner lacks is skipped. Returns what undoes it."""
    saved: list[tuple[Any, str, Any]] = []  # owner, name, what the owner itself held
    for owner, name, label in places:
        original = getattr(owner, name, None)
        if original is None:
            continue

        def timed_call(*args: Any, _call: Any = original, _label: str = label, **kw: Any) -> Any:
            start = clock()
            try:
                return _call(*args, **kw)
            finally:
                add(_label, clock() - start)

        saved.append((owner, name, vars(owner).get(name)))
        setattr(owner, name, timed_call)

    def undo() -> None:
        for owner, name, own in reversed(saved):
            if own is None:  # an object's method: its class's shows again
                delattr(owner, name)
            else:
                setattr(owner, name, own)

    return undo


def percentile(values: Sequence[float], q: float, *, nearest_rank: bool = False) -> float:
    """The ``q`` th percentile (0-100): the sorted value at index floor(q/100 · n), or with
    ``nearest_rank`` the ceil(q/100 · n)-th value (one rank lower at most); nan if empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = math.ceil(q / 100 * len(ordered)) - 1 if nearest_rank else int(q / 100 * len(ordered))
    return ordered[min(len(ordered) - 1, max(0, index))]


def summary(values: Sequence[float]) -> dict[str, float]:
    """n, median, p95, p99 (nearest rank), max and mean; nan where empty."""
    nan = float("nan")
    return {
        "n": len(values),
        "median": statistics.median(values) if values else nan,
        "p95": percentile(values, 95, nearest_rank=True),
        "p99": percentile(values, 99, nearest_rank=True),
        "max": max(values) if values else nan,
        "mean": statistics.fmean(values) if values else nan,
    }


def table(header: Sequence[str], rows: Iterable[Sequence[object]], align: str = "") -> list[str]:
    """The lines of a Markdown table. ``align`` has a letter per column, ``l`` or ``r``; by
    default the first column is left-aligned and the others right."""
    align = align or "l" + "r" * (len(header) - 1)
    rule = "|" + "".join("---|" if a == "l" else "---:|" for a in align)
    return [table_row(header), rule, *(table_row(row) for row in rows)]


def table_row(cells: Sequence[object]) -> str:
    """One line of a Markdown table (a row printed while the rest is still measured)."""
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


class Section(list[str]):
    """The Markdown lines of a report: blocks (a paragraph, a bullet list, a table), each
    followed by a blank line. ``str()`` joins them."""

    def __init__(self, *opening: str) -> None:
        super().__init__()
        for block in opening:
            self.add(block)

    def add(self, *lines: str) -> None:
        self.extend([*lines, ""])

    def table(
        self, header: Sequence[str], rows: Iterable[Sequence[object]], align: str = ""
    ) -> None:
        self.add(*table(header, rows, align))

    def __str__(self) -> str:
        return "\n".join(self)


# --------------------------------------------------------------------- files


def query(db: Path, sql: str, *params: object) -> list[Any]:
    """The rows of one read of a database (its connection closed afterwards)."""
    with closing(sqlite3.connect(db, timeout=30)) as connection:
        return connection.execute(sql, params).fetchall()


def remove_db(path: Path, *suffixes: str) -> Path:
    """Delete a database with its -wal and -shm files (and ``path + suffix`` for each of
    ``suffixes``); returns ``path``."""
    for suffix in ("", "-wal", "-shm", *suffixes):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


@contextmanager
def workdir(path: Path | None, prefix: str) -> Iterator[Path]:
    """``path`` (created, kept), or a temporary folder removed afterwards."""
    work = path or Path(tempfile.mkdtemp(prefix=prefix))
    work.mkdir(parents=True, exist_ok=True)
    try:
        yield work
    finally:
        if path is None:
            shutil.rmtree(work, ignore_errors=True)


def publish(title: str, section: str, write: bool) -> None:
    """Print a report section and, with ``write``, put it into docs/benchmarks.md."""
    print(section)
    if write:
        update_doc(title, section)
        print(f"updated the section {title!r} of {DOC.relative_to(ROOT)}", file=sys.stderr)


def update_doc(title: str, section: str) -> None:
    """Replace (or append) the section headed ``title`` of docs/benchmarks.md, keeping every
    other section."""
    header = (
        "# Benchmarks\n\nFigures from the scripts in `bench/` (how to run them: "
        "`bench/README.md`). Each section is rewritten by its own script.\n"
    )
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else header
    found = re.search(f"^{re.escape(title)}[ \t]*$", text, re.MULTILINE)
    if found is None:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        following = text.find("\n## ", found.end())
        rest = "" if following == -1 else "\n" + text[following + 1 :]
        text = text[: found.start()] + section + rest
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text.rstrip("\n") + "\n", encoding="utf-8")


# --------------------------------------------------------------------- evaluations

SEEDS = ROOT.parent / "shared" / "corpus" / "seeds"
SEED_STORIES = {"000": "A", "002": "A", "003": "A", "001": "B", "004": "C"}
"""The event each seed article tells (000, 002 and 003 tell one)."""


def seed_articles(folder: Path = SEEDS) -> list[tuple[str, str, str]]:
    """(number, title, text) of each seed article as an importer sees it: the first
    non-empty line is the title."""
    articles = []
    for path in sorted(folder.glob("*.txt")):
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        title = lines[0].strip().lstrip("#").strip()
        articles.append((path.name[:3], title, "\n".join(lines[1:])))
    return articles


def dedupe_settings(pairs: Iterable[str], *modules: Any) -> Any:
    """The default ``DedupeSettings`` with each ``NAME=VALUE`` of ``pairs`` (an evaluation's
    ``--set``) applied: a field of the settings, else a constant of the first of ``modules``
    that has it (set in place). A value takes the type of the one it replaces; "None" is
    None. Exits on a name that neither has."""
    import dataclasses

    from watcher.similarity import DEFAULT_SETTINGS

    def typed(text: str, like: object) -> object:
        if text == "None":
            return None
        if isinstance(like, bool):
            return text == "True"
        return type(like)(text) if isinstance(like, int | str) else float(text)

    fields: dict[str, Any] = {}
    for pair in pairs:
        name, _, text = pair.partition("=")
        owner = next((module for module in modules if hasattr(module, name)), None)
        if name in {field.name for field in dataclasses.fields(DEFAULT_SETTINGS)}:
            fields[name] = typed(text, getattr(DEFAULT_SETTINGS, name))
        elif owner is not None:
            setattr(owner, name, typed(text, getattr(owner, name)))
        else:
            where = ", ".join(module.__name__ for module in modules) or "no module"
            sys.exit(f"--set {name}: neither a [dedupe] setting nor a constant of {where}")
    return dataclasses.replace(DEFAULT_SETTINGS, **fields)


def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """Precision, recall and F1 of counts (1.0 where nothing was to be found or claimed)."""
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def pairwise(truth: Sequence[Any], predicted: Sequence[Any]) -> tuple[float, float, float]:
    """Precision, recall and F1 over all pairs of items put in one group."""
    tp = fp = fn = 0
    for i, j in itertools.combinations(range(len(truth)), 2):
        same_true, same_pred = truth[i] == truth[j], predicted[i] == predicted[j]
        tp += same_true and same_pred
        fp += same_pred and not same_true
        fn += same_true and not same_pred
    return prf(tp, fp, fn)


def bcubed(truth: Sequence[Any], predicted: Sequence[Any]) -> tuple[float, float, float]:
    """B-cubed precision, recall and F1 (per-item averages)."""
    both = Counter(zip(truth, predicted, strict=True))
    by_pred, by_true = Counter(predicted), Counter(truth)
    labels = list(zip(truth, predicted, strict=True))
    p = statistics.fmean(both[label] / by_pred[label[1]] for label in labels)
    r = statistics.fmean(both[label] / by_true[label[0]] for label in labels)
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


# --------------------------------------------------------------------- daemon runs


def published_by(port: int, path: str = "/_published") -> dict[str, Any]:
    """What a feed server on 127.0.0.1 says it published (feedserver.serve_growing)."""
    import json
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=60) as answer:
        data: dict[str, Any] = json.load(answer)
        return data


def stored_guid_counts(db: Path) -> dict[str, int]:
    """How many items of a watcher database carry each GUID (empty while it cannot be read)."""
    try:
        rows = query(db, "SELECT guid, count(*) FROM items GROUP BY guid")
    except sqlite3.OperationalError:
        return {}
    return {str(guid): int(count) for guid, count in rows}


@dataclass
class DaemonRun(Generic[T]):
    """A ``watcher run`` from its start to SIGTERM: the readings taken meanwhile, when
    publishing stopped (``time.monotonic``), the seconds it then took to store what was
    published, its exit code."""

    samples: list[T]
    publishing_ended: float
    caught_up: float
    returncode: int


def run_daemon(
    config: Path,
    db: Path,
    log_path: Path,
    *,
    reading: Callable[[int], T],
    publishing: Callable[[], bool],
    progress: Callable[[float, list[T]], str],
    expected: Callable[[], set[str]],
    drain: float,
    every: float,
) -> DaemonRun[T]:
    """``watcher run`` (output to ``log_path``) from the moment it logs that it started:
    ``reading(pid)`` every ``every`` seconds and once at the end, while ``publishing()``
    holds (``progress(minutes, samples)`` on stderr once a minute; exits with the log if the
    daemon ends first), then until every GUID of ``expected()`` is stored (at most
    ``drain`` seconds); then SIGTERM. Killed on the way out if still running."""
    with log_path.open("wb") as sink:
        process = subprocess.Popen(
            watcher(config, db, "run"), stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        _wait_started(process, log_path)
        samples: list[T] = []
        sampler = Sampler(lambda: samples.append(reading(process.pid)), every)
        try:
            began = time.monotonic()
            minutes = 0
            while publishing():
                if process.poll() is not None:
                    sys.exit(
                        f"the daemon exited with {process.returncode}:\n{log_path.read_text()}"
                    )
                if time.monotonic() - began >= 60 * (minutes + 1):
                    minutes += 1
                    print(progress((time.monotonic() - began) / 60, samples), file=sys.stderr)
                time.sleep(2)
            publishing_ended = time.monotonic()
            caught_up = wait_stored(expected(), db, drain)
            last = reading(process.pid)
        finally:
            sampler.stop()
        samples.append(last)
        process.send_signal(signal.SIGTERM)
        return DaemonRun(samples, publishing_ended, caught_up, process.wait(timeout=120))
    finally:
        if process.poll() is None:
            process.kill()


def _wait_started(process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 120
    while b'"started"' not in log_path.read_bytes():  # "started": a daemon that has loaded
        if process.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"the daemon did not start:\n{log_path.read_text(errors='replace')[-4000:]}")
        time.sleep(0.2)


def wait_stored(expected: set[str], db: Path, seconds: float) -> float:
    """Wait (at most ``seconds``) until every GUID of ``expected`` is stored in ``db``; the
    seconds waited."""
    began = time.monotonic()
    while time.monotonic() - began < seconds and not expected <= set(stored_guid_counts(db)):
        time.sleep(2)
    return time.monotonic() - began
