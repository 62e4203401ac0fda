"""Browsing in Datasette: a real instance over a database built by the real CLI."""

from __future__ import annotations

import asyncio
import html
import json
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from datasette.app import Datasette
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.browse_support import (
    FEED_URL,
    METADATA,
    Corpus,
    build_corpus,
    free_port,
    get,
    listening_addresses,
    project_layout,
    serving,
)
from tests.conftest import TOPIC_TOML, Watcher, kant_story, rss, write_config
from watcher.browse import datasette_for, load_metadata
from watcher.config import ServeConfig, config_from_dict
from watcher.errors import ConfigError

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    """The test corpus, imported once for the module (tests only read it)."""
    return build_corpus(tmp_path_factory.mktemp("browse"))


def datasette(corpus: Corpus, **settings: Any) -> Datasette:
    return datasette_for(ServeConfig(**settings), corpus.db, METADATA)


async def get_json(ds: Datasette, path: str) -> Any:
    response = await ds.client.get(path)
    assert response.status_code == 200, response.text[:500]
    return response.json()


async def rows(ds: Datasette, path: str) -> list[dict[str, Any]]:
    base, _, query = path.partition("?")
    data = await get_json(ds, f"{base}.json?_shape=array&{query}")
    assert isinstance(data, list)
    return data


def db_rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as connection:
        return connection.execute(sql).fetchall()


# search, facets, sorting ---------------------------------------------------


async def test_search_on_news_finds_the_item(corpus: Corpus) -> None:
    """The news page's full-text search finds an item by a word of its text."""
    ds = datasette(corpus)
    found = await rows(ds, f"/{corpus.name}/news?_search=squadron")
    titles = {row["title"] for row in found}
    assert "Reconnaissance drones moved to Kant air base" in titles
    assert "CSTO air defence drill ends near Issyk-Kul" not in titles


async def test_search_on_the_items_table_finds_the_item(corpus: Corpus) -> None:
    """The items table is searchable too (its FTS index is detected)."""
    ds = datasette(corpus)
    found = await rows(ds, f"/{corpus.name}/items?_search=Issyk")
    assert [row["title"] for row in found] == ["CSTO air defence drill ends near Issyk-Kul"]


async def test_news_is_sorted_newest_first(corpus: Corpus) -> None:
    """Without a sort in the URL, news lists the newest item first."""
    ds = datasette(corpus)
    dates = [row["published_at"] for row in await rows(ds, f"/{corpus.name}/news")]
    assert dates == sorted(dates, reverse=True)
    assert len(dates) == 5


@pytest.mark.parametrize(
    ("facet", "value", "filter_arg"),
    [
        ("topics", "kant-air-base", "topics__arraycontains"),
        ("places", None, "places__arraycontains"),
        ("keywords", None, "keywords__arraycontains"),
        ("source", "Vesti KG", "source"),
        ("lang", "ru", "lang"),
        ("published_at", None, "published_at__date"),
    ],
)
async def test_each_news_facet_counts_values_and_filters_rows(
    corpus: Corpus, facet: str, value: str | None, filter_arg: str
) -> None:
    """Each configured facet (topic, place, keyword, source, language, date) has values, and
    selecting one returns the matching rows."""
    ds = datasette(corpus)
    data = await get_json(ds, f"/{corpus.name}/news.json")
    results = data["facet_results"][facet]["results"]
    assert results, f"facet {facet} has no values"
    chosen = next(r for r in results if value is None or r["value"] == value)
    filtered = await rows(ds, f"/{corpus.name}/news?{filter_arg}={quote(str(chosen['value']))}")
    assert len(filtered) == chosen["count"] > 0


async def test_story_summary_has_one_row_per_story_with_its_counts(corpus: Corpus) -> None:
    """The story view: one row per story with headline, first seen, sources and items."""
    ds = datasette(corpus)
    stories = await rows(ds, f"/{corpus.name}/story_summary")
    assert len({row["story_id"] for row in stories}) == len(stories)
    with_topic = db_rows(
        corpus.db,
        "SELECT DISTINCT story_id FROM items JOIN item_topics ON item_topics.item_id = items.id",
    )
    assert len(stories) == len(with_topic)
    drones = next(r for r in stories if r["headline"].startswith("Reconnaissance drones"))
    assert drones["sources"] >= 2
    assert drones["items"] >= 2
    assert drones["copies"] == 1
    assert {"Steppe Herald", "Central Asia Wire"} <= set(drones["source_names"].split(", "))
    assert drones["first_seen_at"]


