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
    """Apply the pending migrations; nothing is written when there are none."""
    if migrations.pending(db):
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


@migrations(name="0008_digest_sends")
def _digest_sends(db: Database) -> None:
    """Digest sends by name and period; the items of a ``sent`` digest are never picked again.

    ``status`` is ``sending`` while the mail is with the server, then ``sent`` or ``failed``;
    ``topics`` is the JSON list of topics the send covered, ``period_start`` (NULL: from the
    beginning) and ``period_end`` the ``first_seen_at`` range it looked at. An item of a
    story cut by ``max_stories`` is in ``digest_items`` with ``listed = 0``: covered, so not
    offered again, but not shown.
    """
    db.executescript(
        """
        ALTER TABLE digests ADD COLUMN name TEXT;
        ALTER TABLE digests ADD COLUMN topics TEXT;
        ALTER TABLE digests ADD COLUMN period_start TEXT;
        ALTER TABLE digests ADD COLUMN period_end TEXT;
        ALTER TABLE digests ADD COLUMN message_id TEXT;
        ALTER TABLE digests ADD COLUMN stories INTEGER;
        ALTER TABLE digests ADD COLUMN items INTEGER;
        ALTER TABLE digests ADD COLUMN error TEXT;
        ALTER TABLE digest_items ADD COLUMN listed INTEGER NOT NULL DEFAULT 1;
        CREATE INDEX digests_name_status ON digests(name, status, period_end);
        CREATE INDEX digest_items_item ON digest_items(item_id);
        """
    )


@migrations(name="0009_browse_views")
def _browse_views(db: Database) -> None:
    """Views for browsing in Datasette: one row per item with its topics and tags, one per story.

    Both sort on plain indexed columns of ``items`` (``published_at``, ``first_seen_at``) and
    compute everything else in correlated subqueries, so a page of 100 rows costs 100
    lookups however large the corpus: a GROUP BY over all items would be computed whole
    for every page. A search sorted by date computes its columns for every match before
    sorting, which is why the topic and tag lists are single flat lookups; ``news`` has no
    join, so counting its rows is counting ``items``. A story's row is its first item
    (``story_id`` is that item's id).
    """
    db.executescript(
        """
        CREATE VIEW news AS
        SELECT
            items.id AS id,
            items.published_at AS published_at,
            items.title AS title,
            COALESCE(items.source, (
                SELECT COALESCE(feeds.title, feeds.url) FROM feeds WHERE feeds.id = items.feed_id
            )) AS source,
            items.lang AS lang,
            (SELECT json_group_array(item_topics.topic) FROM item_topics
             WHERE item_topics.item_id = items.id) AS topics,
            (SELECT json_group_array(DISTINCT tags.name) FROM item_tags
             JOIN tags ON tags.id = item_tags.tag_id
             WHERE item_tags.item_id = items.id) AS tags,
            items.url AS url,
            items.story_id AS story_id,
            items.duplicate_of AS duplicate_of,
            substr(CASE WHEN items.summary != '' THEN items.summary ELSE items.content END, 1, 300)
                AS summary,
            items.first_seen_at AS first_seen_at
        FROM items;

        CREATE VIEW story_summary AS
        SELECT
            root.id AS story_id,
            root.title AS headline,
            root.first_seen_at AS first_seen_at,
            (SELECT MAX(COALESCE(member.published_at, member.first_seen_at)) FROM items AS member
             WHERE member.story_id = root.id) AS latest_at,
            (SELECT COUNT(DISTINCT COALESCE(member.source, feeds.title, feeds.url))
             FROM items AS member LEFT JOIN feeds ON feeds.id = member.feed_id
             WHERE member.story_id = root.id) AS sources,
            (SELECT COUNT(*) FROM items AS member WHERE member.story_id = root.id) AS items,
            (SELECT COUNT(*) FROM items AS member
             WHERE member.story_id = root.id AND member.duplicate_of IS NOT NULL) AS copies,
            (SELECT GROUP_CONCAT(name, ', ') FROM (
                SELECT DISTINCT COALESCE(member.source, feeds.title, feeds.url) AS name
                FROM items AS member LEFT JOIN feeds ON feeds.id = member.feed_id
                WHERE member.story_id = root.id
            )) AS source_names,
            (SELECT json_group_array(topic) FROM (
                SELECT DISTINCT item_topics.topic AS topic FROM items AS member
                JOIN item_topics ON item_topics.item_id = member.id
                WHERE member.story_id = root.id ORDER BY item_topics.topic
            )) AS topics
        FROM items AS root
        WHERE root.story_id = root.id;
        """
    )


