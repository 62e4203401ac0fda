"""Capacity benchmark of issue 24: how many feeds one `watcher run` keeps up with.

A separate process serves N generated feeds on 127.0.0.1 (ETags, gzip, 10 entries each at
the start); once per round a fifth of them gains 1-5 entries, and about 5 % of all entries
are written about the topic. The real daemon (`python -m watcher ... run`) polls every feed
once per round at a fixed interval; the feeds' first due times are spread evenly over the
first round, as a daemon that has run for a while has them. The script samples CPU and
memory of the daemon's process tree, reads each poll's lag behind its due time from the
fetch log (`fetches.lag_ms`), lets the daemon catch up once publishing stops, and counts the
on-topic entries stored against those the server published.

    python bench/bench_capacity.py --feeds 2000 --interval 90        # one size
    python bench/bench_capacity.py --feeds 2000,5000 --interval 90,60

An interval shorter than the issue's 15 minutes scales the load: N feeds every I seconds
ask N / I polls a second, as N × 900 / I feeds every 15 minutes do. Results: docs/scaling.md
(written by hand from what this prints).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time
from dataclasses import dataclass
from pathlib import Path

from common import (
    Memory,
    arguments,
    cpu_seconds,
    log,
    machine,
    measured_with,
    percentile,
    published_by,
    query,
    remove_db,
    run_daemon,
    stored_guid_counts,
    table,
    tree_cpu,
    tree_memory,
    workdir,
)
from feedserver import TOPICS_TOML, GrowingSpec, serving_growing, write_config

SAMPLE_EVERY = 5.0
ROUND_HEADER = ["round", "polls", "polls/s", "changed (ok)", "lag p50 s", "lag p95 s",
                "lag max s", "writer queue max"]  # fmt: skip
LAG_GOAL_SECONDS = 60.0
ONE_TOPIC = TOPICS_TOML.split("\n[[topics]]", 2)[1]
TOPIC = "\n[[topics]]" + ONE_TOPIC
"""Only the Kant air base topic: the generator writes about it on purpose (``topic_share``)
and nothing else matches it, so the server knows which entries must be stored."""


FetchRow = tuple[str, str, int | None, int | None, int]
"""started_at, outcome, lag_ms, writer_queue, new_items of one poll (the fetch log)."""


@dataclass
class Sample:
    seconds: float
    memory: Memory
    main_cpu: float
    tree_cpu: float
    server_cpu: float


@dataclass
class Capacity:
    """One size's run: the fetch log, the samples, the on-topic items against those stored."""

    feeds: int
    interval: float
    start: dt.datetime
    rows: list[FetchRow]
    samples: list[Sample]
    published: int
    on_topic: int
    stored: int
    missed: int
    doubled: int
    unexpected: int
    returncode: int
    drain_seconds: float
    lag_warnings: int


def capacity_config(path: Path, urls: list[str], interval: float, args: argparse.Namespace) -> None:
    # Every feed on 127.0.0.1 (per_host is the global limit), one fixed interval (min = max).
    every = f"{interval:g}s"
    write_config(
        path,
        urls,
        TOPIC,
        poll={"default_interval": every, "concurrency": 32, "per_host": 32,
              "workers": args.workers, "executor": args.executor},
        daemon={"min_interval": every, "max_interval": every, "watch_config": "off",
                "log_format": "json"},
    )  # fmt: skip


def spread_due_times(config: Path, db: Path, start: dt.datetime, interval: float) -> None:
    """Create the database and give feed i the due time start + i / N of the interval."""
    from watcher.config import load_config
    from watcher.normalize import utc_iso
    from watcher.store import Store

    store = Store.open(db)
    try:
        store.sync_config(load_config(config), utc_iso(start))
        ids = [row[0] for row in store.db.execute("SELECT id FROM feeds ORDER BY id")]
        with store.db.conn:
            for rank, feed_id in enumerate(ids):
                due = start + dt.timedelta(seconds=interval * rank / len(ids))
                store.db.execute(
                    "UPDATE feeds SET next_due_at = ? WHERE id = ?", [utc_iso(due), feed_id]
                )
    finally:
        store.close()


def fetch_rows(db: Path) -> list[FetchRow]:
    columns = "started_at, outcome, lag_ms, writer_queue, new_items"
    return query(db, f"SELECT {columns} FROM fetches ORDER BY id")