async def test_story_number_links_to_the_story_items(corpus: Corpus) -> None:
    """On the story page the story number is a link, and it lists exactly that story's items."""
    ds = datasette(corpus)
    story_id = db_rows(corpus.db, "SELECT story_id FROM items WHERE external_id = 'drones-1'")[0][0]
    page = await ds.client.get(f"/{corpus.name}/story_summary")
    assert page.status_code == 200
    link = f'href="/{corpus.name}/news?story_id={story_id}"'
    assert link in page.text
    members = await rows(ds, f"/{corpus.name}/news?story_id={story_id}")
    expected = db_rows(corpus.db, f"SELECT id FROM items WHERE story_id = {story_id}")
    assert sorted(row["id"] for row in members) == sorted(row[0] for row in expected)


async def test_item_urls_and_ids_are_links(corpus: Corpus) -> None:
    """Item URLs link to the original; item ids and copies link to the item's row page."""
    ds = datasette(corpus)
    page = await ds.client.get(f"/{corpus.name}/news?_search=squadron")
    assert '<a href="https://steppe-herald.example/2026/kant-drones">' in page.text
    original = db_rows(corpus.db, "SELECT id FROM items WHERE external_id = 'drones-1'")[0][0]
    assert f'<a href="/{corpus.name}/items/{original}">' in page.text


async def test_foreign_keys_show_labels(corpus: Corpus) -> None:
    """A sighting shows its item's title and a near-duplicate its original's title."""
    ds = datasette(corpus)
    sightings = await get_json(ds, f"/{corpus.name}/sightings.json?_labels=on&_shape=array")
    assert sightings[0]["item_id"]["label"] == "Reconnaissance drones moved to Kant air base"
    copies = await get_json(
        ds, f"/{corpus.name}/items.json?_labels=on&_shape=array&duplicate_of__notblank=1"
    )
    assert copies[0]["duplicate_of"]["label"] == "Reconnaissance drones moved to Kant air base"


# canned queries ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "args"),
    [
        ("latest_per_topic", ""),
        ("biggest_stories", ""),
        ("items_for_tag", "tag=Kyrgyzstan"),
        ("feed_health", ""),
        ("item_family", "item=1"),
    ],
)
async def test_each_canned_query_returns_rows(corpus: Corpus, query: str, args: str) -> None:
    """Every canned query of the metadata answers with rows on the test corpus."""
    ds = datasette(corpus)
    assert await rows(ds, f"/{corpus.name}/{query}?{args}")


async def test_biggest_stories_covers_only_the_last_seven_days(corpus: Corpus) -> None:
    """The 20-day-old drill is left out; the drone story, with two sources, comes first."""
    ds = datasette(corpus)
    found = await rows(ds, f"/{corpus.name}/biggest_stories")
    headlines = [row["headline"] for row in found]
    assert "CSTO air defence drill ends near Issyk-Kul" not in headlines
    assert headlines[0] == "Reconnaissance drones moved to Kant air base"
    assert found[0]["sources"] >= 2


async def test_item_family_lists_duplicates_and_sightings(corpus: Corpus) -> None:
    """For the wire copy: the copy, its original, and where each was seen (the repeat too)."""
    ds = datasette(corpus)
    copy_id, original = db_rows(
        corpus.db, "SELECT id, duplicate_of FROM items WHERE external_id = 'drones-wire'"
    )[0]
    found = await rows(ds, f"/{corpus.name}/item_family?item={copy_id}")
    relations = {(row["relation"], row["item_id"]) for row in found}
    assert ("item", copy_id) in relations
    assert ("original", original) in relations
    sighted = [row for row in found if row["relation"] == "sighting"]
    assert {row["match"] for row in sighted} >= {"first", "hash"}
    assert "https://mirror.example/kant-drones?utm_source=feed" in {row["url"] for row in sighted}


async def test_latest_per_topic_leaves_out_copies(corpus: Corpus) -> None:
    """Latest items per topic lists originals only, newest first."""
    ds = datasette(corpus)
    found = await rows(ds, f"/{corpus.name}/latest_per_topic")
    titles = [row["title"] for row in found]
    assert "Drones moved to Kant air base, ministry says" not in titles
    assert titles[0] == "Reconnaissance drones moved to Kant air base"


