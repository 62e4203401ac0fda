"""Benchmark of issue 13: CPU milliseconds per item of each stage of a cold poll.

Generates feeds with bench_poll's generator, stores the first ``--corpus-feeds`` of them
as the corpus (a real SQLite file), then measures on the remaining ``--feeds`` feeds, in one
process and with ``time.process_time`` (CPU, not wall clock: the machine is shared):

* the pool's stages: ``parse_feed``, ``normalize_entry`` (language detection also alone),
  topic ``match``, ``tag_item`` (keywords, names, keyphrases also alone), ``fingerprint``;
* the main process's ``ingest_batch`` into a copy of the corpus file, split into
  ``find_exact``, candidate lookup (SQL + decoding), ``decide``, writes and the commit.

Each figure is the median over ``--repeat`` rounds. ``--compare REV`` runs the same
measurement on the code of git revision REV too (its ``watcher`` package unpacked
under bench/results/), the two taking turns round by round (the order flipping every
round) on the same feed files, and prints both columns.

    python bench/bench_stages.py                    # writes its section of docs/benchmarks.md
    python bench/bench_stages.py --compare c1ab819  # before/after table
    python bench/bench_stages.py --quick --no-write # smoke run
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from common import (
    ROOT,
    Section,
    Tally,
    arguments,
    machine,
    measured_with,
    publish,
    remove_db,
    revision,
    time_calls,
    workdir,
)
from feedserver import TOPICS_TOML, generate_feeds

SECTION = "## Poll stages (issue 13)"
CODE_DIR = os.environ.get("WATCHER_BENCH_CODE")
sys.path.insert(0, CODE_DIR or str(ROOT))  # the watcher package measured

ROWS: list[tuple[str, str, str]] = [  # key, label, what a figure is per
    ("parse_feed", "`parse_feed` (feedparser + raw entries)", "entry"),
    ("normalize_entry", "`normalize_entry`, all of it", "entry"),
    ("language", "· language detection alone", "entry"),
    ("match", "topic `match` (per feed batch)", "entry"),
    ("tag_item", "`tag_item`, all of it", "tagged item"),
    ("tag_keywords", "· keywords and aliases alone", "tagged item"),
    ("tag_names", "· places and organisations alone", "tagged item"),
    ("tag_keyphrases", "· keyphrases alone", "tagged item"),
    ("fingerprint", "`fingerprint`", "tagged item"),
    ("prepare_feed", "**`prepare_feed`, all of it** (pool CPU)", "entry"),
    ("ingest_batch", "**`ingest_batch`, all of it** (main-process CPU)", "ingested item"),
    ("ingest_find_exact", "· `find_exact` (level 1)", "ingested item"),
    ("ingest_candidates", "· candidate lookup (SQL + decoding)", "ingested item"),
    ("ingest_decide", "· `decide`", "ingested item"),
    ("ingest_story", "· story step (`choose_story`, keeping vectors, corrections, `cluster_batch`)",
     "ingested item"),
    ("ingest_writes", "· inserts (item, fingerprint, keys, topics, tags, sightings)",
     "ingested item"),
    ("ingest_commit", "· commit", "ingested item"),
    ("ingest_rest", "· the rest (loop, records)", "ingested item"),
]  # fmt: skip

# Where each part of ingest_batch lives, old names and new: absent ones are skipped, so one
# script measures every revision. Only one level per part, so nothing is counted twice.
STORE = "watcher.store.database:Store"
INGEST_PARTS: dict[str, list[tuple[str, str]]] = {
    "ingest_find_exact": [(STORE, "find_exact")],
    "ingest_candidates": [("watcher.ingest", "_candidates"), ("watcher.ingest", "story_candidates")],
    "ingest_decide": [("watcher.ingest", "decide")],
    "ingest_story": [
        *(("watcher.ingest", name) for name in ("choose_story", "remember", "correct",
          "correct_soon", "cluster_batch", "flush_frequencies")),
        ("watcher.story_keeping:Keeping", "flush"),
    ],
    "ingest_writes": [(STORE, name) for name in ("insert_item", "save_fingerprint", "set_topics",
                      "set_tags", "add_sighting", "add_topics", "add_tags", "add_sightings")],
}  # fmt: skip


def _topics() -> tuple[Any, ...]:
    from watcher.config import TopicConfig

    data = tomllib.loads(TOPICS_TOML)
    return tuple(TopicConfig(**topic) for topic in data["topics"])


def _owner(where: str) -> Any:
    """The module ("watcher.ingest") or class ("watcher.store.database:Store") named (None
    where the revision measured has no such module)."""
    module_name, _, class_name = where.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError:
        return None
    return getattr(module, class_name) if class_name else module


@contextlib.contextmanager
def _patched(spent: Tally) -> Iterator[None]:
    """CPU seconds of each part of :data:`INGEST_PARTS` inside ``ingest_batch``, and of its
    commits, added to ``spent`` while the block runs."""
    from watcher.store.database import Store

    places = [
        (_owner(where), name, part) for part, at in INGEST_PARTS.items() for where, name in at
    ]
    undo = time_calls(places, spent.add, time.process_time)
    transaction = Store.transaction

    @contextlib.contextmanager
    def timed_transaction(self: Any) -> Iterator[None]:
        manager = transaction(self)
        manager.__enter__()
        try:
            yield
        except BaseException:
            manager.__exit__(*sys.exc_info())
            raise
        start = time.process_time()
        manager.__exit__(None, None, None)
        spent.add("ingest_commit", time.process_time() - start)

    Store.transaction = timed_transaction  # type: ignore[method-assign]
    try:
        yield
    finally:
        Store.transaction = transaction  # type: ignore[method-assign]
        undo()


def _feed_bodies(directory: Path) -> list[tuple[str, bytes]]:
    return [
        (f"http://127.0.0.1/feed/{p.name}", p.read_bytes()) for p in sorted(directory.glob("*.xml"))
    ]


HEADERS = {"content-type": "application/rss+xml; charset=utf-8"}
NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


def build_corpus(feeds: list[tuple[str, bytes]], path: Path, topics: tuple[Any, ...]) -> int:
    from watcher.ingest import ingest_batch
    from watcher.normalize import utc_iso
    from watcher.prepare import prepare_feed
    from watcher.store import Store

    store = Store.open(path)
    now = utc_iso(NOW - dt.timedelta(hours=1))
    for url, body in feeds:
        store.add_feed(url, now=now)
        feed_id = int(store._one("SELECT id FROM feeds WHERE url = ?", [url]))
        batch = prepare_feed(body, HEADERS, url, topics, keep_unmatched=False, now=NOW)
        ingest_batch(store, batch.items, feed_id=feed_id, now=now)
    stored = store.count("items")
    store.close()
    return stored


def measure_round(
    feeds: list[tuple[str, bytes]], corpus: Path, workdir: Path, topics: tuple[Any, ...]
) -> dict[str, float]:
    """One round over ``feeds``: CPU ms per item of every row of :data:`ROWS`."""
    from watcher.dedupe import batch_identities
    from watcher.ingest import ingest_batch
    from watcher.normalize import detect_language, normalize_entry, primary_language, utc_iso
    from watcher.prepare import _matcher, prepare_feed
    from watcher.similarity import fingerprint
    from watcher.sources.parse import parse_feed
    from watcher.store import Store
    from watcher.tagging import tag_item
    from watcher.tagging.keyphrases import select_keyphrases
    from watcher.tagging.keywords import build_keyword_matcher
    from watcher.tagging.names import find_names
    from watcher.tagging.options import DEFAULT_OPTIONS as options
    from watcher.tagging.text import language_code, stopwords_for, strip_boilerplate, truncate

    spent = Tally(time.process_time)
    counts = {"entry": 0, "tagged item": 0, "ingested item": 0}
    queries = tuple((topic.name, topic.query) for topic in topics)

    def normalize_all(parsed: Any, language: str | None) -> list[Any]:
        items = (normalize_entry(entry, now=NOW, feed_language=language, source=parsed.title)
                 for entry in parsed.entries)  # fmt: skip
        return [item for item in items if item is not None]

    def languages(items: list[Any], language: str | None) -> None:
        for item in items:
            detect_language(f"{item.title}\n{item.content or item.summary}", language)

    def match(items: list[Any]) -> list[Any]:
        return _matcher(queries).match([(item.title, item.text) for item in items])

    def keywords(title: str, text: str) -> None:
        build_keyword_matcher(topics).find(f"{title}\n{text}", None)

    def names(title: str, text: str, lang: str) -> None:
        find_names(f"{title}\n{text}", stopwords_for(language_code(lang)), orgs=True)

    batches = []
    for url, body in feeds:
        parsed = spent.timed("parse_feed", parse_feed, body, HEADERS, url)
        language = primary_language(parsed.language)
        items = spent.timed("normalize_entry", normalize_all, parsed, language)
        counts["entry"] += len(parsed.entries)
        spent.timed("language", languages, items, language)
        items = batch_identities(items)
        for item, matched in zip(items, spent.timed("match", match, items), strict=True):
            if not matched:
                continue
            counts["tagged item"] += 1
            spent.timed("tag_item", tag_item, item.title, item.text, topics, matched, item.lang)
            title = " ".join(item.title.split())
            spent.timed("tag_keywords", keywords, title, item.text)
            clean_title = strip_boilerplate(title[: options.max_chars])
            clean_text = strip_boilerplate(truncate(item.text, options.max_chars))
            spent.timed("tag_names", names, clean_title, clean_text, item.lang)
            spent.timed(
                "tag_keyphrases", select_keyphrases, clean_title, clean_text, item.lang, options, ()
            )
            spent.timed("fingerprint", fingerprint, item.title, item.text, item.published_at)
        batch = spent.timed(
            "prepare_feed", prepare_feed, body, HEADERS, url, topics, keep_unmatched=False, now=NOW
        )
        batches.append((url, batch))
    db = remove_db(workdir / "round.db")
    shutil.copyfile(corpus, db)
    store = Store.open(db)
    now = utc_iso(NOW)
    ids = {}
    for url, _ in batches:
        store.add_feed(url, now=now)
        ids[url] = int(store._one("SELECT id FROM feeds WHERE url = ?", [url]))
    parts = Tally(time.process_time)
    with _patched(parts):
        for url, batch in batches:
            counts["ingested item"] += len(batch.items)
            spent.timed("ingest_batch", ingest_batch, store, batch.items, feed_id=ids[url], now=now)
    store.close()
    spent.update(parts)
    spent["ingest_rest"] = spent["ingest_batch"] - sum(parts.values())
    denominators = {key: counts[unit] for key, _, unit in ROWS}
    result = {key: 1000 * spent.get(key, 0.0) / max(1, denominators[key]) for key, _, _ in ROWS}
    result.update({f"count:{unit}": float(n) for unit, n in counts.items()})
    return result


def child(args: argparse.Namespace) -> None:
    """Measure the code on sys.path; one JSON line per round on stdout."""
    import watcher
    from watcher.normalize import warm_up_language
    from watcher.tagging import warm_up

    topics = _topics()
    warm_up()
    warm_up_language()
    feeds_dir = Path(args.feeds_dir)
    bodies = _feed_bodies(feeds_dir)
    corpus_feeds, measured = bodies[: args.corpus_feeds], bodies[args.corpus_feeds :]
    with workdir(None, "bench-stages-") as work:
        corpus = work / "corpus.db"
        stored = build_corpus(corpus_feeds, corpus, topics)
        print(
            json.dumps({"code": str(Path(watcher.__file__).parent), "corpus": stored}), flush=True
        )
        for _ in range(args.rounds):
            sys.stdin.readline()  # the parent's turn signal: old and new code alternate
            print(json.dumps(measure_round(measured, corpus, work, topics)), flush=True)


class Runner:
    """A child process measuring one code tree, round by round."""

    def __init__(self, label: str, code: Path, args: argparse.Namespace, feeds_dir: Path) -> None:
        self.label = label
        env = dict(os.environ, WATCHER_BENCH_CODE=str(code), PYTHONPATH=str(code))
        command = [
            sys.executable, __file__, "--child", "--feeds-dir", str(feeds_dir),
            "--corpus-feeds", str(args.corpus_feeds), "--rounds", str(args.repeat),
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        assert self.process.stdin is not None
        self.stdin, self.stdout = self.process.stdin, self.process.stdout
        header = json.loads(self.stdout.readline())
        self.code, self.corpus = header["code"], header["corpus"]
        self.rounds: list[dict[str, float]] = []

    def next_round(self) -> None:
        self.stdin.write("go\n")
        self.stdin.flush()
        line = self.stdout.readline()
        if not line:
            raise SystemExit(f"{self.label}: the measuring process ended early")
        self.rounds.append(json.loads(line))

    def close(self) -> None:
        self.stdin.close()
        self.process.wait()

    def median(self, key: str) -> float:
        return statistics.median(r[key] for r in self.rounds)


def _worktree(rev: str) -> Path:
    """The package of revision ``rev`` unpacked under bench/results/ (``git archive``)."""
    sha = subprocess.run(
        ["git", "rev-parse", "--short", rev], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()
    path = ROOT / "bench" / "results" / f"stages-{sha}"
    if not (path / "watcher").is_dir():
        path.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "archive", sha, "watcher"], cwd=ROOT, check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(path)], input=archive, check=True)
    return path


def _head() -> str:
    sha, dirty = revision()
    return sha + (" + uncommitted changes" if dirty else "")


def report(args: argparse.Namespace, runners: list[Runner], load: float) -> str:
    first = runners[-1].rounds[0]
    compared = ["--compare", args.compare] if args.compare else []
    note = f" ({args.repeat} rounds, medians; CPU time from `time.process_time`, one process)"
    section = Section(SECTION, measured_with("bench_stages.py", compared, note))
    section.add(
        f"- workload: bench_poll's generator (seed {args.seed}), {args.corpus_feeds} feeds × "
        f"{args.items} items stored first as the corpus ({runners[-1].corpus:,} items in a "
        f"real SQLite file), then {args.feeds} more feeds measured: "
        f"{int(first['count:entry']):,} entries, {int(first['count:tagged item']):,} matched "
        f"and tagged, {int(first['count:ingested item']):,} ingested into a copy of the corpus",
        f"- machine: {machine()}; load average {load:.2f} at the start; code: "
        + ", ".join(f"{r.label} = `{r.code}`" for r in runners),
    )
    if len(runners) == 2:
        old, new = runners
        header = ["stage", "per", f"before ({old.label}) ms", f"after ({new.label}) ms"]
        rows = []
        for key, label, unit in ROWS:
            a, b = old.median(key), new.median(key)
            rows.append(
                [label, unit, f"{a:.3f}", f"{b:.3f}", f"{b / a:.2f}×" if a > 0.0005 else "–"]
            )
        section.table([*header, "after / before"], rows, "llrrr")
    else:
        (only,) = runners
        rows = [[label, unit, f"{only.median(key):.3f}"] for key, label, unit in ROWS]
        section.table(["stage", "per", f"CPU ms ({only.label})"], rows, "llr")
    section.add(
        "An entry is one item of a feed; a tagged item one that matched a topic (the others are "
        "dropped after `match`); an ingested item one handed to `ingest_batch`. The parts "
        "marked · are measured alone on the same inputs (the tagging parts with the inputs "
        "`tag_item` gives them; the ingest parts by timing the functions inside one "
        "`ingest_batch`)."
    )
    return str(section)


def main() -> None:
    parser = arguments(
        __doc__,
        quick="20 + 10 feeds, 2 rounds",
        write="the section of docs/benchmarks.md",
        seed=2,
    )
    parser.add_argument("--feeds", type=int, default=40, help="feeds measured (default 40)")
    parser.add_argument("--corpus-feeds", type=int, default=80, help="feeds stored first (80)")
    parser.add_argument("--items", type=int, default=50, help="items per feed (50)")
    parser.add_argument("--repeat", type=int, default=5, help="rounds (5)")
    parser.add_argument("--compare", metavar="REV", help="also measure git revision REV")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--feeds-dir", help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if args.quick:
        args.feeds, args.corpus_feeds, args.repeat = 10, 20, 2
    load = os.getloadavg()[0]
    with workdir(None, "bench-stages-feeds-") as feeds_dir:
        generate_feeds(feeds_dir, args.corpus_feeds + args.feeds, args.items, args.seed)
        runners = []
        if args.compare:
            runners.append(Runner(args.compare, _worktree(args.compare), args, feeds_dir))
        runners.append(Runner(_head(), ROOT, args, feeds_dir))
        for round_number in range(args.repeat):
            # the order flips every round: whichever runs second in a round pays for it
            for runner in runners if round_number % 2 == 0 else runners[::-1]:
                runner.next_round()
        for runner in runners:
            runner.close()
    publish(SECTION, report(args, runners, load), write=not args.no_write)


if __name__ == "__main__":
    main()