def run_size(feeds: int, interval: float, args: argparse.Namespace, work: Path) -> Capacity:
    rounds = args.rounds
    spec = GrowingSpec(
        feeds=feeds,
        initial=args.initial,
        window=60,
        tick=interval,
        share=args.share,
        burst=5,
        publish_seconds=10 * rounds * interval + 600,  # stopped with /_stop
        seed=args.seed,
        topic_share=args.topic_share,
    )
    config = work / "watcher.toml"
    db = remove_db(work / "watcher.db")
    log_path = work / "daemon.log"
    log(f"capacity: {feeds} feeds every {interval:g} s, {rounds} rounds …")
    with serving_growing(spec) as (server, port, urls):
        capacity_config(config, urls, interval, args)
        start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=10)
        spread_due_times(config, db, start, interval)
        end = start + dt.timedelta(seconds=rounds * interval)
        began = time.monotonic()

        def reading(pid: int, server_pid: int = server.pid) -> Sample:
            return Sample(
                time.monotonic() - began,
                tree_memory(pid),
                cpu_seconds(pid, reaped=True),
                tree_cpu(pid, reaped=True),
                cpu_seconds(server_pid, reaped=True),
            )

        def progress(minutes: float, samples: list[Sample]) -> str:
            rows = fetch_rows(db)
            recent = [r[2] / 1000 for r in rows[-500:] if r[2] is not None]
            return (
                f"  {minutes:4.1f} min: {len(rows):,} polls, lag p95 of the last 500 "
                f"{percentile(recent, 95):.1f} s, tree RSS {samples[-1].memory.rss_mb:.0f} MB"
            )

        run = run_daemon(
            config, db, log_path, reading=reading, every=SAMPLE_EVERY, drain=args.drain,
            publishing=lambda: dt.datetime.now(dt.UTC) < end, progress=progress,
            expected=lambda: set(published_by(port, "/_stop")["on_topic"]),  # publishing stops
        )  # fmt: skip
        final = published_by(port)
    stored = stored_guid_counts(db)
    on_topic = set(final["on_topic"])
    lag_warnings = sum(
        1
        for line in log_path.read_text(errors="replace").splitlines()
        if "feeds running late" in line
    )
    return Capacity(
        feeds=feeds,
        interval=interval,
        start=start,
        rows=fetch_rows(db),
        samples=run.samples,
        published=len(final["guids"]),
        on_topic=len(on_topic),
        stored=sum(stored.values()),
        missed=len(on_topic - set(stored)),
        doubled=sum(1 for count in stored.values() if count > 1),
        unexpected=len(set(stored) - on_topic),
        returncode=run.returncode,
        drain_seconds=run.caught_up,
        lag_warnings=lag_warnings,
    )


def _stamp(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)