async def test_feed_health_reports_a_feed_never_fetched(corpus: Corpus) -> None:
    """Feed health lists the config's feed as not yet fetched."""
    ds = datasette(corpus)
    found = await rows(ds, f"/{corpus.name}/feed_health")
    assert [(row["url"], row["state"]) for row in found] == [(FEED_URL, "not yet fetched")]


async def test_metadata_applies_whatever_the_database_file_is_called(corpus: Corpus) -> None:
    """The file's `watcher` block is served as /morning: title, descriptions and queries."""
    ds = datasette(corpus)
    assert corpus.name != "watcher"
    database = await get_json(ds, f"/{corpus.name}.json")
    assert {query["name"] for query in database["queries"]} == {
        "latest_per_topic",
        "biggest_stories",
        "items_for_tag",
        "feed_health",
        "item_family",
        "topic_feed",
        "search_feed",
    }
    page = await ds.client.get(f"/{corpus.name}/news")
    assert "<h1>News</h1>" in page.text
    stories = await ds.client.get(f"/{corpus.name}/story_summary")
    assert "One entry per story" in stories.text
    hidden = {table["name"] for table in database["tables"] if table["hidden"]}
    assert {
        "dedupe_keys",
        "dedupe_fingerprints",
        "off_topic_entries",
        "_sqlite_migrations",
    } <= hidden
    for home in ("/", f"/{corpus.name}"):
        page = await ds.client.get(home)
        assert f'<a href="/{corpus.name}/news">News</a>' in page.text, home
        assert f'<a href="/{corpus.name}/story_summary">Stories</a>' in page.text, home


async def test_title_from_the_serve_section_replaces_the_metadata_title(corpus: Corpus) -> None:
    """`[serve] title` names the instance on its index page."""
    ds = datasette(corpus, title="Morning briefing")
    page = await ds.client.get("/")
    assert "<h1>Morning briefing</h1>" in page.text


# read-only ------------------------------------------------------------------------


async def test_arbitrary_sql_is_refused_by_default(corpus: Corpus) -> None:
    """Without `[serve] allow_sql`, the SQL page and `_where` filters are forbidden."""
    ds = datasette(corpus)
    assert (await ds.client.get(f"/{corpus.name}.json?sql=select+1")).status_code == 403
    assert (await ds.client.get(f"/{corpus.name}?sql=select+1")).status_code == 403
    where = await ds.client.get(f"/{corpus.name}/items.json?_where=id>0")
    assert where.status_code == 403


async def test_arbitrary_sql_is_allowed_when_configured_but_only_reads(corpus: Corpus) -> None:
    """`[serve] allow_sql = true` opens the SQL page; a DELETE still changes nothing."""
    config = config_from_dict({"serve": {"allow_sql": True}})
    ds = datasette_for(config.serve, corpus.db, METADATA)
    count = await get_json(
        ds, f"/{corpus.name}.json?sql=select+count(*)+as+n+from+items&_shape=array"
    )
    assert count == [{"n": 5}]
    delete = await ds.client.get(f"/{corpus.name}.json?sql=delete+from+items")
    assert delete.status_code == 400
    assert db_rows(corpus.db, "SELECT count(*) FROM items") == [(5,)]


async def test_post_requests_are_refused(corpus: Corpus) -> None:
    """POSTs to a canned query, the SQL page and a table get 405 and write nothing."""
    ds = datasette_for(ServeConfig(allow_sql=True), corpus.db, METADATA)
    before = db_rows(corpus.db, "SELECT count(*) FROM items")
    for path in (f"/{corpus.name}/feed_health", f"/{corpus.name}", f"/{corpus.name}/items"):
        response = await ds.client.post(path, data={"sql": "delete from items"})
        assert response.status_code == 405, (path, response.status_code)
        assert response.text == "watcher serve is read-only\n"
    assert db_rows(corpus.db, "SELECT count(*) FROM items") == before


async def test_datasette_connections_cannot_write(corpus: Corpus) -> None:
    """Even a write Datasette itself attempts (as a plugin or write query would) fails."""
    ds = datasette(corpus)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        await ds.get_database(corpus.name).execute_write("DELETE FROM items")
    assert db_rows(corpus.db, "SELECT count(*) FROM items") == [(5,)]


