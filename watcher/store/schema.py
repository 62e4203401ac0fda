"""Schema migrations; append new ones at the end, never edit one that has shipped."""

from __future__ import annotations

from sqlite_utils import Database, Migrations

from watcher.match import FTS_TOKENIZER

migrations = Migrations("watcher")


@migrations(name="0001_core_tables")
def _core_tables(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE feeds (
            id INTEGER PRIMARY KEY,
            url TEXT NOT NULL UNIQUE,
            title TEXT,
            site_url TEXT,
            topics TEXT,                -- JSON list of topic names; NULL = every topic
            interval_seconds REAL,      -- NULL = [poll].default_interval
            origin TEXT NOT NULL DEFAULT 'cli',
            enabled INTEGER NOT NULL DEFAULT 1,
            disabled_reason TEXT,
            etag TEXT,
            last_modified TEXT,
            body_hash TEXT,
            last_fetch_at TEXT,
            last_success_at TEXT,
            last_status INTEGER,
            last_error TEXT,
            error_count INTEGER NOT NULL DEFAULT 0,
            next_due_at TEXT,
            created_at TEXT NOT NULL
        );
        CREATE TABLE topics (
            name TEXT PRIMARY KEY,
            title TEXT NOT NULL,
            query TEXT NOT NULL,
            keywords TEXT NOT NULL DEFAULT '[]'
        );
        CREATE TABLE items (
            id INTEGER PRIMARY KEY,
            url TEXT,
            canonical_url TEXT,
            guid TEXT,
            external_id TEXT,
            title TEXT NOT NULL,
            summary TEXT NOT NULL DEFAULT '',
            content TEXT NOT NULL DEFAULT '',
            published_at TEXT,
            first_seen_at TEXT NOT NULL,
            feed_id INTEGER REFERENCES feeds(id) ON DELETE SET NULL,
            source TEXT,
            lang TEXT,
            content_hash TEXT NOT NULL,
            duplicate_of INTEGER REFERENCES items(id),
            story_id INTEGER
        );
        CREATE INDEX items_canonical_url ON items(canonical_url) WHERE canonical_url IS NOT NULL;
        CREATE INDEX items_feed_guid ON items(feed_id, guid) WHERE guid IS NOT NULL;
        CREATE INDEX items_content_hash ON items(content_hash);
        CREATE INDEX items_external_id ON items(external_id) WHERE external_id IS NOT NULL;
        CREATE INDEX items_story ON items(story_id);
        CREATE INDEX items_duplicate_of ON items(duplicate_of) WHERE duplicate_of IS NOT NULL;
        CREATE INDEX items_published ON items(published_at);
        CREATE INDEX items_first_seen ON items(first_seen_at);
        CREATE TABLE item_topics (
            item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
            topic TEXT NOT NULL,
            PRIMARY KEY (item_id, topic)
        );
        CREATE INDEX item_topics_topic ON item_topics(topic, item_id);
        CREATE TABLE tags (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            kind TEXT NOT NULL,
            UNIQUE (name, kind)
        );
        CREATE TABLE item_tags (
            item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
            tag_id INTEGER NOT NULL REFERENCES tags(id),
            score REAL NOT NULL,
            PRIMARY KEY (item_id, tag_id)
        );
        CREATE INDEX item_tags_tag ON item_tags(tag_id, item_id);
        CREATE TABLE sightings (
            id INTEGER PRIMARY KEY,
            item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
            feed_id INTEGER REFERENCES feeds(id) ON DELETE SET NULL,
            url TEXT,
            seen_at TEXT NOT NULL,
            match TEXT NOT NULL     -- first | url | guid | hash
        );
        CREATE UNIQUE INDEX sightings_once ON sightings(item_id, IFNULL(feed_id, 0), IFNULL(url, ''));
        CREATE TABLE fetches (
            id INTEGER PRIMARY KEY,
            feed_id INTEGER NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
            started_at TEXT NOT NULL,
            duration_ms INTEGER,
            http_status INTEGER,
            outcome TEXT NOT NULL,  -- ok | not_modified | unchanged | error
            error_kind TEXT,
            error TEXT,
            bytes INTEGER,
            entries INTEGER NOT NULL DEFAULT 0,
            new_items INTEGER NOT NULL DEFAULT 0,
            retry_after REAL
        );
        CREATE INDEX fetches_feed ON fetches(feed_id, started_at);
        CREATE TABLE digests (
            id INTEGER PRIMARY KEY,
            topic TEXT,
            created_at TEXT NOT NULL,
            sent_at TEXT,
            recipients TEXT,
            subject TEXT,
            status TEXT NOT NULL DEFAULT 'built'
        );
        CREATE TABLE digest_items (
            digest_id INTEGER NOT NULL REFERENCES digests(id) ON DELETE CASCADE,
            item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
            PRIMARY KEY (digest_id, item_id)
        );
        """
    )
    db.table("items").enable_fts(
        ["title", "summary", "content"], create_triggers=True, tokenize=FTS_TOKENIZER
    )


def migrate(db: Database) -> None:
    migrations.apply(db)


@migrations(name="0002_dedupe_index")
def _dedupe_index(db: Database) -> None:
    """Near-duplicate and story state: one fingerprint per item, its keys in an index.

    ``at`` is the item's time for the dedupe windows (published, else first seen for feed
    items); '' for undated imported documents, which every window admits (a WITHOUT ROWID
    key cannot hold NULL).
    """
    db.executescript(
        """
        CREATE TABLE dedupe_fingerprints (
            item_id INTEGER PRIMARY KEY REFERENCES items(id) ON DELETE CASCADE,
            fingerprint BLOB NOT NULL
        );
        CREATE TABLE dedupe_keys (
            key INTEGER NOT NULL,
            kind INTEGER NOT NULL,      -- 0 near-duplicate band key, 1 story key
            at TEXT NOT NULL,
            item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
            PRIMARY KEY (key, kind, at, item_id)
        ) WITHOUT ROWID;
        ALTER TABLE items ADD COLUMN dedupe_signal TEXT;
        ALTER TABLE items ADD COLUMN dedupe_score REAL;
        CREATE VIEW stories AS
        SELECT
            items.story_id AS story_id,
            (SELECT title FROM items AS first WHERE first.id = items.story_id) AS title,
            COUNT(*) AS items,
            SUM(items.duplicate_of IS NOT NULL) AS duplicates,
            COUNT(DISTINCT COALESCE(items.source, feeds.title, feeds.url)) AS sources,
            GROUP_CONCAT(DISTINCT COALESCE(items.source, feeds.title, feeds.url)) AS source_names,
            MIN(COALESCE(items.published_at, items.first_seen_at)) AS started_at,
            MAX(COALESCE(items.published_at, items.first_seen_at)) AS latest_at,
            MAX(items.first_seen_at) AS last_seen_at
        FROM items LEFT JOIN feeds ON feeds.id = items.feed_id
        GROUP BY items.story_id;
        """
    )


@migrations(name="0003_tag_views")
def _tag_views(db: Database) -> None:
    """One row per (item, tag) with names, so Datasette can facet items on tag and kind."""
    db.executescript(
        """
        CREATE VIEW item_tag_names AS
        SELECT
            item_tags.item_id AS item_id,
            items.title AS title,
            COALESCE(items.published_at, items.first_seen_at) AS at,
            tags.kind AS kind,
            tags.name AS tag,
            item_tags.score AS score
        FROM item_tags
        JOIN tags ON tags.id = item_tags.tag_id
        JOIN items ON items.id = item_tags.item_id;
        """
    )


@migrations(name="0004_sightings_by_feed")
def _sightings_by_feed(db: Database) -> None:
    """What a feed delivered lately, so unchanged entries skip the costly stages."""
    db.execute("CREATE INDEX sightings_feed ON sightings(feed_id, id)")


@migrations(name="0005_fts_update_only_on_text")
def _fts_update_only_on_text(db: Database) -> None:
    """Re-index an item only when its text changes, not when dedupe sets its story."""
    db.executescript(
        """
        DROP TRIGGER IF EXISTS items_au;
        CREATE TRIGGER items_au AFTER UPDATE OF title, summary, content ON items BEGIN
          INSERT INTO items_fts (items_fts, rowid, title, summary, content)
          VALUES ('delete', old.rowid, old.title, old.summary, old.content);
          INSERT INTO items_fts (rowid, title, summary, content)
          VALUES (new.rowid, new.title, new.summary, new.content);
        END;
        """
    )


@migrations(name="0006_fetch_entry_counts")
def _fetch_entry_counts(db: Database) -> None:
    """Where every entry of a fetch went, so that the counts of each row add up to ``entries``:
    ``new_items`` (``near_duplicates`` among them) + ``duplicates`` + ``off_topic`` + ``empty``.
    ``duplicate_matches`` is JSON: how the duplicates were recognised (url, guid, hash, ...)."""
    db.executescript(
        """
        ALTER TABLE fetches ADD COLUMN near_duplicates INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE fetches ADD COLUMN duplicates INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE fetches ADD COLUMN duplicate_matches TEXT;
        ALTER TABLE fetches ADD COLUMN off_topic INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE fetches ADD COLUMN empty INTEGER NOT NULL DEFAULT 0;
        """
    )


@migrations(name="0007_daemon_feed_schedule")
def _daemon_feed_schedule(db: Database) -> None:
    """The interval the daemon has adapted a feed to (NULL: the configured one), so that a
    restart goes on with it; a feed's recent fetches are read for it in order."""
    db.executescript(
        """
        ALTER TABLE feeds ADD COLUMN poll_interval REAL;
        CREATE INDEX fetches_feed_id ON fetches(feed_id, id);
        """
    )
