"""``corpus import``: the seed corpus, JSONL, Markdown, HTML and text files, and bad input."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import SEEDS
from watcher.corpus import document_from_html, document_from_text

KANT_TEXT = (
    "Engineers finished a new hangar at the Kant airfield outside Bishkek in Kyrgyzstan "
    "this week, the base command said, and two transport aircraft moved in."
)


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as connection:
        return connection.execute(sql).fetchall()


def jsonl(path: Path, lines: list[object]) -> Path:
    path.write_text(
        "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n",
        encoding="utf-8",
    )
    return path


@pytest.mark.skipif(not SEEDS.is_dir(), reason=f"seed corpus not found at {SEEDS}")
def test_seed_corpus_imports_five_titled_dated_items_once(make_watcher) -> None:
    """The five seeds become five titled items with their dates and URL; again adds nothing."""
    watcher = make_watcher()
    result = watcher("corpus", "import", str(SEEDS))
    assert result.exit_code == 0, result.output
    assert "5 documents: 5 new items" in result.output

    items = rows(watcher.db, "SELECT title, published_at, url, content FROM items ORDER BY id")
    assert len(items) == 5
    for title, _published, _url, content in items:
        assert isinstance(title, str)
        assert 10 <= len(title) <= 200
        assert not title.lower().startswith(("date", "bishkek,"))
        assert content
    published = [str(item[1] or "")[:10] for item in items]
    assert published[2] == "2023-10-12", "002: 12.10.2023 is day first"
    assert published[3] == "2023-10-12", "003: date prefix before the dateline"
    assert published[4] == "2023-10-11", "004: Markdown date line"
    assert str(items[4][2]).startswith("https://www.themoscowtimes.com/2023/10/11/")
    assert "http" not in str(items[4][3]).splitlines()[-1], "the source URL is not body text"
    assert rows(watcher.db, "SELECT count(*) FROM items WHERE external_id IS NOT NULL") == [(0,)]

    again = watcher("corpus", "import", str(SEEDS))
    assert again.exit_code == 0, again.output
    assert "5 documents: 0 new items, 5 already in the corpus" in again.output
    assert rows(watcher.db, "SELECT count(*) FROM items") == [(5,)]


def test_jsonl_stores_good_lines_and_reports_each_bad_line(make_watcher, tmp_path: Path) -> None:
    """Good JSONL lines are stored with external_id; each bad one is named file:line; exit 1."""
    path = jsonl(
        tmp_path / "export.jsonl",
        [
            {
                "id": "rec-1",
                "url": "https://paper.example/hangar",
                "title": "New hangar at Kant",
                "text": KANT_TEXT,
                "published": "2024-03-05T10:00:00+06:00",
                "source": "Paper",
                "lang": "en",
            },
            "{this is not json",
            {"id": "rec-3", "url": "https://paper.example/empty"},
            '["a", "list"]',
            {"id": "rec-5", "title": "Undated", "published": "sometime soon"},
            {"id": "rec-6", "title": "Bad link", "url": "ftp://paper.example/x"},
            {"id": 7, "text": "<p>Only a body: a runway in <b>Kant</b> was resurfaced.</p>"},
            "",
            {"title": "Short note on Osh"},
        ],
    )
    watcher = make_watcher()
    result = watcher("corpus", "import", str(path))
    assert result.exit_code == 1
    assert "9 documents" not in result.output  # the blank line is not a document
    assert "8 documents: 3 new items, 0 already in the corpus, 5 errors" in result.output
    for line, reason in [
        (2, "not valid JSON"),
        (3, "needs a non-empty 'title' or 'text'"),
        (4, "expected a JSON object"),
        (5, "'published' is not a date"),
        (6, "'url' is not an http(s) URL"),
    ]:
        assert f"error: {path}:{line}: {reason}" in result.output

    stored = rows(
        watcher.db,
        "SELECT external_id, title, url, published_at, source, lang, content FROM items ORDER BY id",
    )
    assert stored[0] == (
        "rec-1",
        "New hangar at Kant",
        "https://paper.example/hangar",
        "2024-03-05T04:00:00Z",
        "Paper",
        "en",
        KANT_TEXT,
    )
    assert stored[1][0] == "7"
    assert stored[1][1].startswith("Only a body")
    assert stored[1][6] == "Only a body: a runway in Kant was resurfaced."
    assert stored[2][:2] == (None, "Short note on Osh")


def test_jsonl_reimport_adds_nothing(make_watcher, tmp_path: Path) -> None:
    """Importing the same export twice keeps one copy of each record."""
    path = jsonl(
        tmp_path / "a.jsonl",
        [{"id": "x1", "title": "Hangar", "text": KANT_TEXT}, {"id": "x2", "title": "Only title"}],
    )
    watcher = make_watcher()
    assert watcher("corpus", "import", str(path)).exit_code == 0
    result = watcher("corpus", "import", str(path))
    assert "0 new items, 2 already in the corpus" in result.output
    assert rows(watcher.db, "SELECT count(*) FROM items") == [(2,)]


def test_markdown_file_gives_title_date_url_and_plain_text(make_watcher, tmp_path: Path) -> None:
    """A saved Markdown page: heading is the title, date line the date, trailing URL the link."""
    path = tmp_path / "saved.md"
    path.write_text(
        "\n# Runway lights replaced at Kant airfield\n\n"
        "*By Staff Reporter*\n\n"
        "March 7, 2024\n\n"
        "Engineers replaced the **runway lights** at the Kant airfield outside Bishkek.\n\n"
        "The job took [three weeks](https://other.example/x) to finish.\n\n"
        "Original url:\n\n<https://mag.example/2024/03/07/kant-lights>\n",
        encoding="utf-8",
    )
    watcher = make_watcher()
    result = watcher("corpus", "import", str(path))
    assert result.exit_code == 0, result.output
    ((title, published, url, source, content),) = rows(
        watcher.db, "SELECT title, published_at, url, source, content FROM items"
    )
    assert title == "Runway lights replaced at Kant airfield"
    assert published == "2024-03-07T00:00:00Z"
    assert url == "https://mag.example/2024/03/07/kant-lights"
    assert source == "mag.example"
    assert "runway lights at the Kant airfield" in content
    assert "three weeks to finish" in content
    assert "**" not in content
    assert "](" not in content
    assert "mag.example" not in content


def test_html_page_uses_og_title_published_time_and_canonical(make_watcher, tmp_path: Path) -> None:
    """A saved web page: og:title, article:published_time, canonical link, article text only."""
    path = tmp_path / "page.html"
    path.write_text(
        "<!DOCTYPE html><html><head><title>Site | A radar story</title>"
        '<meta property="og:title" content="Radar unit moves to Kant">'
        '<meta property="article:published_time" content="2024-04-02T09:30:00+06:00">'
        '<meta property="og:site_name" content="Valley Times">'
        '<link rel="canonical" href="https://www.valley.example/news/radar/?utm_source=x">'
        "</head><body><nav>Home | About</nav><article><h1>Radar unit moves to Kant</h1>"
        "<p>A radar unit was moved to the Kant base in Kyrgyzstan.</p>"
        "<script>track()</script><p>Second paragraph &amp; more.</p></article>"
        "<footer>Copyright</footer></body></html>",
        encoding="utf-8",
    )
    watcher = make_watcher()
    result = watcher("corpus", "import", str(path))
    assert result.exit_code == 0, result.output
    ((title, published, url, canonical, source, content),) = rows(
        watcher.db, "SELECT title, published_at, url, canonical_url, source, content FROM items"
    )
    assert title == "Radar unit moves to Kant"
    assert published == "2024-04-02T03:30:00Z"
    assert url == "https://www.valley.example/news/radar/?utm_source=x"
    assert canonical == "https://valley.example/news/radar"
    assert source == "Valley Times"
    assert content == (
        "A radar unit was moved to the Kant base in Kyrgyzstan.\n\nSecond paragraph & more."
    )


def test_text_file_with_dateline_and_date_prefix(make_watcher, tmp_path: Path) -> None:
    """A wire copy opening 'date … PLACE, Month D. /Agency/.' is titled by its first sentence."""
    path = tmp_path / "wire.txt"
    path.write_text(
        " date 2024-04-03 OSH, April 3. /Valley Wire/. The runway at the Kant airfield "
        "reopened on Wednesday after repairs that lasted a month, officials said. "
        "Flights resume next week.\n\nA second paragraph about Kyrgyzstan.\n",
        encoding="utf-8",
    )
    watcher = make_watcher()
    assert watcher("corpus", "import", str(path)).exit_code == 0
    ((title, published, source),) = rows(
        watcher.db, "SELECT title, published_at, source FROM items"
    )
    assert title == (
        "The runway at the Kant airfield reopened on Wednesday after repairs that lasted a month, "
        "officials said."
    )
    assert published == "2024-04-03T00:00:00Z"
    assert source == "Valley Wire"


def test_text_file_with_repeated_title_and_day_first_date(make_watcher, tmp_path: Path) -> None:
    """A title saved twice is kept once; '09:15 GMT 03.04.2024' is 3 April, day first."""
    path = tmp_path / "saved.txt"
    path.write_text(
        "Kant runway reopens\nKant runway reopens\n\n09:15 GMT 03.04.2024\n" + KANT_TEXT + "\n",
        encoding="utf-8",
    )
    watcher = make_watcher()
    assert watcher("corpus", "import", str(path)).exit_code == 0
    ((title, published, content),) = rows(
        watcher.db, "SELECT title, published_at, content FROM items"
    )
    assert title == "Kant runway reopens"
    assert published == "2024-04-03T09:15:00Z"
    assert content == KANT_TEXT


def test_unsupported_and_non_utf8_files_are_reported_and_the_rest_imported(
    make_watcher, tmp_path: Path
) -> None:
    """A .pdf and a cp1251 text are named as errors; the good file still goes in; exit 1."""
    good = tmp_path / "good.txt"
    good.write_text("Kant hangar\n\n" + KANT_TEXT + "\n", encoding="utf-8")
    pdf = tmp_path / "scan.pdf"
    pdf.write_bytes(b"%PDF-1.4 binary")
    legacy = tmp_path / "legacy.txt"
    legacy.write_bytes("Авиабаза Кант\n\nТекст статьи.\n".encode("cp1251"))
    empty = tmp_path / "empty.txt"
    empty.write_text("\n \n", encoding="utf-8")

    watcher = make_watcher()
    result = watcher("corpus", "import", str(good), str(pdf), str(legacy), str(empty))
    assert result.exit_code == 1
    assert f"error: {pdf}: unsupported file type .pdf" in result.output
    assert f"error: {legacy}: not UTF-8 text" in result.output
    assert f"error: {empty}: no title and no text" in result.output
    assert "4 documents: 1 new items, 0 already in the corpus, 3 errors" in result.output
    assert rows(watcher.db, "SELECT title FROM items") == [("Kant hangar",)]


def test_folder_import_takes_supported_files_recursively(make_watcher, tmp_path: Path) -> None:
    """A folder is walked; files of unknown types inside it are skipped quietly."""
    folder = tmp_path / "saved"
    (folder / "deeper").mkdir(parents=True)
    (folder / "one.txt").write_text("Hangar one\n\n" + KANT_TEXT, encoding="utf-8")
    (folder / "deeper" / "two.md").write_text("# Hangar two\n\nOther words.", encoding="utf-8")
    (folder / "notes.docx").write_bytes(b"PK\x03\x04")
    watcher = make_watcher()
    result = watcher("corpus", "import", str(folder))
    assert result.exit_code == 0, result.output
    assert sorted(rows(watcher.db, "SELECT title FROM items")) == [
        ("Hangar one",),
        ("Hangar two",),
    ]


def test_off_topic_documents_are_stored_without_topics(make_watcher, tmp_path: Path) -> None:
    """The corpus is the user's: a document matching no topic is still stored."""
    path = jsonl(
        tmp_path / "mixed.jsonl",
        [
            {"title": "Hangar at Kant", "text": KANT_TEXT},
            {"title": "Football results", "text": "The home side won two to one on Sunday."},
        ],
    )
    watcher = make_watcher()
    assert watcher("corpus", "import", str(path)).exit_code == 0
    assert rows(
        watcher.db,
        "SELECT items.title, item_topics.topic FROM items "
        "LEFT JOIN item_topics ON item_topics.item_id = items.id ORDER BY items.id",
    ) == [("Hangar at Kant", "kant-air-base"), ("Football results", None)]


