"""Digest speed on a large corpus: build the next digest of a day out of many stored items.

    python bench/bench_digest.py [--items 200000] [--window 2000]   (prints a Markdown table)

Synthetic items are written straight through the Store (no dedupe, no tagging: this
measures the digest, not the ingest); every tenth item is a second report of the story
before it, every twentieth a near-duplicate, each carries three tags. The newest
``--window`` items are inside the digest's one-day lookback, the rest are older. Timed:
the everything preview (newest 5,000 per topic), the due preview of a configured digest,
a full send to an aiosmtpd server on 127.0.0.1, and the empty run after it.
"""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from aiosmtpd.controller import Controller
from common import arguments, machine, query, table, timed, workdir

from watcher.config import config_from_dict
from watcher.digest import preview_digest, send_digest
from watcher.models import Item, Tag
from watcher.normalize import utc_iso
from watcher.store import Store

NOW = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)


class Sink:
    def __init__(self) -> None:
        self.sizes: list[int] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.sizes.append(len(getattr(envelope, "original_content", b"") or b""))
        return "250 OK"


def fill(store: Store, items: int, window: int) -> None:
    old = NOW - timedelta(days=30)
    with store.transaction():
        story = 0
        for number in range(items):
            recent = number >= items - window
            seen = NOW - timedelta(seconds=(items - number) * 30) if recent else old
            item = Item(
                title=f"Harbour report {number} on cranes and ferries",
                summary=f"Report {number}: the port board discussed item {number} at length.",
                content="",
                url=f"https://outlet{number % 40}.example/{number}",
                canonical_url=f"https://outlet{number % 40}.example/{number}",
                guid=None,
                published_at=utc_iso(seen),
                lang="en",
                content_hash=f"h{number}",
                source=f"Outlet {number % 40}",
            )
            second = number % 10 == 1
            copy = number % 20 == 3
            item_id = store.insert_item(
                item,
                feed_id=None,
                first_seen_at=utc_iso(seen),
                duplicate_of=story if copy else None,
                story_id=story if (second or copy) else None,
            )
            if not (second or copy):
                story = item_id
            store.set_topics(item_id, ["harbour"] if number % 3 else ["harbour", "weather"])
            store.set_tags(
                item_id,
                [
                    Tag("harbour", "topic", 1.0),
                    Tag(f"crane{number % 50}", "keyword", 0.5),
                    Tag("velmar", "place", 0.75),
                    Tag("some phrase", "keyphrase", 1.0),
                ],
            )


def main(argv: Sequence[str] | None = None) -> int:
    parser = arguments(__doc__)
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--window", type=int, default=2_000)
    args = parser.parse_args(argv)

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    config = config_from_dict(
        {
            "topics": [
                {"name": "harbour", "title": "Harbour", "query": "harbour"},
                {"name": "weather", "title": "Weather", "query": "weather"},
            ],
            "digests": [{"name": "daily", "to": ["a@news.example"], "schedule": "0 7 * * *"}],
            "smtp": {
                "host": "127.0.0.1",
                "port": port,
                "security": "none",
                "from_address": "w@news.example",
            },
        },
        "bench",
    )
    with workdir(None, "bench-digest-") as scratch:
        path = scratch / "bench.db"
        store = Store.open(path)
        fill_s, _ = timed(lambda: fill(store, args.items, args.window))
        store.db.execute("PRAGMA optimize")
        rows = []
        seconds, preview = timed(lambda: preview_digest(config, store, now=NOW))
        rows.append(("everything preview (`--dry-run`, no digest configured)", seconds, preview))
        seconds, preview = timed(lambda: preview_digest(config, store, "daily", now=NOW))
        rows.append(("due preview of `daily` (`--name daily --dry-run`)", seconds, preview))
        seconds, outcome = timed(lambda: send_digest(config, store, "daily", now=NOW))
        assert outcome.status == "sent", outcome
        seconds_empty, empty = timed(
            lambda: send_digest(config, store, "daily", now=NOW + timedelta(minutes=1))
        )
        assert empty.status == "empty", empty
        store.close()
        size_mb = path.stat().st_size / 1e6
        items = query(path, "SELECT count(*) FROM items")[0][0]
    controller.stop()

    print(
        f"corpus: {items:,} items ({size_mb:.0f} MB), {args.window:,} first seen in the last "
        f"day; filled in {fill_s:.0f} s; {machine(f'SQLite {sqlite3.sqlite_version}')}\n"
    )
    cells = [[label, f"{s:.2f}", d.digest.story_count, d.digest.item_count] for label, s, d in rows]
    cells.append(
        ["send `daily` to aiosmtpd on 127.0.0.1", f"{seconds:.2f}", outcome.stories, outcome.items]
    )
    cells.append(["send `daily` again: nothing new", f"{seconds_empty:.2f}", 0, 0])
    print("\n".join(table(["run", "wall s", "stories", "items"], cells)))
    print(f"\nmail size: {sink.sizes[0] / 1000:.0f} kB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