@migrations(name="0011_alerts_deliveries")
def _alert_deliveries(db: Database) -> None:
    """One row per (story, alert target): the record that makes alerts at-least-once and
    never twice. ``status`` is pending (retried at ``next_attempt_at``), delivered, or
    expired (still undelivered when the story grew older than ``[alerts].max_age``)."""
    db.executescript(
        """
        CREATE TABLE alert_deliveries (
            id INTEGER PRIMARY KEY,
            story_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
            target TEXT NOT NULL,
            topic TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            next_attempt_at TEXT,
            last_attempt_at TEXT,
            last_error TEXT,
            delivered_at TEXT,
            UNIQUE (story_id, target)
        );
        CREATE INDEX alert_deliveries_due ON alert_deliveries(status, next_attempt_at);
        CREATE INDEX alert_deliveries_target ON alert_deliveries(target, last_attempt_at);
        """
    )


@migrations(name="0010_fulltext_article_pages")
def _fulltext_article_pages(db: Database) -> None:
    """Full article text: each article URL fetched once (a cache keyed by canonical URL), and on
    items what the article page gave (``full_text_status``) and its author."""
    db.executescript(
        """
        CREATE TABLE article_pages (
            url TEXT PRIMARY KEY,       -- canonical URL
            fetched_at TEXT NOT NULL,
            http_status INTEGER,
            status TEXT NOT NULL,       -- extracted | robots | failed:<reason>
            final_url TEXT,
            text TEXT NOT NULL DEFAULT '',
            author TEXT,
            published_at TEXT,
            lang TEXT
        );
        CREATE INDEX article_pages_fetched ON article_pages(fetched_at);
        ALTER TABLE items ADD COLUMN full_text_status TEXT;
        ALTER TABLE items ADD COLUMN author TEXT;
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


@migrations(name="0012_dedupe_lookup_indexes")
def _dedupe_lookup_indexes(db: Database) -> None:
    """Two indexes for the candidate lookup of every new item.

    ``items_dedupe`` holds what the lookup reads of a stored item, so that it never reads the
    item's row: its text pushes the later columns onto overflow pages. ``dedupe_keys_undated``
    holds only the keys of undated imported documents (``at = ''``, usually none), so that
    one look tells whether the lookup has to ask for them at all.
    """
    db.executescript(
        """
        CREATE INDEX items_dedupe
            ON items(id, duplicate_of, story_id, published_at, feed_id, first_seen_at);
        CREATE INDEX dedupe_keys_undated ON dedupe_keys(at) WHERE at = '';
        """
    )


@migrations(name="0013_items_fts_pause")
def _items_fts_pause(db: Database) -> None:
    """Let a batch writer index the text of its new items in one statement.

    The insert trigger adds each new item to ``items_fts`` by itself; FTS5 then writes a
    segment of its index per item (every statement with a trigger opens a savepoint, and FTS5
    flushes its pending terms at each). While ``items_fts_paused`` holds a row, the trigger
    leaves new items alone: a writer puts a row there inside its transaction, indexes its
    items itself and deletes the row before it commits (``Store.pause_text_index``), so no
    other connection ever sees it set. Every other writer is indexed by the trigger as before.
    """
    db.executescript(
        """
        CREATE TABLE items_fts_paused (paused INTEGER NOT NULL);
        DROP TRIGGER items_ai;
        CREATE TRIGGER items_ai AFTER INSERT ON items
        WHEN NOT EXISTS (SELECT 1 FROM items_fts_paused) BEGIN
          INSERT INTO items_fts (rowid, title, summary, content)
          VALUES (new.rowid, new.title, new.summary, new.content);
        END;
        """
    )


@migrations(name="0014_off_topic_entries")
def _off_topic_entries(db: Database) -> None:
    """What each feed's last fetch dropped for matching no topic (``watcher/off_topic.py``):
    one row per entry digest, under the key of the topics it was matched against."""
    db.executescript(
        """
        CREATE TABLE off_topic_entries (
            feed_id INTEGER NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
            digest TEXT NOT NULL,
            topics TEXT NOT NULL,
            PRIMARY KEY (feed_id, digest)
        ) WITHOUT ROWID;
        """
    )


@migrations(name="0015_feeds_config_url")
def _feeds_config_url(db: Database) -> None:
    """The URL a config feed was configured with, kept beside its current ``url`` (which a
    301 moves), so the config finds its feed again after a permanent redirect."""
    db.executescript(
        """
        ALTER TABLE feeds ADD COLUMN config_url TEXT;
        UPDATE feeds SET config_url = url WHERE origin = 'config';
        CREATE UNIQUE INDEX feeds_config_url ON feeds(config_url);
        """
    )


@migrations(name="0016_story_grouping")
def _story_grouping(db: Database) -> None:
    """Story state of dedupe level 3 (``watcher/story_grouping.py``, docs/dedupe.md).

    ``story_vectors`` holds each item's story vector and its time (``at`` as in
    ``dedupe_keys``); ``story_df`` the document frequency of every vector key, and under
    key 0 the number of vectors; ``story_terms`` each item's highest-weighted keys, the
    index candidates come from; ``story_merges`` every story merged into another, so that
    an old story id still resolves. ``story_leads`` names each story's earliest published
    item.
    """
    db.executescript(
        """
        CREATE TABLE story_vectors (
            item_id INTEGER PRIMARY KEY REFERENCES items(id) ON DELETE CASCADE,
            at TEXT NOT NULL,
            vector BLOB NOT NULL
        );
        CREATE TABLE story_df (
            key INTEGER PRIMARY KEY,
            df INTEGER NOT NULL
        );
        CREATE TABLE story_terms (
            key INTEGER NOT NULL,
            at TEXT NOT NULL,
            item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
            PRIMARY KEY (key, at, item_id)
        ) WITHOUT ROWID;
        CREATE TABLE story_merges (
            story_id INTEGER PRIMARY KEY,
            merged_into INTEGER NOT NULL,
            item_id INTEGER,
            merged_at TEXT NOT NULL
        );
        CREATE VIEW story_leads AS
        SELECT
            root.id AS story_id,
            (SELECT member.id FROM items AS member WHERE member.story_id = root.id
             ORDER BY COALESCE(member.published_at, member.first_seen_at), member.id
             LIMIT 1) AS lead_item_id
        FROM items AS root
        WHERE root.story_id = root.id;
        """
    )


@migrations(name="0018_browse_reader_views")
def _browse_reader_views(db: Database) -> None:
    """The browsing views as a news reader reads them (issue 22).

    ``news`` keeps its columns and adds the tags of the three kinds worth faceting on
    (``places``, ``orgs``, ``keywords``: keyphrases summarise one item and make a noisy
    facet). ``story_summary`` keeps its columns; its ``headline`` becomes the title of the
    story's lead item (its earliest published, ``story_leads``), it adds ``lead_item_id``,
    ``lead_url`` and ``languages``, and it lists only stories with a topic: an off-topic
    import is kept in the corpus but is not a story to follow. Both still compute their
    columns in correlated subqueries (see ``0009_browse_views``).
    """
    db.executescript(
        """
        DROP VIEW IF EXISTS news;
        CREATE VIEW news AS
        SELECT
            items.id AS id,
            items.published_at AS published_at,
            items.title AS title,
            COALESCE(items.source, (
                SELECT COALESCE(feeds.title, feeds.url) FROM feeds WHERE feeds.id = items.feed_id
            )) AS source,
            items.lang AS lang,
            (SELECT json_group_array(item_topics.topic) FROM item_topics
             WHERE item_topics.item_id = items.id) AS topics,
            (SELECT json_group_array(DISTINCT tags.name) FROM item_tags
             JOIN tags ON tags.id = item_tags.tag_id
             WHERE item_tags.item_id = items.id) AS tags,
            items.url AS url,
            items.story_id AS story_id,
            items.duplicate_of AS duplicate_of,
            substr(CASE WHEN items.summary != '' THEN items.summary ELSE items.content END, 1, 300)
                AS summary,
            items.first_seen_at AS first_seen_at,
            (SELECT json_group_array(tags.name) FROM item_tags
             JOIN tags ON tags.id = item_tags.tag_id
             WHERE item_tags.item_id = items.id AND tags.kind = 'place') AS places,
            (SELECT json_group_array(tags.name) FROM item_tags
             JOIN tags ON tags.id = item_tags.tag_id
             WHERE item_tags.item_id = items.id AND tags.kind = 'org') AS orgs,
            (SELECT json_group_array(tags.name) FROM item_tags
             JOIN tags ON tags.id = item_tags.tag_id
             WHERE item_tags.item_id = items.id AND tags.kind = 'keyword') AS keywords
        FROM items;

        DROP VIEW IF EXISTS story_summary;
        CREATE VIEW story_summary AS
        SELECT
            root.id AS story_id,
            COALESCE(lead.title, root.title) AS headline,
            root.first_seen_at AS first_seen_at,
            (SELECT MAX(COALESCE(member.published_at, member.first_seen_at)) FROM items AS member
             WHERE member.story_id = root.id) AS latest_at,
            (SELECT COUNT(DISTINCT COALESCE(member.source, feeds.title, feeds.url))
             FROM items AS member LEFT JOIN feeds ON feeds.id = member.feed_id
             WHERE member.story_id = root.id) AS sources,
            (SELECT COUNT(*) FROM items AS member WHERE member.story_id = root.id) AS items,
            (SELECT COUNT(*) FROM items AS member
             WHERE member.story_id = root.id AND member.duplicate_of IS NOT NULL) AS copies,
            (SELECT GROUP_CONCAT(name, ', ') FROM (
                SELECT DISTINCT COALESCE(member.source, feeds.title, feeds.url) AS name
                FROM items AS member LEFT JOIN feeds ON feeds.id = member.feed_id
                WHERE member.story_id = root.id
            )) AS source_names,
            (SELECT json_group_array(topic) FROM (
                SELECT DISTINCT item_topics.topic AS topic FROM items AS member
                JOIN item_topics ON item_topics.item_id = member.id
                WHERE member.story_id = root.id ORDER BY item_topics.topic
            )) AS topics,
            (SELECT COUNT(DISTINCT member.lang) FROM items AS member
             WHERE member.story_id = root.id) AS languages,
            lead.id AS lead_item_id,
            lead.url AS lead_url
        FROM items AS root
        LEFT JOIN items AS lead ON lead.id = (
            SELECT story_leads.lead_item_id FROM story_leads WHERE story_leads.story_id = root.id
        )
        WHERE root.story_id = root.id
          AND EXISTS (
            SELECT 1 FROM items AS member
            JOIN item_topics ON item_topics.item_id = member.id
            WHERE member.story_id = root.id
          );
        """
    )


@migrations(name="0019_fetch_lag")
def _fetch_lag(db: Database) -> None:
    """How late each daemon poll ran behind its due time, and how many write jobs were
    waiting for the single writer when its fetch was recorded (NULL: a one-shot poll), so
    that ``watcher status`` and the metrics can show lag building up (docs/daemon.md)."""
    db.executescript(
        """
        ALTER TABLE fetches ADD COLUMN lag_ms INTEGER;
        ALTER TABLE fetches ADD COLUMN writer_queue INTEGER;
        """
    )


@migrations(name="0020_story_splits")
def _story_splits(db: Database) -> None:
    """Stories split off another by the story correction (``watcher/story_grouping.py``,
    docs/dedupe.md "Round 3"): ``story_id`` (the first item of the part split off),
    ``split_from`` (the story it left), the item whose batch caused it and when. With
    ``story_merges`` it is the history of a story id; the story an old id belongs to now is
    its first item's ``story_id``. ``story_vectors_at``: ``watcher regroup`` walks the
    vectors window by window in time order."""
    db.executescript(
        """
        CREATE TABLE story_splits (
            story_id INTEGER PRIMARY KEY,
            split_from INTEGER NOT NULL,
            item_id INTEGER,
            split_at TEXT NOT NULL
        );
        CREATE INDEX story_splits_from ON story_splits(split_from);
        CREATE INDEX story_vectors_at ON story_vectors(at, item_id);
        """
    )


@migrations(name="0021_story_encodings")
def _story_encodings(db: Database) -> None:
    """The multilingual encoder vector of an item's lead (headline and two sentences;
    ``watcher/story_vectors.py``, docs/dedupe.md "Round 5"), kept for items that can meet
    another script: ``script`` (0 Latin, 1 Cyrillic), ``at`` as in ``story_vectors``,
    ``vector`` 512 float16. Two items in different scripts are compared on it and on their
    names; ``story_encodings_script`` finds the other script's recent items in a window."""
    db.executescript(
        """
        CREATE TABLE story_encodings (
            item_id INTEGER PRIMARY KEY REFERENCES items(id) ON DELETE CASCADE,
            script INTEGER NOT NULL,
            at TEXT NOT NULL,
            vector BLOB NOT NULL
        );
        CREATE INDEX story_encodings_script ON story_encodings(script, at);
        """
    )


