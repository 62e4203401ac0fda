"""What the project's Datasette templates show beyond a table's rows: the front page, an
item's story and copies, the story counts of a page of news cards.

A template reaches these through the ``watcher`` variable (``hooks.extra_template_vars``);
each method runs a few indexed queries through Datasette's read-only connection, so a page
costs the same however large the corpus is.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from watcher.normalize import followable

STORIES_PER_TOPIC = 12
"""Stories listed under one topic on the front page; the rest are a link away."""

OTHER_WRITE_UPS = 30
"""Items of an item's story listed beside it."""

FRONT_PAGE_DAYS = (1, 3, 7)
"""The periods the front page offers: since yesterday, the last three days, the week."""

FACET_LABELS: dict[str, str] = {
    "topics": "Topic",
    "source": "Source",
    "lang": "Language",
    "published_at": "Date",
    "first_seen_at": "First seen",
    "places": "Places",
    "orgs": "Organisations",
    "keywords": "Keywords",
    "tags": "Tags",
}
"""Facet names as the News and Stories pages show them, in the order they are listed."""

TAG_COLUMNS = {"place": "places", "org": "orgs", "keyword": "keywords"}
"""The ``news`` column holding the tags of each faceted kind."""

TAG_KIND_ORDER = {"keyword": 0, "place": 1, "org": 2, "keyphrase": 3, "topic": 4}


def stamp(moment: datetime) -> str:
    """The UTC timestamp form the store uses: ``2026-11-30T10:00:00Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def when(value: Any, *, with_time: bool = True) -> str:
    """A stored timestamp as a reader reads it (``30 Nov 2026, 10:00``); '' for none."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    day = f"{moment.day} {moment:%b %Y}"
    if not with_time or (moment.hour, moment.minute) == (0, 0):
        return day
    return f"{day}, {moment:%H:%M}"


def json_list(value: Any) -> list[str]:
    """The strings of a JSON array column (``["a", "b"]``); [] for anything else."""
    if isinstance(value, list):
        parsed: Any = value
    elif isinstance(value, str) and value.startswith("["):
        try:
            parsed = json.loads(value)
        except ValueError:
            return []
    else:
        return []
    return [str(entry) for entry in parsed if entry is not None and str(entry) != ""]


def one_line(value: Any) -> str:
    """Text on one line, whitespace runs folded."""
    return " ".join(str(value or "").split())


def paragraphs(value: Any) -> list[str]:
    """An item's text cut into paragraphs at blank lines (or at line breaks)."""
    text = str(value or "").replace("\r\n", "\n").strip()
    if not text:
        return []
    blocks = [block for block in text.split("\n\n") if block.strip()]
    if len(blocks) == 1:
        blocks = [line for line in text.split("\n") if line.strip()]
    return [one_line(block) for block in blocks]


def counted(number: int, word: str, plural: str | None = None) -> str:
    """``1 source``, ``3 sources``."""
    return f"{number} {word if number == 1 else (plural or word + 's')}"


@dataclass
class StoryCounts:
    sources: int
    languages: int
    items: int

    @property
    def label(self) -> str:
        """``3 sources, 2 languages``."""
        return f"{counted(self.sources, 'source')}, {counted(self.languages, 'language')}"


@dataclass
class SourceLink:
    name: str
    url: str | None
    item_id: int


@dataclass
class FrontStory:
    story_id: int
    headline: str
    url: str | None
    lead_item_id: int
    source: str
    date: str | None
    snippet: str
    counts: StoryCounts
    others: list[SourceLink]
    new_items: int
    other_topics: list[str] = field(default_factory=list)


@dataclass
class FrontTopic:
    name: str
    title: str
    stories: list[FrontStory]
    more: int


@dataclass
class FrontPage:
    since: str
    days: int
    topics: list[FrontTopic]
    new_items: int
    elsewhere: int
    """New items that matched no topic (off-topic imports): counted, not listed."""