def test_missing_path_is_a_usage_error(make_watcher, tmp_path: Path) -> None:
    """A path that does not exist is refused before anything is imported."""
    result = make_watcher()("corpus", "import", str(tmp_path / "nope.txt"))
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_text_reader_takes_labelled_and_leading_date_lines() -> None:
    """'Published: …' in the header and a date above the title both set the date."""
    labelled = document_from_text(
        "# Heading\n\nPublished: 2024-05-06\n\nBody **bold**\n", markdown_source=True
    )
    assert labelled.title == "Heading"
    assert labelled.published is not None
    assert labelled.published.date().isoformat() == "2024-05-06"
    assert labelled.text == "Body bold"
    leading = document_from_text("March 7, 2024\n\nKant runway reopens\n\nBody text.\n")
    assert leading.title == "Kant runway reopens"
    assert leading.published is not None
    assert leading.published.date().isoformat() == "2024-03-07"
    assert leading.text == "Body text."
    plain = document_from_text("Date of the vote moved\n\nBody.\n")
    assert plain.title == "Date of the vote moved"
    assert plain.published is None


def test_text_reader_takes_a_labelled_source_url() -> None:
    """'Source: URL' anywhere sets the link and leaves the body."""
    document = document_from_text("Title\n\nSource: https://site.example/x\n\nBody.\n")
    assert document.url == "https://site.example/x"
    assert document.source == "site.example"
    assert document.text == "Body."