@migrations(name="0022_story_merges_into")
def _story_merges_into(db: Database) -> None:
    """Index ``story_merges.merged_into``: every merge re-points the records of the story it
    absorbs, which scanned the whole table (a cold pass of 19,000 items made 19,000 merges
    over a table of 10,000 rows)."""
    db.execute("CREATE INDEX story_merges_into ON story_merges(merged_into)")


@migrations(name="0023_story_clustered")
def _story_clustered(db: Database) -> None:
    """The highest item id up to which every item with a story vector has been through an
    end-of-pass, import or daemon clustering (one row). A pass that is interrupted
    leaves its items after it, and the next pass, import or stories job clusters them
    with its own (docs/dedupe.md, "Round 9"). A store upgraded here counts as clustered:
    ``watcher regroup`` covers what older passes may have left."""
    db.executescript(
        """
        CREATE TABLE story_clustered (item_id INTEGER NOT NULL);
        INSERT INTO story_clustered (item_id) SELECT COALESCE(MAX(id), 0) FROM items;
        """
    )


@migrations(name="0024_items_lang")
def _items_lang(db: Database) -> None:
    """Items by language and first sighting: which scripts the story window holds
    (:func:`watcher.store.stories.scripts_seen`, asked once per feed a pass prepares) is
    a few index seeks per language. Through ``items_first_seen`` it read every item of
    the window, and a cold pass stores all of them in it: 0.3 s of a 50-feed pass's
    event loop, growing with feeds times items."""
    db.execute("CREATE INDEX items_lang ON items(lang, first_seen_at)")
