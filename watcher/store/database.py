"""The SQLite store: WAL, a busy timeout, one short transaction per feed batch."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from watcher import quick_check
from watcher.backoff import Fetched
from watcher.config import Config
from watcher.errors import QueryError, StoreError
from watcher.models import ArticlePage, EntryCounts, FeedState, Item, KnownKeys, Tag
from watcher.store.faults import database_fault, fault_reason, faults_raised
from watcher.store.schema import migrate, migrations

BUSY_TIMEOUT_MS = quick_check.LOCK_WAIT_MS
PAGE_CACHE_KIB = 65_536
WAL_CHECKPOINT_PAGES = 10_000
"""A feed batch writes ~2,000 WAL pages (mostly dedupe keys): checkpoint every few batches,
not after each one (the default of 1,000 pages did)."""
TAG_ID_CACHE = 20_000
"""Tag ids kept in memory. Keyphrases make about one new tag per item, so a daemon's cache
would otherwise grow for as long as it runs; past the cap it starts again (a miss costs one
indexed lookup)."""
HITS_PER_KEY = 32
"""Most recent items taken per dedupe key: a key held by half the corpus (the topic's own
names) must not make every lookup read half the corpus."""
FINGERPRINT_CACHE = 4096
"""Fingerprints kept in memory by item id: recent items are candidates again and again."""


@dataclass(frozen=True, slots=True)
class FeedRow:
    """A feed as listed to the user."""

    id: int
    url: str
    title: str | None
    topics: tuple[str, ...] | None
    interval_seconds: float | None
    origin: str
    enabled: bool
    disabled_reason: str | None
    last_fetch_at: str | None
    last_success_at: str | None
    last_status: int | None
    last_error: str | None
    error_count: int
    next_due_at: str | None
    poll_interval: float | None = None
    """The interval the daemon adapted the feed to; None: the configured one."""

    @property
    def state(self) -> str:
        """``disabled``, ``failing``, ``ok`` or ``not yet fetched``."""
        if not self.enabled:
            return "disabled"
        if self.error_count:
            return "failing"
        return "ok" if self.last_fetch_at else "not yet fetched"


@dataclass(frozen=True, slots=True)
class FeedSchedule:
    """When the daemon should next refresh a feed, and at what interval it is polled."""

    enabled: bool
    next_due_at: str | None
    interval: float | None


_FEED_STATE_COLUMNS = (
    "id, url, etag, last_modified, body_hash, error_count, topics, interval_seconds"
)


def _feed_state(row: Sequence[Any]) -> FeedState:
    return FeedState(
        id=row[0],
        url=row[1],
        etag=row[2],
        last_modified=row[3],
        body_hash=row[4],
        error_count=row[5],
        topics=tuple(json.loads(row[6])) if row[6] is not None else (),
        interval_seconds=row[7],
    )


def _same_item(
    rows: Sequence[tuple[int, int | None, str | None, str]], item: Item, feed_id: int | None
) -> int | None:
    """Of the stored items sharing ``item``'s URL, the one it is: same text, else same GUID,
    else the first; never another post of the same feed."""

    def other_post(row: tuple[int, int | None, str | None, str]) -> bool:
        _id, row_feed, guid, content_hash = row
        if feed_id is None or row_feed != feed_id or content_hash == item.content_hash:
            return False
        if item.guid and guid:
            return guid != item.guid
        return item.shared_url

    same = [row for row in rows if not other_post(row)]
    for row in same:
        if row[3] == item.content_hash:
            return row[0]
    for row in same:
        if item.guid and row[2] == item.guid:
            return row[0]
    return same[0][0] if same else None


def _candidate_sql(
    bands: int, stories: int, bands_unbounded: bool, stories_unbounded: bool, undated: bool
) -> str:
    """The candidate query of :meth:`Store.dedupe_candidates` for one shape of key lists
    (built once per shape: the text depends only on how many keys of each kind there are,
    and on whether any key is undated at all).

    It returns no fingerprints (the caller has most of them; :meth:`Store._fingerprints_of`
    reads the others) and reads items through their ``items_dedupe`` index, not their rows.
    """
    parts: list[str] = []
    for kind, count, unbounded in ((0, bands, bands_unbounded), (1, stories, stories_unbounded)):
        sql = f"SELECT item_id, {kind} AS kind FROM dedupe_keys WHERE key = ? AND kind = {kind}"
        for _ in range(count):
            if unbounded:
                parts.append(f"SELECT * FROM ({sql} ORDER BY at DESC LIMIT {HITS_PER_KEY})")
                continue
            # two range scans of the primary key rather than one OR, which SQLite
            # would answer by reading every row of the key whatever its date
            parts.append(
                f"SELECT * FROM ({sql} AND at BETWEEN ? AND ? ORDER BY at DESC LIMIT {HITS_PER_KEY})"
            )
            if undated:
                parts.append(f"SELECT * FROM ({sql} AND at = '' LIMIT {HITS_PER_KEY})")
    return (
        f"WITH hits AS ({' UNION ALL '.join(parts)}), "
        "ranked AS (SELECT item_id, SUM(kind = 0) AS bands, SUM(kind = 1) AS stories "
        "FROM hits GROUP BY item_id ORDER BY bands DESC, stories DESC, item_id DESC "
        "LIMIT ?) "
        "SELECT items.id, items.duplicate_of, items.story_id, "
        "COALESCE(items.published_at, CASE WHEN items.feed_id IS NOT NULL "
        "THEN items.first_seen_at END) "
        "FROM ranked JOIN items INDEXED BY items_dedupe ON items.id = ranked.item_id "
        "JOIN dedupe_fingerprints ON dedupe_fingerprints.item_id = ranked.item_id "
        "ORDER BY ranked.bands DESC, ranked.stories DESC, items.id DESC"
    )


def _quick_check(db: Database, path: str) -> None:
    """Raise :class:`DatabaseFault` unless SQLite's ``quick_check`` finds the file sound: the
    answer of the check begun early for it (:mod:`watcher.quick_check`), else its own."""
    problems = quick_check.take(path)
    if problems is None:
        problems = quick_check.problems(db.conn)
    if problems != ["ok"]:
        raise database_fault(path, "corrupt", f"quick_check: {'; '.join(problems)[:300]}")


def read_only_uri(path: Path | str) -> str:
    """The URI that reads ``path`` without writing: ``mode=ro``, or ``immutable=1`` where
    SQLite cannot create the WAL index beside a WAL file (a read-only folder)."""
    uri = Path(path).resolve().as_uri()
    connection = sqlite3.connect(f"{uri}?mode=ro", uri=True)
    try:
        connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError as error:
        if fault_reason(error) not in ("read_only", "io"):
            raise
        return f"{uri}?immutable=1"
    finally:
        connection.close()
    return f"{uri}?mode=ro"


def _read_only_database(path: Path) -> Database:
    connection = sqlite3.connect(read_only_uri(path), uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
    connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return Database(connection)


def _topics_json(topics: Sequence[str] | None) -> str | None:
    return None if topics is None else json.dumps(list(topics))


class Store:
    """A handle on one database file. Not thread-safe: one Store per thread or process.

    It keeps the dedupe fingerprints it read or wrote, by item id, while no other connection
    has committed anything (``PRAGMA data_version``); it forgets them when a transaction fails
    and forgets an id when it inserts an item with it. So items and fingerprints must be
    written through its methods, as they are: a raw UPDATE of a fingerprint through ``db``
    would go unseen.
    """

    def __init__(self, db: Database, path: str) -> None:
        self.db = db
        self.path = path
        self._tag_ids: dict[tuple[str, str], int] = {}
        self._candidate_sql: dict[tuple[int, int, bool, bool, bool], str] = {}
        self._fingerprints: dict[int, bytes] = {}
        self._data_version: int | None = None
        self._paused_from: int | None = None

    @classmethod
    def open(cls, path: Path | str, *, check: bool = False, wait: float | None = None) -> Store:
        """Open (creating if needed) and migrate the database at ``path``.

        ``check`` runs ``PRAGMA quick_check`` first (the commands that write at length do):
        a damaged file raises :class:`DatabaseFault` before anything is written to it.
        ``wait`` is how long a write waits for a lock another process holds (seconds;
        :data:`BUSY_TIMEOUT_MS` by default).
        """
        path = Path(path)
        wait = BUSY_TIMEOUT_MS / 1000 if wait is None else wait
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreError(f"{path}: {error.strerror or error}") from None
        with faults_raised(str(path), wait=wait):
            try:
                connection = sqlite3.connect(str(path), timeout=wait)
                db = Database(connection)
                if check:
                    _quick_check(db, str(path))
                db.execute(f"PRAGMA busy_timeout = {int(wait * 1000)}")
                if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    db.execute("PRAGMA journal_mode = WAL")
                db.execute("PRAGMA synchronous = NORMAL")
                db.execute(f"PRAGMA cache_size = -{PAGE_CACHE_KIB}")
                db.execute(f"PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}")
                db.execute("PRAGMA foreign_keys = ON")
                migrate(db)
            except sqlite3.DatabaseError as error:
                if fault_reason(error) is not None:
                    raise
                raise StoreError(f"{path}: cannot open or migrate the database: {error}") from None
        return cls(db, str(path))

    @classmethod
    def open_for_reading(cls, path: Path | str, *, check: bool = False) -> Store:
        """Open ``path`` without writing to it, for the commands that only read.

        A file that does not exist yet, or one that needs migrating, is opened as by
        :meth:`open` (that writes); otherwise the connection is read-only, so a read-only
        file or a database another process holds locked still answers. In a read-only
        folder, where SQLite cannot create the WAL index beside the file, the file is read
        as immutable. ``check`` as for :meth:`open`.
        """
        path = Path(path)
        if not path.exists():
            return cls.open(path, check=check)
        location = str(path)
        with faults_raised(location, wait=BUSY_TIMEOUT_MS / 1000):
            try:
                db = _read_only_database(path)
                if check:
                    _quick_check(db, location)
                if migrations.pending(db):
                    db.close()
                    return cls.open(path, check=check)
            except sqlite3.DatabaseError as error:
                if fault_reason(error) is not None:
                    raise
                raise StoreError(f"{path}: cannot read the database: {error}") from None
        return cls(db, location)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside commit together or not at all."""
        try:
            with self.db.atomic():
                yield
        except BaseException:
            self._forget_rolled_back()
            raise

    def _forget_rolled_back(self) -> None:
        self._fingerprints.clear()
        self._paused_from = None

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self.db.execute(sql, list(params)).fetchone()
        return None if row is None else row[0]

    # feeds ---------------------------------------------------------------

    def sync_config(self, config: Config, now: str) -> None:
        """Mirror the config's topics and feeds into the database (feeds are never deleted).

        A config feed is found by the URL it was configured with (``config_url``), so one
        that moved (a 301 updated its ``url``) stays one feed."""
        with self.transaction():
            for topic in config.topics:
                self.db.execute(
                    "INSERT INTO topics(name, title, query, keywords) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT(name) DO UPDATE SET title = excluded.title, "
                    "query = excluded.query, keywords = excluded.keywords",
                    [topic.name, topic.title, topic.query, json.dumps(list(topic.keywords))],
                )
            for feed in config.feeds:
                found = self.db.execute(
                    "SELECT id, config_url FROM feeds WHERE config_url = ? OR url = ? "
                    "ORDER BY config_url IS ? DESC LIMIT 1",
                    [feed.url, feed.url, feed.url],
                ).fetchone()
                if found is not None and found[1] not in (None, feed.url):
                    continue  # another configured URL moved here: one feed, polled once
                if found is None:
                    self.db.execute(
                        "INSERT INTO feeds(url, config_url, title, topics, interval_seconds, "
                        "origin, enabled, disabled_reason, created_at) "
                        "VALUES (?, ?, ?, ?, ?, 'config', ?, "
                        "CASE WHEN ? = 0 THEN 'disabled in config' END, ?)",
                        [
                            feed.url,
                            feed.url,
                            feed.title,
                            _topics_json(feed.topics),
                            feed.interval,
                            int(feed.enabled),
                            int(feed.enabled),
                            now,
                        ],
                    )
                    continue
                self.db.execute(
                    "UPDATE feeds SET config_url = ?, title = COALESCE(?, title), topics = ?, "
                    "poll_interval = CASE WHEN interval_seconds IS ? THEN poll_interval END, "
                    "interval_seconds = ?, origin = 'config', "
                    "enabled = CASE WHEN ? = 0 THEN 0 "
                    "WHEN disabled_reason LIKE 'disabled in config%' THEN 1 ELSE enabled END, "
                    "disabled_reason = CASE WHEN ? = 0 THEN 'disabled in config' "
                    "WHEN disabled_reason LIKE 'disabled in config%' THEN NULL "
                    "ELSE disabled_reason END WHERE id = ?",
                    [
                        feed.url,
                        feed.title,
                        _topics_json(feed.topics),
                        feed.interval,
                        feed.interval,
                        int(feed.enabled),
                        int(feed.enabled),
                        found[0],
                    ],
                )

    def mirrors(self, config: Config) -> bool:
        """Whether :meth:`sync_config` has nothing to add: every topic is stored as
        configured and every config feed is there with its topics, interval and state
        (a reading command then need not write)."""
        topics = {
            row[0]: (row[1], row[2], row[3])
            for row in self.db.execute("SELECT name, title, query, keywords FROM topics")
        }
        for topic in config.topics:
            wanted = (topic.title, topic.query, json.dumps(list(topic.keywords)))
            if topics.get(topic.name) != wanted:
                return False
        feeds = {
            row[0]: (row[1], row[2], bool(row[3]))
            for row in self.db.execute(
                "SELECT COALESCE(config_url, url), topics, interval_seconds, "
                "enabled OR disabled_reason NOT LIKE 'disabled in config%' FROM feeds"
            )
        }
        return all(
            feeds.get(feed.url) == (_topics_json(feed.topics), feed.interval, feed.enabled)
            for feed in config.feeds
        )

    def add_feed(
        self,
        url: str,
        *,
        now: str,
        title: str | None = None,
        topics: Sequence[str] | None = None,
        interval_seconds: float | None = None,
        origin: str = "cli",
    ) -> bool:
        """Add a feed; False when the URL is already there."""
        with self.transaction():
            cursor = self.db.execute(
                "INSERT OR IGNORE INTO feeds(url, title, topics, interval_seconds, origin, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?)",
                [url, title, _topics_json(topics), interval_seconds, origin, now],
            )
        return cursor.rowcount == 1

    def remove_feed(self, url: str) -> bool:
        """Delete a feed and its fetch log; its items stay (their feed_id becomes NULL)."""
        with self.transaction():
            cursor = self.db.execute("DELETE FROM feeds WHERE url = ?", [url])
        return cursor.rowcount == 1

    def feeds(self) -> list[FeedRow]:
        rows = self.db.execute(
            "SELECT id, url, title, topics, interval_seconds, origin, enabled, disabled_reason, "
            "last_fetch_at, last_success_at, last_status, last_error, error_count, next_due_at, "
            "poll_interval FROM feeds ORDER BY id"
        ).fetchall()
        return [
            FeedRow(
                id=row[0],
                url=row[1],
                title=row[2],
                topics=None if row[3] is None else tuple(json.loads(row[3])),
                interval_seconds=row[4],
                origin=row[5],
                enabled=bool(row[6]),
                disabled_reason=row[7],
                last_fetch_at=row[8],
                last_success_at=row[9],
                last_status=row[10],
                last_error=row[11],
                error_count=row[12],
                next_due_at=row[13],
                poll_interval=row[14],
            )
            for row in rows
        ]

    def feed_states(
        self, *, now: str, due_only: bool = True, urls: Sequence[str] | None = None
    ) -> list[FeedState]:
        """Enabled feeds to poll: the due ones, every one, or the named ones."""
        sql = f"SELECT {_FEED_STATE_COLUMNS} FROM feeds WHERE enabled = 1"
        params: list[Any] = []
        if urls is not None:
            sql += f" AND url IN ({','.join('?' for _ in urls)})"
            params.extend(urls)
        elif due_only:
            sql += " AND (next_due_at IS NULL OR next_due_at <= ?)"
            params.append(now)
        sql += " ORDER BY COALESCE(next_due_at, ''), id"
        return [_feed_state(row) for row in self.db.execute(sql, params).fetchall()]

    def feed_state(self, feed_id: int, *, enabled_only: bool = True) -> FeedState | None:
        """One feed to refresh, by id (its URL may have moved); None when it is gone, or
        disabled and ``enabled_only``."""
        sql = f"SELECT {_FEED_STATE_COLUMNS} FROM feeds WHERE id = ?"
        if enabled_only:
            sql += " AND enabled = 1"
        row = self.db.execute(sql, [feed_id]).fetchone()
        return None if row is None else _feed_state(row)

    def feed_schedule(self, feed_id: int) -> FeedSchedule | None:
        """Whether a feed is still polled, when it is due and at what interval."""
        row = self.db.execute(
            "SELECT enabled, next_due_at, COALESCE(poll_interval, interval_seconds) "
            "FROM feeds WHERE id = ?",
            [feed_id],
        ).fetchone()
        if row is None:
            return None
        return FeedSchedule(enabled=bool(row[0]), next_due_at=row[1], interval=row[2])

    def enabled_feed_ids(self) -> list[int]:
        return [row[0] for row in self.db.execute("SELECT id FROM feeds WHERE enabled = 1")]

    def reprobe_candidates(self, *, tried_before: str) -> list[FeedState]:
        """Feeds the server disabled (a 410) and not tried since ``tried_before``; feeds
        disabled in the config are left alone."""
        rows = self.db.execute(
            f"SELECT {_FEED_STATE_COLUMNS} FROM feeds WHERE enabled = 0 "
            "AND disabled_reason NOT LIKE 'disabled in config%' "
            "AND (last_fetch_at IS NULL OR last_fetch_at <= ?) ORDER BY id",
            [tried_before],
        ).fetchall()
        return [_feed_state(row) for row in rows]

    def enable_feed(self, feed_id: int) -> None:
        """Poll a disabled feed again (it answered a re-probe)."""
        with self.transaction():
            self.db.execute(
                "UPDATE feeds SET enabled = 1, disabled_reason = NULL WHERE id = ?", [feed_id]
            )

    def fetch_history(self, feed_id: int, *, limit: int) -> list[Fetched]:
        """The feed's latest successful fetches, newest first, for its adaptive interval."""
        rows = self.db.execute(
            "SELECT started_at, new_items FROM fetches WHERE feed_id = ? AND outcome != 'error' "
            "ORDER BY id DESC LIMIT ?",
            [feed_id, limit],
        ).fetchall()
        return [Fetched(datetime.fromisoformat(row[0]), row[1]) for row in rows]

    def prune_fetches(self, *, before: str, keep_per_feed: int) -> int:
        """Delete the fetch-log rows started before ``before``, except each feed's newest
        ``keep_per_feed`` rows (its adaptive interval and status read them); returns how many
        went. One short transaction per feed, so other writers wait little."""
        removed = 0
        feed_ids = [row[0] for row in self.db.execute("SELECT id FROM feeds ORDER BY id")]
        for feed_id in feed_ids:
            with self.transaction():
                cursor = self.db.execute(
                    "DELETE FROM fetches WHERE feed_id = ? AND started_at < ? AND id < "
                    "COALESCE((SELECT id FROM fetches WHERE feed_id = ? "
                    "ORDER BY id DESC LIMIT 1 OFFSET ?), 0)",
                    [feed_id, before, feed_id, keep_per_feed - 1],
                )
                removed += cursor.rowcount
        return removed

    def set_poll_interval(self, feed_id: int, seconds: float) -> None:
        self.db.execute("UPDATE feeds SET poll_interval = ? WHERE id = ?", [seconds, feed_id])

    def record_fetch(
        self,
        feed_id: int,
        *,
        started_at: str,
        outcome: str,
        next_due_at: str,
        duration_ms: int | None = None,
        http_status: int | None = None,
        error_kind: str | None = None,
        error: str | None = None,
        size: int | None = None,
        counts: EntryCounts | None = None,
        retry_after: float | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
        body_hash: str | None = None,
        new_url: str | None = None,
        disable_reason: str | None = None,
        title: str | None = None,
        lag_ms: int | None = None,
        writer_queue: int | None = None,
    ) -> None:
        """Log one fetch and update the feed's validators, health and next due time.

        ``lag_ms`` is how late the poll ran behind its due time and ``writer_queue`` how
        many write jobs were waiting for the writer when it was recorded (the daemon's
        polls; None elsewhere)."""
        failed = outcome == "error"
        counts = counts or EntryCounts()
        self.db.execute(
            "INSERT INTO fetches(feed_id, started_at, duration_ms, http_status, outcome, "
            "error_kind, error, bytes, entries, new_items, near_duplicates, duplicates, "
            "duplicate_matches, off_topic, empty, retry_after, lag_ms, writer_queue) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                feed_id,
                started_at,
                duration_ms,
                http_status,
                outcome,
                error_kind,
                error,
                size,
                counts.entries,
                counts.new_items,
                counts.near_duplicates,
                counts.duplicate_total,
                json.dumps(dict(sorted(counts.duplicates.items()))) if counts.duplicates else None,
                counts.off_topic,
                counts.empty,
                retry_after,
                lag_ms,
                writer_queue,
            ],
        )
        if failed:
            self.db.execute(
                "UPDATE feeds SET last_fetch_at = ?, last_status = ?, last_error = ?, "
                "error_count = error_count + 1, next_due_at = ?, "
                "enabled = CASE WHEN ? IS NULL THEN enabled ELSE 0 END, "
                "disabled_reason = COALESCE(?, disabled_reason) WHERE id = ?",
                [
                    started_at,
                    http_status,
                    error,
                    next_due_at,
                    disable_reason,
                    disable_reason,
                    feed_id,
                ],
            )
        else:
            self.db.execute(
                "UPDATE feeds SET last_fetch_at = ?, last_success_at = ?, last_status = ?, "
                "last_error = NULL, error_count = 0, next_due_at = ?, "
                "etag = ?, last_modified = ?, body_hash = COALESCE(?, body_hash), "
                "title = COALESCE(title, ?) WHERE id = ?",
                [
                    started_at,
                    started_at,
                    http_status,
                    next_due_at,
                    etag,
                    last_modified,
                    body_hash,
                    title,
                    feed_id,
                ],
            )
        if new_url:
            taken = self._one("SELECT id FROM feeds WHERE url = ? AND id != ?", [new_url, feed_id])
            if taken is None:
                self.db.execute("UPDATE feeds SET url = ? WHERE id = ?", [new_url, feed_id])

    # items ---------------------------------------------------------------

    def last_item_id(self) -> int:
        """The highest item id stored (0: none)."""
        return int(self._one("SELECT COALESCE(MAX(id), 0) FROM items"))

    def find_exact(self, item: Item, feed_id: int | None) -> tuple[int, str] | None:
        """The stored item this one is the same as (level 1), and which key matched.

        A canonical URL identifies one article across feeds, but not within one feed
        whose entries carry different trustworthy GUIDs, or share the URL in one fetch,
        with different text: a link blog's two posts about one page stay two items
        (docs/dedupe.md, "Level 1").
        """
        if item.canonical_url:
            rows = self.db.execute(
                "SELECT id, feed_id, guid, content_hash FROM items WHERE canonical_url = ? "
                "ORDER BY id LIMIT 50",
                [item.canonical_url],
            ).fetchall()
            found = _same_item(rows, item, feed_id)
            if found is not None:
                return found, "url"
        if item.guid and feed_id is not None:
            found = self._one(
                "SELECT id FROM items WHERE feed_id = ? AND guid = ? ORDER BY id LIMIT 1",
                [feed_id, item.guid],
            )
            if found is not None:
                return found, "guid"
        if item.external_id:
            found = self._one(
                "SELECT id FROM items WHERE external_id = ? AND source IS ? ORDER BY id LIMIT 1",
                [item.external_id, item.source],
            )
            if found is not None:
                return found, "external_id"
        found = self._one(
            "SELECT id FROM items WHERE content_hash = ? ORDER BY id LIMIT 1", [item.content_hash]
        )
        if found is not None:
            return found, "hash"
        return None

    def insert_item(
        self,
        item: Item,
        *,
        feed_id: int | None,
        first_seen_at: str,
        duplicate_of: int | None = None,
        story_id: int | None = None,
        dedupe_signal: str | None = None,
        dedupe_score: float | None = None,
    ) -> int:
        """Insert a new item; without ``story_id`` it starts a story of its own.

        One statement: the id is the one SQLite would pick (one above the largest), chosen
        in the INSERT so that a new story's id can be the item's own without an UPDATE.
        """
        cursor = self.db.conn.execute(
            "INSERT INTO items(id, url, canonical_url, guid, external_id, title, summary, "
            "content, published_at, first_seen_at, feed_id, source, lang, content_hash, "
            "duplicate_of, story_id, dedupe_signal, dedupe_score, full_text_status, author) "
            "SELECT next.id, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, COALESCE(?, next.id), "
            "?, ?, ?, ? FROM (SELECT COALESCE(MAX(id), 0) + 1 AS id FROM items) AS next",
            [
                item.url,
                item.canonical_url,
                item.guid,
                item.external_id,
                item.title,
                item.summary,
                item.content,
                item.published_at,
                first_seen_at,
                feed_id,
                item.source,
                item.lang,
                item.content_hash,
                duplicate_of,
                story_id,
                dedupe_signal,
                dedupe_score,
                item.full_text_status,
                item.author,
            ],
        )
        item_id = cursor.lastrowid
        assert item_id is not None
        self._fingerprints.pop(item_id, None)
        return item_id

    def pause_text_index(self) -> None:
        """Leave the items inserted from now on out of ``items_fts`` until
        :meth:`resume_text_index`, which indexes them in one statement (migration 0013 says
        why). Only inside a transaction, which must not commit before the resume."""
        if self._paused_from is not None:
            return
        if not self.db.conn.in_transaction:
            raise StoreError("pause_text_index outside a transaction")
        self._paused_from = int(self._one("SELECT COALESCE(MAX(id), 0) + 1 FROM items"))
        self.db.conn.execute("INSERT INTO items_fts_paused(paused) VALUES (1)")

    def resume_text_index(self) -> None:
        """Index the text of every item inserted since :meth:`pause_text_index`, as the
        insert trigger would have, and let the trigger index new items again."""
        if self._paused_from is None:
            return
        self.db.conn.execute(
            "INSERT INTO items_fts(rowid, title, summary, content) "
            "SELECT id, title, summary, content FROM items WHERE id >= ? ORDER BY id",
            [self._paused_from],
        )
        self.db.conn.execute("DELETE FROM items_fts_paused")
        self._paused_from = None

    def known_keys(self, feed_id: int, limit: int = 2000) -> KnownKeys:
        """Identity keys of the items this feed delivered most recently."""
        rows = self.db.execute(
            "SELECT items.content_hash, items.guid, items.canonical_url FROM sightings "
            "JOIN items ON items.id = sightings.item_id WHERE sightings.feed_id = ? "
            "ORDER BY sightings.id DESC LIMIT ?",
            [feed_id, limit],
        ).fetchall()
        return KnownKeys(
            hashes=frozenset(row[0] for row in rows if row[0]),
            guids=frozenset(row[1] for row in rows if row[1]),
            urls=frozenset(row[2] for row in rows if row[2]),
        )

    def off_topic_digests(self, feed_id: int, topics: str) -> frozenset[str]:
        """Digests of the entries the feed's last fetch dropped for matching no topic, when
        they were matched against the topics keyed ``topics``."""
        rows = self.db.execute(
            "SELECT digest FROM off_topic_entries WHERE feed_id = ? AND topics = ?",
            [feed_id, topics],
        ).fetchall()
        return frozenset(row[0] for row in rows)

    def replace_off_topic(self, feed_id: int, topics: str, digests: Sequence[str]) -> None:
        """Remember ``digests`` as what the feed's latest fetch dropped, instead of the last."""
        self.db.execute("DELETE FROM off_topic_entries WHERE feed_id = ?", [feed_id])
        self.db.conn.executemany(
            "INSERT OR IGNORE INTO off_topic_entries(feed_id, digest, topics) VALUES (?, ?, ?)",
            [(feed_id, digest, topics) for digest in digests],
        )

    def dedupe_candidates(
        self,
        *,
        band_keys: Sequence[int],
        story_keys: Sequence[int],
        band_range: tuple[str, str] | None,
        story_range: tuple[str, str] | None,
        limit: int = 200,
    ) -> list[tuple[int, int | None, int, str | None, bytes]]:
        """Stored items sharing a key with a new one, the likeliest first.

        Ranked by shared near-duplicate keys, then shared story keys, then recency, and
        cut at ``limit``: in a corpus about one topic most items share a story key (the
        topic's names), so the cut is what keeps the cost per item flat. Returns (item id,
        duplicate_of, story_id, item time, fingerprint bytes). A range of None admits every
        time; undated items (``at = ''``) pass every range.
        """
        if not band_keys and not story_keys:
            return []
        undated = self._has_undated_keys()
        params: list[Any] = []
        for keys, window in ((band_keys, band_range), (story_keys, story_range)):
            for key in keys:
                params.append(key)
                if window is not None:
                    params.extend(window)
                    if undated:
                        params.append(key)
        shape = (len(band_keys), len(story_keys), band_range is None, story_range is None, undated)
        sql = self._candidate_sql.get(shape)
        if sql is None:
            sql = self._candidate_sql[shape] = _candidate_sql(*shape)
        rows: list[tuple[int, int | None, int, str | None]] = self.db.conn.execute(
            sql, [*params, limit]
        ).fetchall()
        fingerprints = self._fingerprints_of([row[0] for row in rows])
        return [(*row, fingerprints[row[0]]) for row in rows if row[0] in fingerprints]

    def _has_undated_keys(self) -> bool:
        """Whether any dedupe key is of an undated item (``at = ''``; index 0012)."""
        return bool(self._one("SELECT EXISTS (SELECT 1 FROM dedupe_keys WHERE at = '')"))

    def _fingerprints_of(self, item_ids: Sequence[int]) -> dict[int, bytes]:
        """The stored fingerprints of ``item_ids``, from memory where they still hold.

        Another connection's commit may have changed any of them: then all are read again.
        """
        version = int(self._one("PRAGMA data_version"))
        if version != self._data_version:
            self._fingerprints.clear()
            self._data_version = version
        cache = self._fingerprints
        found = {item_id: cache[item_id] for item_id in item_ids if item_id in cache}
        if len(found) < len(item_ids):
            missing = [item_id for item_id in item_ids if item_id not in found]
            rows = self.db.conn.execute(
                "SELECT item_id, fingerprint FROM dedupe_fingerprints "
                "WHERE item_id IN (SELECT value FROM json_each(?))",
                [json.dumps(missing)],
            ).fetchall()
            for item_id, blob in rows:
                found[item_id] = blob
                self._remember_fingerprint(item_id, blob)
        return found

    def _remember_fingerprint(self, item_id: int, blob: bytes) -> None:
        cache = self._fingerprints
        if len(cache) >= FINGERPRINT_CACHE:
            del cache[next(iter(cache))]
        cache[item_id] = blob

    def save_fingerprint(
        self,
        item_id: int,
        *,
        fingerprint: bytes,
        band_keys: Sequence[int],
        story_keys: Sequence[int],
        at: str | None,
    ) -> None:
        self.db.conn.execute(
            "INSERT OR REPLACE INTO dedupe_fingerprints(item_id, fingerprint) VALUES (?, ?)",
            [item_id, fingerprint],
        )
        self._fingerprints.pop(item_id, None)
        self._remember_fingerprint(item_id, fingerprint)
        stamp = at or ""
        self.db.conn.executemany(
            "INSERT OR IGNORE INTO dedupe_keys(key, kind, at, item_id) VALUES (?, ?, ?, ?)",
            [(key, 0, stamp, item_id) for key in band_keys]
            + [(key, 1, stamp, item_id) for key in story_keys],
        )

    def add_sighting(
        self, item_id: int, *, feed_id: int | None, url: str | None, seen_at: str, match: str
    ) -> bool:
        """Record where an item was seen; False when that (feed, url) was already recorded."""
        cursor = self.db.execute(
            "INSERT OR IGNORE INTO sightings(item_id, feed_id, url, seen_at, match) "
            "VALUES (?, ?, ?, ?, ?)",
            [item_id, feed_id, url, seen_at, match],
        )
        return cursor.rowcount == 1

    def set_topics(self, item_id: int, topics: Sequence[str]) -> None:
        self.db.execute("DELETE FROM item_topics WHERE item_id = ?", [item_id])
        self.db.conn.executemany(
            "INSERT OR IGNORE INTO item_topics(item_id, topic) VALUES (?, ?)",
            [(item_id, topic) for topic in topics],
        )

    def _tag_id(self, name: str, kind: str) -> int:
        key = (name, kind)
        tag_id = self._tag_ids.get(key)
        if tag_id is None:
            # a tag missing from memory is new more often than not: one statement then
            inserted = self.db.conn.execute(
                "INSERT OR IGNORE INTO tags(name, kind) VALUES (?, ?) RETURNING id", [name, kind]
            ).fetchall()
            if inserted:
                tag_id = int(inserted[0][0])
            else:
                tag_id = int(
                    self._one("SELECT id FROM tags WHERE name = ? AND kind = ?", [name, kind])
                )
            if len(self._tag_ids) >= TAG_ID_CACHE:
                self._tag_ids.clear()
            self._tag_ids[key] = tag_id
        return tag_id

    def set_tags(self, item_id: int, tags: Sequence[Tag]) -> None:
        self.db.execute("DELETE FROM item_tags WHERE item_id = ?", [item_id])
        rows: dict[int, float] = {}
        for tag in tags:
            tag_id = self._tag_id(tag.name, tag.kind)
            rows[tag_id] = max(tag.score, rows.get(tag_id, 0.0))
        self.db.conn.executemany(
            "INSERT INTO item_tags(item_id, tag_id, score) VALUES (?, ?, ?)",
            [(item_id, tag_id, score) for tag_id, score in rows.items()],
        )

    def add_topics(self, rows: Sequence[tuple[int, Sequence[str]]]) -> None:
        """Topics of new items, (item id, topics) each: one statement for a whole batch."""
        self.db.conn.executemany(
            "INSERT OR IGNORE INTO item_topics(item_id, topic) VALUES (?, ?)",
            [(item_id, topic) for item_id, topics in rows for topic in topics],
        )

    def add_tags(self, rows: Sequence[tuple[int, Sequence[Tag]]]) -> None:
        """Tags of new items, (item id, tags) each; a tag named twice keeps its best score."""
        values: list[tuple[int, int, float]] = []
        for item_id, tags in rows:
            scores: dict[int, float] = {}
            for tag in tags:
                tag_id = self._tag_id(tag.name, tag.kind)
                scores[tag_id] = max(tag.score, scores.get(tag_id, 0.0))
            values.extend((item_id, tag_id, score) for tag_id, score in scores.items())
        self.db.conn.executemany(
            "INSERT INTO item_tags(item_id, tag_id, score) VALUES (?, ?, ?)", values
        )

    def add_sightings(self, rows: Sequence[tuple[int, int | None, str | None, str, str]]) -> None:
        """Many :meth:`add_sighting` rows (item id, feed id, url, seen at, match), in order."""
        self.db.conn.executemany(
            "INSERT OR IGNORE INTO sightings(item_id, feed_id, url, seen_at, match) "
            "VALUES (?, ?, ?, ?, ?)",
            rows,
        )

    def forget_cached_ids(self) -> None:
        """Drop in-memory tag ids and fingerprints, e.g. after a rolled-back transaction
        created some."""
        self._tag_ids.clear()
        self._forget_rolled_back()

    # article pages (full text) -----------------------------------------

    def article_pages(self, urls: Sequence[str]) -> dict[str, ArticlePage]:
        """The cached article pages among ``urls`` (canonical URLs), by URL."""
        found: dict[str, ArticlePage] = {}
        unique = sorted(set(urls))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            rows = self.db.execute(
                "SELECT url, fetched_at, status, http_status, final_url, text, author, "
                f"published_at, lang FROM article_pages WHERE url IN ({','.join('?' * len(chunk))})",
                chunk,
            ).fetchall()
            for row in rows:
                found[row[0]] = ArticlePage(*row)
        return found

    def save_article_pages(self, pages: Sequence[ArticlePage]) -> None:
        """Insert or replace cache rows (a newer fetch of a URL replaces the older one)."""
        self.db.conn.executemany(
            "INSERT OR REPLACE INTO article_pages(url, fetched_at, status, http_status, "
            "final_url, text, author, published_at, lang) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    page.url,
                    page.fetched_at,
                    page.status,
                    page.http_status,
                    page.final_url,
                    page.text,
                    page.author,
                    page.published_at,
                    page.lang,
                )
                for page in pages
            ],
        )

    # reading -------------------------------------------------------------

    def item_ids(self, *, topic: str | None = None, query: str | None = None) -> list[int]:
        """Ids of every item, or of those in ``topic`` or matching an FTS5 ``query``."""
        if topic is None:
            return [row[0] for row in self.db.execute("SELECT id FROM items ORDER BY id")]
        sql = "SELECT item_id FROM item_topics WHERE topic = ?"
        params: list[Any] = [topic]
        if query is not None:
            sql += " UNION SELECT rowid FROM items_fts WHERE items_fts MATCH ?"
            params.append(query)
        return sorted(row[0] for row in self.db.execute(sql, params))

    def stories(self, *, topic: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        """The latest stories (the newest dated item first; stories of undated imports
        last), with item, source and language counts. A story's ``title`` is its lead's:
        the earliest published item (a feed item undated by its feed counts from when it
        was first seen; an undated import comes after every dated item)."""
        where = ""
        params: list[Any] = []
        if topic is not None:
            where = (
                "WHERE items.story_id IN (SELECT member.story_id FROM items AS member "
                "JOIN item_topics ON item_topics.item_id = member.id "
                "WHERE item_topics.topic = ?)"
            )
            params.append(topic)
        params.append(limit)
        cursor = self.db.execute(
            f"""
            WITH dated AS (
                SELECT items.*, COALESCE(items.published_at,
                    CASE WHEN items.feed_id IS NOT NULL THEN items.first_seen_at END) AS at,
                    COALESCE(items.source, feeds.title, feeds.url) AS source_name
                FROM items LEFT JOIN feeds ON feeds.id = items.feed_id {where}
            )
            SELECT story_id,
                (SELECT lead.title FROM dated AS lead WHERE lead.story_id = dated.story_id
                 ORDER BY lead.at IS NULL, lead.at, lead.id LIMIT 1) AS title,
                COUNT(*) AS items,
                SUM(duplicate_of IS NOT NULL) AS duplicates,
                COUNT(DISTINCT source_name) AS sources,
                GROUP_CONCAT(DISTINCT source_name) AS source_names,
                COUNT(DISTINCT lang) AS languages,
                GROUP_CONCAT(DISTINCT lang) AS language_names,
                MAX(at) AS latest_at
            FROM dated GROUP BY story_id
            ORDER BY latest_at IS NULL, latest_at DESC, story_id DESC LIMIT ?
            """,
            params,
        )
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def items_text(self, item_ids: Sequence[int]) -> list[tuple[int, str, str, str | None]]:
        """(id, title, text, lang) of the given items; text is content, else summary."""
        if not item_ids:
            return []
        marks = ",".join("?" for _ in item_ids)
        rows = self.db.execute(
            "SELECT id, title, CASE WHEN content != '' THEN content ELSE summary END, lang "
            f"FROM items WHERE id IN ({marks}) ORDER BY id",
            list(item_ids),
        ).fetchall()
        return [(row[0], row[1], row[2], row[3]) for row in rows]

    def count(self, table: str) -> int:
        return int(self._one(f"SELECT count(*) FROM [{table}]"))

    def search(self, query: str, limit: int = 20) -> list[dict[str, Any]]:
        """Full-text search over title, summary and content (FTS5 query syntax), best first."""
        try:
            rows = self.db.execute(
                "SELECT items.id, items.title, items.url, items.published_at, items.source, "
                "snippet(items_fts, -1, '[', ']', ' … ', 12) FROM items_fts "
                "JOIN items ON items.id = items_fts.rowid WHERE items_fts MATCH ? "
                "ORDER BY bm25(items_fts, 5.0, 2.0, 1.0) LIMIT ?",
                [query, limit],
            ).fetchall()
        except sqlite3.OperationalError as error:
            raise QueryError(query, str(error)) from None
        keys = ("id", "title", "url", "published_at", "source", "snippet")
        return [dict(zip(keys, row, strict=True)) for row in rows]