def test_html_reader_falls_back_to_h1_and_time_element() -> None:
    """Without meta tags the heading and a <time datetime> are used."""
    document = document_from_html(
        "<html><body><h1>Plain page</h1><time datetime='2024-01-02T03:04:05Z'>2 Jan</time>"
        "<p>Words.</p></body></html>"
    )
    assert document.title == "Plain page"
    assert document.published is not None
    assert document.published.isoformat() == "2024-01-02T03:04:05+00:00"
    assert document.url is None


def test_jsonl_record_with_unicode_line_separators_stays_one_record(
    make_watcher, tmp_path: Path
) -> None:
    """U+2028 and U+0085 inside a JSON string do not split the line; line numbers stay right."""
    path = tmp_path / "raw.jsonl"
    record = {"id": "sep", "title": "Separators", "text": "First part\u2028second\u0085third."}
    path.write_text(
        json.dumps(record, ensure_ascii=False) + "\r\n" + "{broken\r\n", encoding="utf-8"
    )
    watcher = make_watcher()
    result = watcher("corpus", "import", str(path))
    assert "2 documents: 1 new items, 0 already in the corpus, 1 errors" in result.output
    assert f"error: {path}:2: not valid JSON" in result.output
    assert rows(watcher.db, "SELECT external_id, title FROM items") == [("sep", "Separators")]