def test_metadata_with_a_write_query_is_refused(tmp_path: Path) -> None:
    """A write query in the metadata file stops serve with a message naming it."""
    bad = tmp_path / "metadata.json"
    bad.write_text(
        json.dumps(
            {
                "databases": {
                    "watcher": {"queries": {"wipe": {"sql": "delete from items", "write": True}}}
                }
            }
        )
    )
    with pytest.raises(ConfigError, match=r"databases\.watcher\.queries\.wipe\.write"):
        load_metadata(bad, "watcher")


def test_metadata_with_allow_sql_is_refused(tmp_path: Path) -> None:
    """An allow_sql block in the metadata would bypass [serve] allow_sql, so it is refused."""
    bad = tmp_path / "metadata.yml"
    bad.write_text("databases:\n  watcher:\n    allow_sql: true\n")
    with pytest.raises(ConfigError, match="serve"):
        load_metadata(bad, "watcher")


def test_serve_with_a_missing_metadata_file_is_a_one_line_error(corpus: Corpus) -> None:
    """`watcher serve --metadata missing.yml` says so, without a traceback."""
    result = corpus.watcher("serve", "--metadata", str(corpus.db.parent / "missing.yml"))
    assert result.exit_code == 1
    assert "missing.yml: Datasette metadata file not found" in result.output
    assert "Traceback" not in result.output


async def test_feed_html_is_escaped_on_every_page(corpus: Corpus) -> None:
    """Script tags in an item's title and text appear as text, never as markup."""
    ds = datasette(corpus)
    item = db_rows(corpus.db, "SELECT id FROM items WHERE external_id = 'script-notice'")[0][0]
    pages = [
        f"/{corpus.name}/news?_search=notice",
        f"/{corpus.name}/items?_search=notice",
        f"/{corpus.name}/items/{item}",
        f"/{corpus.name}/story_summary",
        f"/{corpus.name}/items_for_tag?tag=Kant",
        f"/{corpus.name}/latest_per_topic",
        f"/{corpus.name}/item_family?item={item}",
    ]
    for path in pages:
        page = await ds.client.get(path)
        assert page.status_code == 200, path
        assert "notice" in page.text.lower(), path
        assert "<script>alert(" not in page.text, path
        assert "alert(" in html.unescape(page.text), path
    copyable = await ds.client.get(
        f"/{corpus.name}/news.copyable?_search=notice&_table_format=unsafehtml&_raw=1"
    )
    assert copyable.headers["content-type"].startswith("text/plain")


async def test_robots_are_kept_out(corpus: Corpus) -> None:
    """robots.txt (datasette-block-robots) disallows everything."""
    ds = datasette(corpus)
    response = await ds.client.get("/robots.txt")
    assert response.status_code == 200
    assert "Disallow: /" in response.text


async def test_tables_can_be_copied_as_markdown(corpus: Corpus) -> None:
    """datasette-copyable offers a table as Markdown for pasting into a report."""
    ds = datasette(corpus)
    response = await ds.client.get(
        f"/{corpus.name}/story_summary.copyable?_table_format=github&_raw=1"
    )
    assert response.status_code == 200
    assert "| Reconnaissance drones moved to Kant air base" in response.text


# the command -----------------------------------------------------------------------


def test_serve_with_no_arguments_serves_the_default_database(tmp_path: Path) -> None:
    """In a folder laid out like the repository, `watcher serve` alone serves db/watcher.db
    with db/metadata.yml, on 127.0.0.1 only."""
    folder = project_layout(tmp_path)
    port = free_port()
    with (folder / "config" / "watcher.toml").open("a", encoding="utf-8") as config:
        config.write(f"\n[serve]\nport = {port}\n")
    with serving(["serve"], cwd=folder, port=port):
        status, body = get(f"http://127.0.0.1:{port}/watcher/news.json")
        assert status == 200
        assert json.loads(body)["rows"] == []
        assert listening_addresses(port) <= {"0100007F", "00000000000000000000000001000000"}
        assert listening_addresses(port)
        assert get(f"http://127.0.0.1:{port}/watcher/feed_health.json")[0] == 200
    assert (folder / "db" / "watcher.db").exists()


# browsing while polling ---------------------------------------------------------------


