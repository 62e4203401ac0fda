"""Digest reads and writes: what a digest may contain, and the record of each send."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from watcher.models import DigestRow, Tag
from watcher.store.database import Store

DIGEST_TAG_KINDS = ("keyword", "place", "org")
_CHUNK = 500


def last_sent_end(store: Store, name: str, topic: str) -> str | None:
    """Where the last successful send of digest ``name`` that covered ``topic`` stopped."""
    row = store.db.execute(
        "SELECT MAX(digests.period_end) FROM digests, json_each(digests.topics) "
        "WHERE digests.name = ? AND digests.status = 'sent' AND json_each.value = ?",
        [name, topic],
    ).fetchone()
    return None if row is None else row[0]


def digest_rows(
    store: Store,
    topic: str,
    *,
    since: str | None,
    until: str,
    unsent_for: str | None,
    limit: int | None = None,
) -> list[DigestRow]:
    """Items of ``topic`` first seen in [since, until], newest first, with their tags.

    With ``unsent_for``, items already in a *sent* digest of that name are left out, which
    is what makes each item reach a digest's readers once. ``limit`` keeps the newest.
    """
    # items first (CROSS JOIN fixes the order): the first_seen_at index bounds the scan to
    # the period, where starting from the topic would read every item the topic ever had
    sql = (
        "SELECT items.id, item_topics.topic, COALESCE(items.story_id, items.id), "
        "items.duplicate_of, items.title, items.url, items.source, feeds.title, feeds.url, "
        "items.published_at, items.first_seen_at, "
        "CASE WHEN items.summary != '' THEN items.summary ELSE substr(items.content, 1, 4000) END "
        "FROM items CROSS JOIN item_topics ON item_topics.item_id = items.id "
        "AND item_topics.topic = ? "
        "LEFT JOIN feeds ON feeds.id = items.feed_id "
        "WHERE items.first_seen_at <= ?"
    )
    params: list[Any] = [topic, until]
    if since is not None:
        sql += " AND items.first_seen_at >= ?"
        params.append(since)
    if unsent_for is not None:
        sql += (
            " AND NOT EXISTS (SELECT 1 FROM digest_items CROSS JOIN digests "
            "ON digests.id = digest_items.digest_id WHERE digest_items.item_id = items.id "
            "AND digests.name = ? AND digests.status = 'sent')"
        )
        params.append(unsent_for)
    sql += " ORDER BY items.first_seen_at DESC, items.id DESC"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    rows = store.db.execute(sql, params).fetchall()
    tags = _tags(store, [row[0] for row in rows])
    return [
        DigestRow(
            item_id=row[0],
            topic=row[1],
            story_id=row[2],
            duplicate_of=row[3],
            title=row[4],
            url=row[5],
            source=row[6],
            feed_title=row[7],
            feed_url=row[8],
            published_at=row[9],
            first_seen_at=row[10],
            text=row[11] or "",
            tags=tuple(tags.get(row[0], ())),
        )
        for row in rows
    ]


def _tags(store: Store, item_ids: Sequence[int]) -> dict[int, list[Tag]]:
    found: dict[int, list[Tag]] = {}
    kinds = ",".join(f"'{kind}'" for kind in DIGEST_TAG_KINDS)
    for start in range(0, len(item_ids), _CHUNK):
        chunk = list(item_ids[start : start + _CHUNK])
        marks = ",".join("?" for _ in chunk)
        for item_id, name, kind, score in store.db.execute(
            "SELECT item_tags.item_id, tags.name, tags.kind, item_tags.score FROM item_tags "
            f"JOIN tags ON tags.id = item_tags.tag_id WHERE item_tags.item_id IN ({marks}) "
            f"AND tags.kind IN ({kinds}) ORDER BY item_tags.item_id, item_tags.score DESC",
            chunk,
        ):
            found.setdefault(item_id, []).append(Tag(name, kind, score))
    return found


def abandon_unfinished(store: Store, name: str) -> int:
    """Sends left ``sending`` by a process that died: mark them ``interrupted``, free their items.

    The server may or may not have taken such a mail; its items come again rather than
    being lost.
    """
    with store.transaction():
        ids = [
            row[0]
            for row in store.db.execute(
                "SELECT id FROM digests WHERE name = ? AND status = 'sending'", [name]
            )
        ]
        for digest_id in ids:
            store.db.execute("DELETE FROM digest_items WHERE digest_id = ?", [digest_id])
            store.db.execute(
                "UPDATE digests SET status = 'interrupted', "
                "error = 'the process stopped while sending' WHERE id = ?",
                [digest_id],
            )
    return len(ids)


def begin_send(
    store: Store,
    *,
    name: str,
    topics: Sequence[str],
    period_start: str | None,
    period_end: str,
    recipients: Sequence[str],
    subject: str,
    message_id: str,
    stories: int,
    item_ids: Sequence[int],
    left_out_ids: Sequence[int] = (),
    now: str,
) -> int:
    """Record a send about to start (status ``sending``) with its items, in one transaction.

    ``left_out_ids`` are items of stories cut by ``max_stories`` (``listed = 0``).
    """
    with store.transaction():
        cursor = store.db.execute(
            "INSERT INTO digests(topic, created_at, recipients, subject, status, name, topics, "
            "period_start, period_end, message_id, stories, items) "
            "VALUES (?, ?, ?, ?, 'sending', ?, ?, ?, ?, ?, ?, ?)",
            [
                topics[0] if len(topics) == 1 else None,
                now,
                json.dumps(list(recipients)),
                subject,
                name,
                json.dumps(list(topics)),
                period_start,
                period_end,
                message_id,
                stories,
                len(item_ids),
            ],
        )
        digest_id = cursor.lastrowid
        assert digest_id is not None
        store.db.conn.executemany(
            "INSERT OR IGNORE INTO digest_items(digest_id, item_id, listed) VALUES (?, ?, ?)",
            [(digest_id, item_id, 1) for item_id in item_ids]
            + [(digest_id, item_id, 0) for item_id in left_out_ids],
        )
    return digest_id


def finish_send(store: Store, digest_id: int, *, sent_at: str, note: str | None = None) -> None:
    """The server took the mail: from now on its items count as sent.

    ``note`` names recipients the server refused while taking the mail for the others.
    """
    with store.transaction():
        store.db.execute(
            "UPDATE digests SET status = 'sent', sent_at = ?, error = ? WHERE id = ?",
            [sent_at, note, digest_id],
        )


def fail_send(store: Store, digest_id: int, *, error: str) -> None:
    """The send failed: keep the record and the reason, mark no item."""
    with store.transaction():
        store.db.execute("DELETE FROM digest_items WHERE digest_id = ?", [digest_id])
        store.db.execute(
            "UPDATE digests SET status = 'failed', error = ? WHERE id = ?", [error, digest_id]
        )


def record_failure(
    store: Store,
    *,
    name: str,
    topics: Sequence[str],
    period_end: str,
    recipients: Sequence[str],
    error: str,
    now: str,
) -> int:
    """A send that failed before a message existed (no [smtp], unreadable password)."""
    with store.transaction():
        cursor = store.db.execute(
            "INSERT INTO digests(topic, created_at, recipients, status, name, topics, "
            "period_end, error) VALUES (?, ?, ?, 'failed', ?, ?, ?, ?)",
            [
                topics[0] if len(topics) == 1 else None,
                now,
                json.dumps(list(recipients)),
                name,
                json.dumps(list(topics)),
                period_end,
                error,
            ],
        )
    digest_id = cursor.lastrowid
    assert digest_id is not None
    return digest_id