def test_jsonl_stated_language_beats_detection(make_watcher, tmp_path: Path) -> None:
    """A record's own 'lang' is kept even when the text looks like another language."""
    path = jsonl(
        tmp_path / "lang.jsonl",
        [
            {"id": "a", "title": "Stated", "text": KANT_TEXT, "lang": "KY-kg"},
            {"id": "b", "title": "Detected", "text": KANT_TEXT + " Again."},
        ],
    )
    watcher = make_watcher()
    assert watcher("corpus", "import", str(path)).exit_code == 0
    assert rows(watcher.db, "SELECT external_id, lang FROM items ORDER BY id") == [
        ("a", "ky"),
        ("b", "en"),
    ]


def test_html_page_in_its_declared_legacy_charset(make_watcher, tmp_path: Path) -> None:
    """A page saved in windows-1251 with <meta charset> is read in that charset."""
    path = tmp_path / "ru.html"
    path.write_bytes(
        (
            '<html><head><meta http-equiv="Content-Type" content="text/html; charset=windows-1251">'
            "<title>Авиабаза Кант</title></head><body><h1>Авиабаза Кант</h1>"
            "<p>На аэродроме Кант под Бишкеком построили новый ангар для самолётов.</p>"
            "</body></html>"
        ).encode("cp1251")
    )
    watcher = make_watcher()
    result = watcher("corpus", "import", str(path))
    assert result.exit_code == 0, result.output
    assert rows(watcher.db, "SELECT title, lang FROM items") == [("Авиабаза Кант", "ru")]


def test_utf16_text_with_a_bom_is_read(make_watcher, tmp_path: Path) -> None:
    """Windows editors' UTF-16 (with its byte-order mark) is decoded, not refused."""
    path = tmp_path / "notepad.txt"
    path.write_bytes(("Kant hangar\r\n\r\n" + KANT_TEXT).encode("utf-16"))
    watcher = make_watcher()
    assert watcher("corpus", "import", str(path)).exit_code == 0
    assert rows(watcher.db, "SELECT title FROM items") == [("Kant hangar",)]


def test_underlined_heading_is_the_title_without_its_underline() -> None:
    """A Markdown 'setext' heading (a line of ===) gives the title and leaves no rule behind."""
    document = document_from_text(
        "Kant hangar\n===========\n\nBody *text*.\n", markdown_source=True
    )
    assert document.title == "Kant hangar"
    assert document.text == "Body text."