@pytest.fixture
def held_feed(httpserver: HTTPServer) -> Iterator[threading.Event]:
    """/held.xml answers only once the returned event is set (or after 60 s)."""
    release = threading.Event()

    def handler(request: Request) -> Response:
        release.wait(60)
        return Response(
            rss([kant_story(30 + n) for n in range(3)]), content_type="application/rss+xml"
        )

    httpserver.expect_request("/held.xml").respond_with_handler(handler)
    yield release
    release.set()


async def test_browsing_during_a_poll_neither_fails_nor_blocks_it(
    tmp_path: Path, httpserver: HTTPServer, held_feed: threading.Event
) -> None:
    """While a poll writes, Datasette pages answer, and a read transaction Datasette holds
    open does not stop the poll from committing the next feed's batch."""
    httpserver.expect_request("/quick.xml").respond_with_data(
        rss([kant_story(n) for n in range(3)]), content_type="application/rss+xml"
    )
    config = tmp_path / "watcher.toml"
    config.write_text(
        '[poll]\nworkers = 1\nread_timeout = "60s"\ndeadline = "90s"\n'
        + TOPIC_TOML
        + f'\n[[feeds]]\nurl = "{httpserver.url_for("/quick.xml")}"\n'
        + f'\n[[feeds]]\nurl = "{httpserver.url_for("/held.xml")}"\n'
    )
    watcher = Watcher(tmp_path, config)
    assert watcher("init").exit_code == 0
    ds = datasette_for(ServeConfig(), watcher.db, METADATA)
    name = watcher.db.stem

    poll = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "watcher",
            "--config",
            str(config),
            "--db",
            str(watcher.db),
            "poll",
            "--all",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not await rows(ds, f"/{name}/news"):
            assert poll.poll() is None, poll.communicate()
            assert time.monotonic() < deadline, "the quick feed's items never appeared"
            time.sleep(0.1)
        for path in (
            f"/{name}/news?_search=Bishkek",
            f"/{name}/story_summary",
            f"/{name}/feed_health",
            f"/{name}/latest_per_topic",
            f"/{name}/items?_facet=lang",
        ):
            assert (await ds.client.get(f"{path}")).status_code == 200, path
        reader = ds.get_database(name).connect()
        reader.execute("BEGIN")
        seen = reader.execute("SELECT count(*) FROM items").fetchone()[0]
        assert seen == 3
        held_feed.set()
        out, err = poll.communicate(timeout=120)
        assert poll.returncode == 0, err
        assert "2 ok" in out
        assert reader.execute("SELECT count(*) FROM items").fetchone()[0] == 3
        reader.execute("COMMIT")
        reader.close()
    finally:
        if poll.poll() is None:
            poll.kill()
            poll.communicate()
    assert len(await rows(ds, f"/{name}/news")) == 6


# reader pages (issue 22) ---------------------------------------------------------------


def item_id(corpus: Corpus, external_id: str) -> int:
    found = db_rows(corpus.db, f"SELECT id FROM items WHERE external_id = '{external_id}'")
    return int(found[0][0])


async def test_front_page_lists_what_is_new_by_topic_one_entry_per_story(corpus: Corpus) -> None:
    """The index page: each topic with new items, each story once, its lead and other sources,
    an Atom feed per topic; the wire copy of a story is not a second entry."""
    ds = datasette(corpus)
    page = await ds.client.get("/")
    assert page.status_code == 200
    text = page.text
    assert "Russia&#39;s Kant air base in Kyrgyzstan" in text
    assert text.count("Reconnaissance drones moved to Kant air base") == 1
    assert "Drones moved to Kant air base, ministry says" not in text
    assert "Central Asia Wire" in text
    assert f'href="/{corpus.name}/topic_feed.atom?topic=kant-air-base"' in text
    week = await ds.client.get("/?days=7")
    assert "in the last 7 days" in week.text


async def test_news_page_is_a_list_of_cards_with_facets_after_the_results(corpus: Corpus) -> None:
    """Cards: headline linked to the article, source, language, chips (never a JSON array),
    "N sources, M languages" linking the story; the facets come after the cards."""
    ds = datasette(corpus)
    page = await ds.client.get(f"/{corpus.name}/news")
    text = page.text
    assert '<a href="https://steppe-herald.example/2026/kant-drones">' in text
    assert 'class="chip chip-topic"' in text
    assert "[&#34;" not in text
    assert '["' not in text
    story = db_rows(corpus.db, "SELECT story_id FROM items WHERE external_id = 'drones-1'")[0][0]
    assert f'href="/{corpus.name}/news?story_id={story}"' in text
    assert "2 sources, 1 language" in text
    assert text.index('class="card"') < text.index('class="reader-facets"')
    for label in ("Topic", "Source", "Language", "Date", "Places", "Keywords"):
        assert f"<h3>{label}</h3>" in text
    assert "CREATE VIEW" not in text