def report(result: Capacity) -> tuple[list[str], dict[str, float]]:
    feeds, interval, rows, samples = result.feeds, result.interval, result.rows, result.samples
    by_round: dict[int, list[FetchRow]] = {}
    for row in rows:
        index = int((_stamp(row[0]) - result.start).total_seconds() // interval)
        by_round.setdefault(max(0, index), []).append(row)
    lines = []
    steady_lags: list[float] = []
    for index in sorted(by_round):
        chunk = by_round[index]
        lags = [r[2] / 1000 for r in chunk if r[2] is not None]
        queues = [r[3] for r in chunk if r[3] is not None]
        if index >= 1:
            steady_lags.extend(lags)
        lines.append([
            f"{index + 1}" + (" (cold)" if index == 0 else ""), f"{len(chunk):,}",
            f"{len(chunk) / interval:.1f}", f"{sum(1 for r in chunk if r[1] == 'ok'):,}",
            f"{percentile(lags, 50):.1f}", f"{percentile(lags, 95, nearest_rank=True):.1f}",
            f"{max(lags) if lags else float('nan'):.1f}", f"{max(queues) if queues else 0}",
        ])  # fmt: skip
    first, last = samples[0], samples[-1]
    wall = last.seconds - first.seconds
    main_cpu = last.main_cpu - first.main_cpu
    tree_cpu = last.tree_cpu - first.tree_cpu
    server_cpu = last.server_cpu - first.server_cpu
    polls = len(rows)
    figures = {
        "feeds": feeds,
        "interval": interval,
        "demand": feeds / interval,
        "equivalent_15min": feeds * 900 / interval,
        "steady_p95": percentile(steady_lags, 95, nearest_rank=True),
        "main_cores": main_cpu / wall,
        "workers_cores": (tree_cpu - main_cpu) / wall,
        "server_cores": server_cpu / wall,
        "main_ms_per_poll": 1000 * main_cpu / max(polls, 1),
        "workers_ms_per_poll": 1000 * (tree_cpu - main_cpu) / max(polls, 1),
    }
    memory = ", ".join(
        f"{sample.seconds / 60:.0f}: {sample.memory.rss_mb:.0f}/{sample.memory.pss_mb:.0f}"
        for sample in samples[:: max(1, int(60 / SAMPLE_EVERY))]
    )
    text = [
        f"### {feeds:,} feeds every {interval:g} s ({feeds / interval:.1f} polls/s asked, "
        f"as {feeds * 900 / interval:,.0f} feeds every 15 minutes)",
        "",
        *table(ROUND_HEADER, lines),
        "",
        f"- CPU over {wall / 60:.1f} minutes, in cores: daemon main process "
        f"{figures['main_cores']:.2f} (event loop + writer thread), parsing workers "
        f"{figures['workers_cores']:.2f}, feed server {figures['server_cores']:.2f}; per poll: "
        f"main {figures['main_ms_per_poll']:.1f} ms, workers {figures['workers_ms_per_poll']:.1f} ms",
        f"- tree memory by minute, RSS/PSS MB: {memory}; peak RSS "
        f"{max(s.memory.rss_mb for s in samples):.0f} MB",
        f"- items: {result.on_topic:,} of {result.published:,} published entries were "
        f"on the topic; stored {result.stored:,}: missed {result.missed}, doubled "
        f"{result.doubled}, not on the topic {result.unexpected}; caught up "
        f"{result.drain_seconds:.0f} s after publishing stopped; exit "
        f"{result.returncode}; 'feeds running late' warnings: {result.lag_warnings}",
        f"- steady rounds (2 on): lag p95 {figures['steady_p95']:.1f} s — "
        + ("keeps up" if figures["steady_p95"] < LAG_GOAL_SECONDS else "falls behind")
        + f" (goal p95 < {LAG_GOAL_SECONDS:g} s)",
        "",
    ]
    return text, figures


def main() -> None:
    parser = arguments(__doc__, work=True, seed=24, workers=True)
    parser.add_argument("--feeds", default="2000", help="feed counts, comma-separated")
    parser.add_argument("--interval", default="90", help="seconds per round, one or one per size")
    parser.add_argument("--rounds", type=int, default=4, help="rounds of publishing (first: cold)")
    parser.add_argument("--initial", type=int, default=10, help="entries per feed at the start")
    parser.add_argument("--share", type=float, default=0.2, help="share of feeds changing a round")
    parser.add_argument("--topic-share", type=float, default=0.05, help="share of on-topic entries")
    parser.add_argument("--executor", default="local", help="[poll] executor")
    parser.add_argument("--drain", type=float, default=180.0, help="longest catch-up, seconds")
    args = parser.parse_args()
    print(measured_with("bench_capacity.py", args.argv, f"; {machine()}") + "\n")
    sizes = [int(value) for value in args.feeds.split(",")]
    intervals = [float(value) for value in args.interval.split(",")]
    intervals += [intervals[-1]] * (len(sizes) - len(intervals))
    summary = []
    for feeds, interval in zip(sizes, intervals, strict=False):
        with workdir(args.workdir, "bench-capacity-") as work:
            result = run_size(feeds, interval, args, work)
        text, figures = report(result)
        print("\n".join(text), flush=True)
        summary.append(figures)
    header = ["feeds", "interval s", "polls/s asked", "as feeds / 15 min", "steady lag p95 s",
              "main cores", "worker cores"]  # fmt: skip
    rows = [
        [f"{f['feeds']:,.0f}", f"{f['interval']:g}", f"{f['demand']:.1f}",
         f"{f['equivalent_15min']:,.0f}", f"{f['steady_p95']:.1f}", f"{f['main_cores']:.2f}",
         f"{f['workers_cores']:.2f}"]
        for f in summary
    ]  # fmt: skip
    print("\n".join(table(header, rows)))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