class Reader:
    """The ``watcher`` object in the project's templates, bound to the served database."""

    def __init__(self, datasette: Any, database: str) -> None:
        self.datasette = datasette
        self.database = database
        self.facet_labels = FACET_LABELS
        self.front_page_days = FRONT_PAGE_DAYS

    async def _rows(self, sql: str, params: Mapping[str, Any] | Sequence[Any] = ()) -> list[Any]:
        db = self.datasette.get_database(self.database)
        results = await db.execute(sql, params)
        return list(results.rows)

    # links -------------------------------------------------------------------------

    def table_url(self, table: str, **args: Any) -> str:
        base: str = self.datasette.urls.table(self.database, table)
        query = urlencode({key: value for key, value in args.items() if value is not None})
        return f"{base}?{query}" if query else base

    def tag_url(self, kind: str, name: str) -> str:
        """News narrowed to one tag: by its kind's column, or by ``tags`` for the others."""
        column = TAG_COLUMNS.get(kind, "tags")
        return self.table_url("news", **{f"{column}__arraycontains": name})

    def item_url(self, item_id: Any) -> str:
        url: str = self.datasette.urls.row(self.database, "items", str(item_id))
        return url

    def story_url(self, story_id: Any) -> str:
        return self.table_url("news", story_id=story_id)

    def topic_feed_url(self, topic: str) -> str:
        base: str = self.datasette.urls.database(self.database)
        return f"{base}/topic_feed.atom?{urlencode({'topic': topic})}"

    def search_feed_url(self, words: str) -> str:
        base: str = self.datasette.urls.database(self.database)
        return f"{base}/search_feed.atom?{urlencode({'q': words})}"

    def hidden_args(self, request: Any, *, leave_out: Iterable[str] = ()) -> list[tuple[str, str]]:
        """The page's query arguments but ``_search``, ``_next`` and ``leave_out``, to keep
        the filters chosen so far when the search form is sent."""
        skip = {"_search", "_next", *leave_out}
        args = request.args
        names: list[str] = list(args.keys())
        return [(key, value) for key in names if key not in skip for value in args.getlist(key)]

    def facet_order(self, facet_results: Sequence[Any]) -> list[Any]:
        """Facets in the reader's order (topic, source, language, date, tag kinds), the rest after."""
        rank = {name: index for index, name in enumerate(FACET_LABELS)}
        return sorted(facet_results, key=lambda facet: (rank.get(facet["name"], 99), facet["name"]))

    # a page of news cards -------------------------------------------------------------

    async def story_counts(self, rows: Iterable[Any]) -> dict[int, StoryCounts]:
        """Sources, languages and items of the stories of ``rows`` (rows with ``story_id``)."""
        ids = sorted({int(row["story_id"]) for row in rows if row["story_id"] is not None})
        if not ids:
            return {}
        marks = ",".join("?" for _ in ids)
        found = await self._rows(
            f"""
            SELECT items.story_id AS story_id,
                COUNT(DISTINCT COALESCE(items.source, feeds.title, feeds.url)) AS sources,
                COUNT(DISTINCT items.lang) AS languages,
                COUNT(*) AS items
            FROM items LEFT JOIN feeds ON feeds.id = items.feed_id
            WHERE items.story_id IN ({marks})
            GROUP BY items.story_id
            """,
            ids,
        )
        return {
            int(row["story_id"]): StoryCounts(
                int(row["sources"]), max(1, int(row["languages"])), int(row["items"])
            )
            for row in found
        }

    # the front page -------------------------------------------------------------------

    async def front_page(self, request: Any) -> FrontPage:
        """Stories with items first seen in the last day (``?days=`` 1, 3 or 7), by topic.

        As the digest does: one entry per story under the first topic it is new in (in
        the topics' order), its lead headline, the outlet of the lead and the others.
        """
        try:
            days = int(request.args.get("days") or 1)
        except ValueError:
            days = 1
        days = days if days in FRONT_PAGE_DAYS else 1
        since = stamp(datetime.now(UTC) - timedelta(days=days))
        topics = await self._rows("SELECT name, title FROM topics ORDER BY name")
        new = await self._rows(
            """
            SELECT items.story_id AS story_id, item_topics.topic AS topic, COUNT(*) AS new_items
            FROM items JOIN item_topics ON item_topics.item_id = items.id
            WHERE items.first_seen_at >= :since AND items.story_id IS NOT NULL
            GROUP BY items.story_id, item_topics.topic
            """,
            {"since": since},
        )
        totals = await self._rows(
            """
            SELECT COUNT(*) AS items,
                SUM(NOT EXISTS (SELECT 1 FROM item_topics WHERE item_topics.item_id = items.id))
                    AS elsewhere
            FROM items WHERE items.first_seen_at >= :since
            """,
            {"since": since},
        )
        story_topics: dict[int, list[str]] = {}
        new_items: dict[int, int] = {}
        for row in new:
            story_topics.setdefault(int(row["story_id"]), []).append(str(row["topic"]))
            new_items[int(row["story_id"])] = max(
                new_items.get(int(row["story_id"]), 0), int(row["new_items"])
            )
        stories = await self._stories(sorted(story_topics))
        titles = {str(row["name"]): str(row["title"] or row["name"]) for row in topics}
        for extra in sorted({t for names in story_topics.values() for t in names} - set(titles)):
            titles[extra] = extra
        placed: dict[str, list[FrontStory]] = {name: [] for name in titles}
        for story_id, names in story_topics.items():
            story = stories.get(story_id)
            if story is None:
                continue
            ordered = [name for name in titles if name in names]
            story.new_items = new_items[story_id]
            story.other_topics = [titles[name] for name in ordered[1:]]
            placed[ordered[0]].append(story)
        sections = []
        for name, title in titles.items():
            listed = sorted(
                placed[name],
                key=lambda s: (-s.counts.sources, -s.new_items, s.date or "", s.story_id),
            )
            if listed:
                sections.append(
                    FrontTopic(
                        name=name,
                        title=title,
                        stories=listed[:STORIES_PER_TOPIC],
                        more=max(0, len(listed) - STORIES_PER_TOPIC),
                    )
                )
        total = totals[0] if totals else None
        return FrontPage(
            since=since,
            days=days,
            topics=sections,
            new_items=int(total["items"] or 0) if total else 0,
            elsewhere=int(total["elsewhere"] or 0) if total else 0,
        )

    async def _stories(self, story_ids: Sequence[int]) -> dict[int, FrontStory]:
        if not story_ids:
            return {}
        marks = ",".join("?" for _ in story_ids)
        leads = await self._rows(
            f"""
            SELECT story_leads.story_id AS story_id, lead.id AS id, lead.title AS title,
                lead.url AS url, lead.published_at AS published_at,
                lead.first_seen_at AS first_seen_at, lead.feed_id AS feed_id,
                COALESCE(lead.source, feeds.title, feeds.url) AS source,
                substr(CASE WHEN lead.summary != '' THEN lead.summary ELSE lead.content END,
                       1, 400) AS snippet
            FROM story_leads
            JOIN items AS lead ON lead.id = story_leads.lead_item_id
            LEFT JOIN feeds ON feeds.id = lead.feed_id
            WHERE story_leads.story_id IN ({marks})
            """,
            list(story_ids),
        )
        members = await self._rows(
            f"""
            SELECT items.story_id AS story_id, items.id AS id, items.url AS url,
                items.lang AS lang, items.duplicate_of AS duplicate_of,
                COALESCE(items.source, feeds.title, feeds.url) AS source
            FROM items LEFT JOIN feeds ON feeds.id = items.feed_id
            WHERE items.story_id IN ({marks})
            ORDER BY COALESCE(items.published_at, items.first_seen_at), items.id
            """,
            list(story_ids),
        )
        by_story: dict[int, list[Any]] = {}
        for row in members:
            by_story.setdefault(int(row["story_id"]), []).append(row)
        found: dict[int, FrontStory] = {}
        for lead in leads:
            story_id = int(lead["story_id"])
            rows = by_story.get(story_id, [])
            lead_source = one_line(lead["source"]) or "imported document"
            seen = {lead_source.casefold()}
            others: list[SourceLink] = []
            for row in rows:
                name = one_line(row["source"]) or "imported document"
                if name.casefold() in seen:
                    continue
                seen.add(name.casefold())
                others.append(SourceLink(name, followable(row["url"]), int(row["id"])))
            languages = {row["lang"] for row in rows if row["lang"]}
            found[story_id] = FrontStory(
                story_id=story_id,
                headline=one_line(lead["title"]),
                url=followable(lead["url"]),
                lead_item_id=int(lead["id"]),
                source=lead_source,
                # an undated import's import time says nothing of the news
                date=lead["published_at"]
                or (lead["first_seen_at"] if lead["feed_id"] is not None else None),
                snippet=one_line(lead["snippet"]),
                counts=StoryCounts(len(seen), max(1, len(languages)), len(rows)),
                others=others,
                new_items=0,
            )
        return found

    # an item's page -------------------------------------------------------------------

    async def item_page(self, item_id: Any) -> dict[str, Any] | None:
        """An item as an article: its fields, feed, topics, tags, story and copies."""
        found = await self._rows(
            """
            SELECT items.*, feeds.title AS feed_title, feeds.url AS feed_url
            FROM items LEFT JOIN feeds ON feeds.id = items.feed_id
            WHERE items.id = ?
            """,
            [item_id],
        )
        if not found:
            return None
        item = found[0]
        own_id = int(item["id"])
        topics = await self._rows(
            """
            SELECT item_topics.topic AS name, COALESCE(topics.title, item_topics.topic) AS title
            FROM item_topics LEFT JOIN topics ON topics.name = item_topics.topic
            WHERE item_topics.item_id = ? ORDER BY item_topics.topic
            """,
            [own_id],
        )
        tags = await self._rows(
            """
            SELECT tags.name AS name, tags.kind AS kind, item_tags.score AS score
            FROM item_tags JOIN tags ON tags.id = item_tags.tag_id
            WHERE item_tags.item_id = ? AND tags.kind IN ('keyword', 'place', 'org')
            ORDER BY item_tags.score DESC
            """,
            [own_id],
        )
        story_rows: list[Any] = []
        if item["story_id"] is not None:
            story_rows = await self._rows(
                """
                SELECT items.id AS id, items.title AS title, items.url AS url,
                    items.lang AS lang, items.published_at AS published_at,
                    items.first_seen_at AS first_seen_at, items.duplicate_of AS duplicate_of,
                    COALESCE(items.source, feeds.title, feeds.url) AS source
                FROM items LEFT JOIN feeds ON feeds.id = items.feed_id
                WHERE items.story_id = ?
                ORDER BY COALESCE(items.published_at, items.first_seen_at), items.id
                """,
                [item["story_id"]],
            )
        original = item["duplicate_of"]
        family = {own_id} | ({int(original)} if original is not None else set())
        copies = [
            row
            for row in story_rows
            if int(row["id"]) != own_id
            and (
                int(row["id"]) in family
                or (row["duplicate_of"] is not None and int(row["duplicate_of"]) in family)
            )
        ]
        copy_ids = {int(row["id"]) for row in copies}
        write_ups = [
            row for row in story_rows if int(row["id"]) != own_id and int(row["id"]) not in copy_ids
        ]
        if item["story_id"] is not None and not story_rows:
            write_ups = []
        sightings = await self._rows(
            """
            SELECT sightings.url AS url, sightings.seen_at AS seen_at, sightings.match AS match,
                COALESCE(feeds.title, feeds.url) AS feed
            FROM sightings LEFT JOIN feeds ON feeds.id = sightings.feed_id
            WHERE sightings.item_id = ? ORDER BY sightings.seen_at, sightings.id
            """,
            [own_id],
        )
        elsewhere = [row for row in sightings if row["url"] and row["url"] != item["url"]]
        sources = {one_line(row["source"]).casefold() for row in story_rows if row["source"]}
        languages = {row["lang"] for row in story_rows if row["lang"]}
        lead_id = int(story_rows[0]["id"]) if story_rows else own_id
        tag_list = sorted(
            tags, key=lambda tag: (TAG_KIND_ORDER.get(str(tag["kind"]), 9), -float(tag["score"]))
        )
        return {
            "item": item,
            "title": one_line(item["title"]),
            "url": followable(item["url"]),
            "source": one_line(item["source"] or item["feed_title"] or item["feed_url"] or "")
            or "imported document",
            "feed": one_line(item["feed_title"] or item["feed_url"] or ""),
            "text": paragraphs(item["content"] or item["summary"]),
            "summary": one_line(item["summary"]) if item["content"] else "",
            "topics": topics,
            "tags": tag_list,
            "write_ups": write_ups[:OTHER_WRITE_UPS],
            "more_write_ups": max(0, len(write_ups) - OTHER_WRITE_UPS),
            "copies": copies,
            "elsewhere": elsewhere,
            "is_lead": lead_id == own_id,
            "lead_id": lead_id,
            "counts": StoryCounts(max(1, len(sources)), max(1, len(languages)), len(story_rows)),
        }


async def current_story(datasette: Any, database: str, story_id: int) -> int | None:
    """The story ``story_id`` belongs to now (the story of its first item, which follows
    merges and splits; for a deleted item, its recorded merge); None when unknown."""
    db = datasette.get_database(database)
    rows = await db.execute("SELECT story_id FROM items WHERE id = ?", [story_id])
    found = rows.first()
    if found is not None and found[0] is not None:
        return int(found[0])
    rows = await db.execute("SELECT merged_into FROM story_merges WHERE story_id = ?", [story_id])
    found = rows.first()
    return None if found is None else int(found[0])
