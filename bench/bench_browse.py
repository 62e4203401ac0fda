"""Time the pages an analyst opens in `watcher serve` on a large synthetic corpus.

    python bench/bench_browse.py [--items N] [--workdir DIR] [--repeat K]

Builds (or reuses, with --workdir) a database of N items through the real migrations,
written with plain SQL in bulk (the poll path is measured by bench_poll.py): 50 feeds,
two topics, ten tags per item from a vocabulary of 2,000, one item in eight a copy,
about one in three items joining an earlier story. Texts are 60 words from a small
vocabulary (so a search for two of them matches every item, the worst case) and one of
2,000 rare words (a selective search, the usual case). Then asks a real Datasette instance (the one `watcher
serve` builds, through its in-process client) for each page K times and prints the
median and the slowest time per page as a Markdown table, with the facets that gave up
(each facet has 0.5 s). A page over the 3 s SQL time limit shows as status 400.
"""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common import ROOT, arguments, log, machine, query, table, timed, workdir

from watcher.browse import build_datasette, load_metadata
from watcher.store import Store

WORDS = [
    "Kant", "air", "base", "Kyrgyzstan", "Bishkek", "drones", "CSTO", "exercise", "defence",
    "ministry", "Russia", "border", "patrol", "radar", "aircraft", "treaty", "troops",
    "officials", "council", "market", "water", "road", "election", "parliament", "budget",
    "minister", "report", "agreement", "shipment", "engineers", "crews",
]  # fmt: skip
RARE = [f"rare{n}" for n in range(2000)]
"""One of these per item, so that some searches match 1 item in 2,000 (as names do)."""


def build(db: Path, items: int, seed: int = 7) -> None:
    random.seed(seed)
    Store.open(db).close()
    connection = sqlite3.connect(db)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = OFF")
    now = datetime(2026, 12, 1, tzinfo=UTC)
    with connection:
        connection.executemany(
            "INSERT INTO feeds(id, url, title, created_at, last_fetch_at, last_success_at, "
            "next_due_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(f, f"https://feed{f}.example/rss.xml", f"Feed {f}", "2026-01-01T00:00:00Z",
              *["2026-12-01T00:00:00Z"] * 3) for f in range(1, 51)],
        )  # fmt: skip
        connection.executemany(
            "INSERT INTO tags(id, name, kind) VALUES (?, ?, 'keyphrase')",
            [(t, f"tag {t}") for t in range(1, 2001)],
        )
    batch: list[tuple[object, ...]] = []
    topics: list[tuple[int, str]] = []
    tags: list[tuple[int, int, float]] = []
    story_of: dict[int, int] = {}
    for item_id in range(1, items + 1):
        when = now - timedelta(seconds=(items - item_id) * 30)
        stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
        copy = item_id > 10 and random.random() < 0.125
        if item_id > 10 and random.random() < 0.35:
            story = story_of[random.randint(max(1, item_id - 50), item_id - 1)]
        else:
            story = item_id
        story_of[item_id] = story
        text = " ".join([*random.choices(WORDS, k=60), random.choice(RARE)])
        title = f"Report {item_id}: " + " ".join(random.choices(WORDS, k=7))
        batch.append((item_id, f"https://news{item_id % 50}.example/{item_id}", title, text,
                      stamp, stamp, item_id % 50 + 1, f"hash{item_id}",
                      item_id - 1 if copy else None, story))  # fmt: skip
        topics.append((item_id, "kant-air-base" if item_id % 3 else "russia-kyrgyzstan-defence"))
        tags.extend((item_id, tag, 0.5) for tag in random.sample(range(1, 2001), 10))
        if len(batch) == 10_000 or item_id == items:
            with connection:
                connection.executemany(
                    "INSERT INTO items(id, url, title, summary, published_at, first_seen_at, "
                    "feed_id, content_hash, duplicate_of, story_id) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    batch,
                )
                connection.executemany("INSERT INTO item_topics VALUES (?, ?)", topics)
                connection.executemany("INSERT INTO item_tags VALUES (?, ?, ?)", tags)
                connection.executemany(
                    "INSERT INTO sightings(item_id, feed_id, url, seen_at, match) "
                    "VALUES (?, ?, ?, ?, 'first')",
                    [(row[0], row[6], row[1], row[5]) for row in batch],
                )
            batch, topics, tags = [], [], []
    connection.execute("ANALYZE")
    connection.close()


PAGES = [
    ("news, newest first (with facets)", "/{db}/news.json"),
    ("news, search matching every item", "/{db}/news.json?_search=drones+Bishkek"),
    ("news, search matching 1 in 2,000", "/{db}/news.json?_search=rare17"),
    ("news, one topic", "/{db}/news.json?topics__arraycontains=kant-air-base"),
    ("news, one story", "/{db}/news.json?story_id={story}"),
    ("stories", "/{db}/story_summary.json"),
    ("items, search matching 1 in 2,000", "/{db}/items.json?_search=rare17"),
    ("latest_per_topic", "/{db}/latest_per_topic.json"),
    ("biggest_stories", "/{db}/biggest_stories.json"),
    ("items_for_tag", "/{db}/items_for_tag.json?tag=tag+17"),
    ("feed_health", "/{db}/feed_health.json"),
    ("item_family", "/{db}/item_family.json?item={story}"),
]


async def measure(db: Path, repeat: int) -> list[tuple[str, str, float, float, str]]:
    name = db.stem
    metadata = load_metadata(ROOT / "db" / "metadata.yml", name)
    ds = build_datasette(db, metadata)
    tables = metadata["databases"][name]["tables"]
    facets = {
        table: {f if isinstance(f, str) else next(iter(f.values())) for f in spec["facets"]}
        for table, spec in tables.items()
        if "facets" in spec
    }
    story = query(db, "SELECT max(story_id) FROM items")[0][0]
    results = []
    for label, template in PAGES:
        path = template.format(db=name, story=story)
        table = path.split("/")[2].split(".")[0]
        times, statuses, timed_out = [], set(), set()
        for _ in range(repeat):
            start = time.perf_counter()
            response = await ds.client.get(path)
            times.append(time.perf_counter() - start)
            statuses.add(response.status_code)
            if response.status_code == 200 and table in facets:
                timed_out.update(facets[table] - set(response.json().get("facet_results", {})))
        status = ",".join(str(s) for s in sorted(statuses))
        gave_up = ", ".join(sorted(timed_out)) or "–"
        results.append((label, status, statistics.median(times), max(times), gave_up))
    return results


def main() -> None:
    parser = arguments(__doc__, work=True)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with workdir(args.workdir, "bench-browse-") as work:  # a temporary one is removed
        db = work / f"browse{args.items}.db"
        if not db.exists():
            seconds, _ = timed(build, db, args.items)
            log(f"built {db} in {seconds:.0f} s")
        results = asyncio.run(measure(db, args.repeat))
    print(
        f"{args.items:,} items, median of {args.repeat}; {machine()}; "
        f"load {os.getloadavg()[0]:.1f}\n"
    )
    rows = [
        [label, status, f"{median * 1000:,.0f} ms", f"{slowest * 1000:,.0f} ms", gave_up]
        for label, status, median, slowest, gave_up in results
    ]
    print(
        "\n".join(table(["page", "status", "median", "slowest", "facets timed out"], rows, "lllll"))
    )


if __name__ == "__main__":
    main()