async def test_news_page_filtered_by_topic_links_its_atom_feed(corpus: Corpus) -> None:
    ds = datasette(corpus)
    page = await ds.client.get(f"/{corpus.name}/news?topics__arraycontains=kant-air-base")
    assert 'type="application/atom+xml"' in page.text
    assert "topic_feed.atom?topic=kant-air-base" in page.text


async def test_item_page_reads_like_an_article_with_its_story_and_copies(corpus: Corpus) -> None:
    """Title, source, date, text; the story's other write-ups and copies; the stored fields
    folded; canonical_url as text, the item's own url as the link."""
    ds = datasette(corpus)
    original = item_id(corpus, "drones-1")
    page = await ds.client.get(f"/{corpus.name}/items/{original}")
    assert page.status_code == 200
    text = page.text
    assert "<h1>Reconnaissance drones moved to Kant air base</h1>" in text
    assert "Steppe Herald" in text
    assert "squadron of reconnaissance drones" in text
    assert "Drones moved to Kant air base, ministry says" in text  # the wire copy
    assert 'href="https://steppe-herald.example/2026/kant-drones"' in text
    assert "https://mirror.example/kant-drones?utm_source=feed" in text  # seen again there
    assert 'href="https://mirror.example/kant-drones"' in text  # linked less its tracking
    assert '<details class="record">' in text
    canonical = db_rows(corpus.db, f"SELECT canonical_url FROM items WHERE id = {original}")[0][0]
    assert canonical
    assert f'href="{canonical}"' not in text.replace(
        'href="https://steppe-herald.example/2026/kant-drones"', ""
    )
    assert '<span class="plain-url">' in text
    copy = item_id(corpus, "drones-wire")
    page = await ds.client.get(f"/{corpus.name}/items/{copy}")
    assert "the original this copies" in page.text


def test_item_page_shows_the_feed_name_for_a_feed_item(tmp_path: Path) -> None:
    """A polled item's page names its feed, not its feed_id."""
    directory = tmp_path / "feedcase"
    directory.mkdir()
    server = HTTPServer()
    server.start()
    try:
        server.expect_request("/feed.xml").respond_with_data(
            rss([kant_story(1)], title="Frontier Gazette"), content_type="application/rss+xml"
        )
        config = write_config(directory, [server.url_for("/feed.xml")])
        watcher = Watcher(directory, config)
        result = watcher("poll")
        assert result.exit_code == 0, result.output
    finally:
        server.clear()
        if server.is_running():
            server.stop()
    ((item,),) = db_rows(watcher.db, "SELECT id FROM items LIMIT 1")
    ds = datasette_for(ServeConfig(), watcher.db, METADATA)
    page = asyncio.run(ds.client.get(f"/watcher/items/{item}"))
    assert page.status_code == 200
    assert "Frontier Gazette" in page.text


async def test_stories_page_lists_only_stories_with_their_lead_and_counts(corpus: Corpus) -> None:
    """No off-topic import, no CREATE VIEW text; the headline is the lead item's (the earliest
    published) and each story says how many sources and languages it has."""
    ds = datasette(corpus)
    page = await ds.client.get(f"/{corpus.name}/story_summary")
    assert "CREATE VIEW" not in page.text
    assert "2 sources, 1 language" in page.text
    assert "[&#34;" not in page.text
    stories = await rows(ds, f"/{corpus.name}/story_summary")
    leads = dict(db_rows(corpus.db, "SELECT story_id, lead_item_id FROM story_leads"))
    for story in stories:
        assert story["lead_item_id"] == leads[story["story_id"]]
        assert story["languages"] >= 1
    drones = next(s for s in stories if s["lead_item_id"] == item_id(corpus, "drones-1"))
    assert drones["headline"] == "Reconnaissance drones moved to Kant air base"


