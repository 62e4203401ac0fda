"""What the commands print: query errors that say what is wrong, warnings for lower-case
operators, the README's claims about `feeds list` and `-v`, and stories of undated
imports."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from tests.conftest import Watcher, kant_story, rss, write_config


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("Kant AND", "ends too early"),
        ("(Kant", "parentheses do not pair up"),
        ("", "the query is empty"),
        ("*", "a star ends a word"),
        ("NOT Kant", "needs a term on each side"),
        ('"air base', "double quote is not closed"),
        ("Issyk-Kul", 'quote hyphenated words, e.g. "Issyk-Kul"'),
    ],
)
def test_a_bad_search_says_what_is_wrong_and_where_to_read(
    make_watcher, query: str, says: str
) -> None:
    result = make_watcher()("search", query)
    assert result.exit_code == 1
    assert says in result.output
    assert "docs/queries.md" in result.output
    assert "fts5" not in result.output


def test_lower_case_operators_are_warned_about(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    config.write_text(
        config.read_text(encoding="utf-8")
        + '\n[[topics]]\nname = "loose"\ntitle = "Loose"\nquery = "Kant and Bishkek"\n',
        encoding="utf-8",
    )
    watcher = Watcher(tmp_path, config)
    result = watcher("search", "kant or bishkek")
    assert result.exit_code == 0
    assert "the search: 'or' in lower case is searched as a word; write OR" in result.output
    assert "topic 'loose': 'and' in lower case" in result.output
    assert "'or'" not in watcher("search", '"kant or bishkek"').output.split("topic")[0]


def test_feeds_list_shows_title_and_health(httpserver: HTTPServer, tmp_path: Path) -> None:
    """README: `feeds list` shows feeds with origin, health and next due time."""
    httpserver.expect_request("/f.xml").respond_with_data(
        rss([kant_story(1)], title="Valley Times"), content_type="application/rss+xml"
    )
    watcher = Watcher(
        tmp_path, write_config(tmp_path, [httpserver.url_for("/f.xml"), "http://127.0.0.1:9/x"])
    )
    assert watcher("poll", "--all").exit_code == 0
    listing = watcher("feeds", "list").output
    header = listing.splitlines()[1]
    for column in ("title", "url", "origin", "state", "errors", "next due"):
        assert column in header
    ok_line = next(line for line in listing.splitlines() if "/f.xml" in line)
    assert "Valley Times" in ok_line
    assert " ok " in ok_line
    assert "failing" in next(line for line in listing.splitlines() if ":9/x" in line)


def test_verbose_logs_one_line_per_feed_refresh(httpserver: HTTPServer, tmp_path: Path) -> None:
    """README: `-v` logs one line per feed refresh (not the HTTP client's lines too)."""
    for number in range(3):
        httpserver.expect_request(f"/f{number}.xml").respond_with_data(
            rss([kant_story(number)]), content_type="application/rss+xml"
        )
    urls = [httpserver.url_for(f"/f{number}.xml") for number in range(3)]
    config = write_config(tmp_path, urls)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "watcher",
            "--config",
            str(config),
            "--db",
            str(tmp_path / "w.db"),
            "-v",
            "poll",
            "--all",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    refresh_lines = [line for line in result.stderr.splitlines() if "feed=" in line]
    assert len(refresh_lines) == 3, result.stderr
    assert "HTTP Request" not in result.stderr


def test_undated_imports_are_shown_undated_and_last(tmp_path: Path) -> None:
    folder = tmp_path / "saved"
    folder.mkdir()
    (folder / "a.txt").write_text(
        "Radar for the Kant air base\n\nA radar arrives at the Kant air base in Kyrgyzstan.\n",
        encoding="utf-8",
    )
    (folder / "b.jsonl").write_text(
        '{"title": "Drills at the Kant air base", "text": "Drills at the Kant air base in '
        'Kyrgyzstan ended on Friday with a parade.", "published": "2026-11-02T10:00:00Z"}\n',
        encoding="utf-8",
    )
    watcher = Watcher(tmp_path, write_config(tmp_path))
    assert watcher("corpus", "import", str(folder)).exit_code == 0
    lines = [line for line in watcher("stories").output.splitlines() if re.search(r"\d", line)]
    assert "2026-11-02" in lines[0]
    assert "undated" in lines[1]
    assert "Radar" in lines[1]


def test_serve_on_a_busy_port_says_so_before_announcing(tmp_path: Path) -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        watcher = Watcher(tmp_path, write_config(tmp_path))
        result = watcher("serve", "--port", str(port))
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.output
    assert "at http://" not in result.output
