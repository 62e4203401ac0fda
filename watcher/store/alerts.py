"""Reads and writes of ``alert_deliveries``: which new stories go to which alert target.

A row per (story, target) is created once (the UNIQUE pair is what makes an alert never
go twice), claimed before it is sent (so two senders never send one row together),
and then marked delivered, or failed with its next attempt, or expired.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from watcher.store.database import Store


@dataclass(frozen=True, slots=True)
class StoryRow:
    """What an alert says about a story: its first item, its topic and source."""

    delivery_id: int
    story_id: int
    attempts: int
    topic: str
    topic_title: str
    title: str
    url: str | None
    source: str | None
    summary: str
    published_at: str | None
    first_seen_at: str


@dataclass(frozen=True, slots=True)
class TargetHealth:
    """One target's record. ``failing``: its latest attempt failed."""

    target: str
    delivered: int
    pending: int
    retrying: int
    expired: int
    last_delivered_at: str | None
    last_attempt_at: str | None
    last_error: str | None
    failing: bool


def enqueue_new_stories(
    store: Store, *, target: str, topics: Sequence[str], since: str, now: str
) -> int:
    """Create a pending delivery to ``target`` for every new story in ``topics`` first seen
    at or after ``since``; returns how many were created.

    A new story is a feed item that started its own story (``story_id = id``) and is no
    near-duplicate; imported documents never alert.
    """
    if not topics:
        return 0
    marks = ",".join("?" for _ in topics)
    with store.transaction():
        cursor = store.db.execute(
            "INSERT OR IGNORE INTO alert_deliveries(story_id, target, topic, status, attempts, "
            "created_at, next_attempt_at) "
            "SELECT items.id, ?, MIN(item_topics.topic), 'pending', 0, ?, ? "
            "FROM items JOIN item_topics ON item_topics.item_id = items.id "
            "WHERE items.first_seen_at >= ? AND items.story_id = items.id "
            "AND items.duplicate_of IS NULL AND items.feed_id IS NOT NULL "
            f"AND item_topics.topic IN ({marks}) "
            "GROUP BY items.id ORDER BY items.id",
            [target, now, now, since, *topics],
        )
    return max(cursor.rowcount, 0)


def claim_due(store: Store, *, target: str, now: str, lease_until: str, limit: int) -> list[int]:
    """Take up to ``limit`` due deliveries of ``target``, oldest story first.

    Claiming moves their next attempt to ``lease_until`` in one statement, so another
    sender running at the same time does not take them too; a sender that dies
    mid-way leaves them to be retried when the lease ends (at-least-once).
    """
    with store.transaction():
        rows = store.db.execute(
            "UPDATE alert_deliveries SET next_attempt_at = ? WHERE id IN ("
            "SELECT id FROM alert_deliveries WHERE target = ? AND status = 'pending' "
            "AND next_attempt_at <= ? ORDER BY story_id LIMIT ?) RETURNING id",
            [lease_until, target, now, limit],
        ).fetchall()
    return sorted(row[0] for row in rows)


def story_of(store: Store, delivery_id: int) -> StoryRow | None:
    row = store.db.execute(
        "SELECT d.id, d.story_id, d.attempts, d.topic, COALESCE(topics.title, d.topic), "
        "items.title, items.url, COALESCE(items.source, feeds.title, feeds.url), "
        "CASE WHEN items.summary != '' THEN items.summary ELSE items.content END, "
        "items.published_at, items.first_seen_at "
        "FROM alert_deliveries AS d JOIN items ON items.id = d.story_id "
        "LEFT JOIN feeds ON feeds.id = items.feed_id "
        "LEFT JOIN topics ON topics.name = d.topic WHERE d.id = ?",
        [delivery_id],
    ).fetchone()
    return None if row is None else StoryRow(*row)


def mark_delivered(store: Store, delivery_id: int, *, now: str) -> None:
    with store.transaction():
        store.db.execute(
            "UPDATE alert_deliveries SET status = 'delivered', attempts = attempts + 1, "
            "last_attempt_at = ?, delivered_at = ?, last_error = NULL, next_attempt_at = NULL "
            "WHERE id = ?",
            [now, now, delivery_id],
        )


def mark_failed(
    store: Store, delivery_id: int, *, now: str, error: str, next_attempt_at: str
) -> None:
    with store.transaction():
        store.db.execute(
            "UPDATE alert_deliveries SET attempts = attempts + 1, last_attempt_at = ?, "
            "last_error = ?, next_attempt_at = ? WHERE id = ?",
            [now, error, next_attempt_at, delivery_id],
        )


def expire_before(store: Store, *, before: str) -> int:
    """Stop retrying deliveries of stories first seen before ``before``; how many stopped."""
    with store.transaction():
        cursor = store.db.execute(
            "UPDATE alert_deliveries SET status = 'expired', next_attempt_at = NULL "
            "WHERE status = 'pending' AND story_id IN "
            "(SELECT id FROM items WHERE first_seen_at < ?)",
            [before],
        )
    return max(cursor.rowcount, 0)


def target_health(store: Store, targets: Sequence[str] | None = None) -> list[TargetHealth]:
    """Every target with deliveries (or the named ones), in name order."""
    sql = (
        "SELECT target, SUM(status = 'delivered'), SUM(status = 'pending'), "
        "SUM(status = 'pending' AND attempts > 0), SUM(status = 'expired'), "
        "MAX(delivered_at), MAX(last_attempt_at) FROM alert_deliveries GROUP BY target"
    )
    found = {row[0]: row for row in store.db.execute(sql).fetchall()}
    names = sorted(found) if targets is None else list(targets)
    health = []
    for name in names:
        row = found.get(name, (name, 0, 0, 0, 0, None, None))
        latest = store.db.execute(
            "SELECT status, last_error FROM alert_deliveries WHERE target = ? "
            "AND last_attempt_at IS NOT NULL ORDER BY last_attempt_at DESC, id DESC LIMIT 1",
            [name],
        ).fetchone()
        failing = latest is not None and latest[1] is not None
        health.append(
            TargetHealth(
                target=name,
                delivered=int(row[1] or 0),
                pending=int(row[2] or 0),
                retrying=int(row[3] or 0),
                expired=int(row[4] or 0),
                last_delivered_at=row[5],
                last_attempt_at=row[6],
                last_error=latest[1] if failing else None,
                failing=failing,
            )
        )
    return health