@pytest.mark.parametrize(
    ("query", "args"),
    [
        ("latest_per_topic", ""),
        ("biggest_stories", ""),
        ("items_for_tag", "?tag=Kant"),
        ("feed_health", ""),
        ("item_family", "?item=1"),
        ("topic_feed", "?topic=kant-air-base"),
        ("search_feed", "?q=squadron"),
    ],
)
async def test_canned_queries_show_their_form_without_the_sql(
    corpus: Corpus, query: str, args: str
) -> None:
    ds = datasette(corpus)
    page = await ds.client.get(f"/{corpus.name}/{query}{args}")
    assert page.status_code == 200
    body = page.text.split("<body", 1)[1]
    assert "SELECT" not in body
    assert "<textarea" not in body


async def test_items_for_a_tag_lists_each_item_once(corpus: Corpus) -> None:
    """A tag of two kinds ("kant" is a keyword and a place) still lists each item once."""
    ds = datasette(corpus)
    kinds = db_rows(corpus.db, "SELECT COUNT(DISTINCT kind) FROM tags WHERE name = 'kant'")
    found = await rows(ds, f"/{corpus.name}/items_for_tag?tag=kant")
    ids = [row["item_id"] for row in found]
    assert len(ids) == len(set(ids)) > 0
    expected = db_rows(
        corpus.db,
        "SELECT COUNT(DISTINCT item_tags.item_id) FROM item_tags "
        "JOIN tags ON tags.id = item_tags.tag_id WHERE tags.name = 'kant' COLLATE NOCASE",
    )
    assert len(ids) == expected[0][0]
    assert kinds[0][0] >= 1


async def test_topic_and_search_feeds_are_atom(corpus: Corpus) -> None:
    """Each topic's new stories as Atom, one entry per story; a saved search too; an empty
    or unknown topic still answers with a valid feed."""
    ds = datasette(corpus)
    feed = await ds.client.get(f"/{corpus.name}/topic_feed.atom?topic=kant-air-base")
    assert feed.status_code == 200
    assert feed.headers["content-type"].startswith("application/xml")
    assert "<feed" in feed.text
    assert feed.text.count("Reconnaissance drones moved to Kant air base") == 1
    assert "Drones moved to Kant air base, ministry says" not in feed.text
    assert "https://steppe-herald.example/2026/kant-drones" in feed.text
    assert "Bread prices" not in feed.text
    empty = await ds.client.get(f"/{corpus.name}/topic_feed.atom?topic=no-such-topic")
    assert empty.status_code == 200
    assert "No stories yet for topic no-such-topic" in empty.text
    search = await ds.client.get(f"/{corpus.name}/search_feed.atom?q=squadron+drones")
    assert search.status_code == 200
    assert "Reconnaissance drones moved to Kant air base" in search.text
    odd = await ds.client.get(f"/{corpus.name}/search_feed.atom?q=%22Kant+AND+(")
    assert odd.status_code == 200


def test_metadata_ships_in_the_package_and_db_metadata_links_to_it() -> None:
    from watcher.browse.metadata import PACKAGED_METADATA

    assert METADATA.is_symlink()
    assert METADATA.resolve() == PACKAGED_METADATA.resolve()


def test_metadata_path_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--metadata wins; a configured file that exists next; the default db/metadata.yml
    when it exists in the working folder, else the packaged file."""
    from watcher.browse.metadata import PACKAGED_METADATA, resolve_metadata_path

    monkeypatch.chdir(tmp_path)
    assert resolve_metadata_path(None, "db/metadata.yml") == PACKAGED_METADATA
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / "metadata.yml").write_text("title: mine\n")
    assert resolve_metadata_path(None, "db/metadata.yml") == Path("db/metadata.yml")
    (tmp_path / "other.yml").write_text("title: other\n")
    assert resolve_metadata_path(None, "other.yml") == Path("other.yml")
    assert resolve_metadata_path("x.yml", "other.yml") == Path("x.yml")
    assert resolve_metadata_path(None, "typo.yml") == Path("typo.yml")  # reported, not replaced


def test_serve_from_another_folder_uses_the_packaged_metadata(tmp_path: Path) -> None:
    """Run from a folder with no db/metadata.yml, `watcher serve` serves the packaged metadata."""
    (tmp_path / "corpus").mkdir()
    corpus = build_corpus(tmp_path / "corpus")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    port = free_port()
    args = ["--config", str(corpus.watcher.config), "--db", str(corpus.db)]
    with serving([*args, "serve", "--port", str(port)], cwd=elsewhere, port=port):
        status, body = get(f"http://127.0.0.1:{port}/{corpus.name}/news")
        assert status == 200
        assert 'class="card"' in body


def test_serve_from_another_folder_needs_only_the_database(tmp_path: Path) -> None:
    """With no config to find, `watcher --db PATH serve` serves the database as it is, with
    the default [serve] settings but the port."""
    (tmp_path / "corpus").mkdir()
    corpus = build_corpus(tmp_path / "corpus")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    no_config = {"XDG_CONFIG_HOME": str(tmp_path / "empty"), "WATCHER_CONFIG": ""}
    port = free_port()
    args = ["--db", str(corpus.db), "serve", "--port", str(port)]
    with serving(args, cwd=elsewhere, port=port, env=no_config):
        status, body = get(f"http://127.0.0.1:{port}/{corpus.name}/news")
        assert status == 200
        assert 'class="card"' in body
    assert list(elsewhere.iterdir()) == []


def test_stories_leave_out_an_off_topic_import(corpus: Corpus, tmp_path: Path) -> None:
    """An item that matched no topic is its own story in the store, not on the Stories page."""
    copy = tmp_path / "offtopic.db"
    with sqlite3.connect(corpus.db) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    with sqlite3.connect(copy) as connection:
        cursor = connection.execute(
            "INSERT INTO items (title, first_seen_at, content_hash, source, lang) "
            "VALUES ('Bread prices steady at the Osh bazaar', '2026-12-01T08:00:00Z', 'x', "
            "'Odd Blog', 'en')"
        )
        connection.execute("UPDATE items SET story_id = id WHERE id = ?", (cursor.lastrowid,))
    ds = datasette_for(ServeConfig(), copy, METADATA)
    found = asyncio.run(ds.client.get("/offtopic/story_summary.json?_shape=array"))
    assert found.status_code == 200
    assert "Bread prices" not in found.text
    assert "Reconnaissance drones" in found.text


def undated_import(directory: Path) -> Path:
    """A database holding one imported document without a date; returns its path."""
    folder = directory / "saved"
    folder.mkdir()
    (folder / "note.txt").write_text(
        "Hangar works at the Kant air base\n\nWorks on a hangar at the Kant air base in "
        "Kyrgyzstan began, officials in Bishkek said.\n",
        encoding="utf-8",
    )
    watcher = Watcher(directory, write_config(directory))
    assert watcher("corpus", "import", str(folder)).exit_code == 0
    return watcher.db


async def test_front_page_shows_an_undated_import_as_undated(tmp_path: Path) -> None:
    """An imported document without a date is not dated by the moment it was imported."""
    ds = datasette_for(ServeConfig(), undated_import(tmp_path), METADATA)
    text = (await ds.client.get("/")).text
    assert "Hangar works at the Kant air base" in text
    assert "imported document</strong> · undated" in text


async def test_biggest_stories_leave_out_undated_imports(tmp_path: Path) -> None:
    db = undated_import(tmp_path)
    ds = datasette_for(ServeConfig(), db, METADATA)
    assert await rows(ds, f"/{db.stem}/biggest_stories") == []


async def test_a_merged_story_id_leads_to_the_story_it_is_part_of(tmp_path: Path) -> None:
    """A link kept from before a merge (or a digest's) still finds the story's items."""
    folder = tmp_path / "saved"
    folder.mkdir()
    for name, title in (("a.txt", "Radar for Kant"), ("b.txt", "Drills at Kant")):
        (folder / name).write_text(
            f"{title} air base\\n\\n{title} air base in Kyrgyzstan, officials said.\\n",
            encoding="utf-8",
        )
    watcher = Watcher(tmp_path, write_config(tmp_path))
    assert watcher("corpus", "import", str(folder)).exit_code == 0
    (first, second) = (row[0] for row in db_rows(watcher.db, "SELECT id FROM items ORDER BY id"))
    with sqlite3.connect(watcher.db) as connection:
        connection.execute("UPDATE items SET story_id = ? WHERE id = ?", [first, second])
    ds = datasette_for(ServeConfig(), watcher.db, METADATA)
    news = f"/{watcher.db.stem}/news"
    moved = await ds.client.get(f"{news}?story_id={second}&_sort_desc=published_at")
    assert moved.status_code == 302
    assert moved.headers["location"] == f"{news}?story_id={first}&_sort_desc=published_at"
    assert (await ds.client.get(f"{news}?story_id={first}")).status_code == 200
