"""``watcher digest --dry-run``: previews from the stored corpus that send and mark nothing."""

from __future__ import annotations

import sqlite3
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from tests.digest_support import (
    DIGEST_TOPICS,
    FLOOD_STORY,
    PORT_STORIES,
    digest_toml,
    labelled,
    parts,
    smtp_toml,
    write_jsonl,
)


def read_eml(path: Path) -> EmailMessage:
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def count(db: Path, table: str) -> int:
    with sqlite3.connect(db) as connection:
        return int(connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def imported(make_watcher, extra: str = ""):  # type: ignore[no-untyped-def]
    watcher = make_watcher(extra=DIGEST_TOPICS + extra)
    path = write_jsonl(watcher.directory / "c.jsonl", labelled({**FLOOD_STORY, **PORT_STORIES}))
    assert watcher("corpus", "import", str(path)).exit_code == 0
    return watcher


def test_without_a_digest_configured_dry_run_out_builds_every_topic(make_watcher) -> None:
    """No [[digests]]: --dry-run --out writes one digest of every topic from all that is stored."""
    watcher = imported(make_watcher)
    out = watcher.directory / "preview.eml"
    result = watcher("digest", "--dry-run", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output
    assert "not sent" in result.output

    message = read_eml(out)
    assert "3 stories, 5 items" in message["Subject"]
    assert message["Date"]
    assert message["Message-ID"]
    text, html = parts(message)
    for body in (text, html):
        assert "Floods on the Tessel" in body
        assert "Port of Velmar" in body
        assert "Hundreds evacuated as River Tessel floods Brackenford" in body
        assert "Velmar dockworkers begin 48-hour strike" in body
    assert "Everything stored until" in text
    assert count(watcher.db, "digests") == 0
    assert count(watcher.db, "digest_items") == 0


def test_topic_limits_the_preview(make_watcher) -> None:
    """--topic keeps only that topic's section and stories."""
    watcher = imported(make_watcher)
    out = watcher.directory / "port.eml"
    result = watcher("digest", "--dry-run", "--topic", "port", "--out", str(out))
    assert result.exit_code == 0, result.output
    text, html = parts(read_eml(out))
    assert "Velmar dockworkers" in text
    assert "Brackenford" not in text
    assert "Floods on the Tessel" not in html


def test_dry_run_prints_the_text_part(make_watcher) -> None:
    """--dry-run without --out prints the plain-text digest to stdout."""
    watcher = imported(make_watcher)
    result = watcher("digest", "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("watcher everything: 3 stories, 5 items")
    assert "* Hundreds evacuated as River Tessel floods Brackenford" in result.output
    assert "Also reported by Northern Press, Valley Radio." in result.output


def test_dry_run_of_a_configured_digest_marks_nothing(make_watcher) -> None:
    """Previewing a configured digest twice shows the same items and records nothing."""
    watcher = imported(make_watcher, digest_toml() + smtp_toml(1))
    first = watcher("digest", "--name", "daily", "--dry-run")
    second = watcher("digest", "--name", "daily", "--dry-run")
    assert first.exit_code == 0, first.output
    assert "watcher daily: 3 stories, 5 items" in first.output
    assert "New since" in first.output
    assert second.output.splitlines()[4:] == first.output.splitlines()[4:]
    assert count(watcher.db, "digests") == 0


def test_unknown_names_and_topics_are_one_line_errors(make_watcher) -> None:
    """An unknown digest or topic, or sending with none configured, is a one-line error."""
    watcher = imported(make_watcher)
    unknown = watcher("digest", "--name", "weekly", "--dry-run")
    assert unknown.exit_code == 1
    assert "no digest named 'weekly'" in unknown.output
    topic = watcher("digest", "--dry-run", "--topic", "sports")
    assert topic.exit_code == 1
    assert "unknown topic 'sports'" in topic.output
    send = watcher("digest")
    assert send.exit_code == 1
    assert "no digest is configured" in send.output
    for result in (unknown, topic, send):
        assert "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1


def test_sending_without_smtp_is_a_recorded_failure(make_watcher) -> None:
    """A digest configured without [smtp] fails with a clear message and marks nothing."""
    watcher = imported(make_watcher, digest_toml())
    result = watcher("digest")
    assert result.exit_code == 1
    assert "no [smtp] section" in result.output
    assert count(watcher.db, "digest_items") == 0


def test_several_digests_need_a_name_to_write_one_file(make_watcher) -> None:
    """With two digests configured, --out asks which one to write."""
    watcher = imported(make_watcher, digest_toml("morning") + digest_toml("evening"))
    result = watcher("digest", "--out", str(watcher.directory / "x.eml"))
    assert result.exit_code == 1
    assert "choose the one to write with --name" in result.output
    named = watcher("digest", "--name", "evening", "--out", str(watcher.directory / "x.eml"))
    assert named.exit_code == 0, named.output
    assert "watcher evening:" in named.output


def test_a_digest_lists_its_topics_in_its_own_order(make_watcher) -> None:
    """topics = ["port", "floods"] puts the port section first, whatever the config's order."""
    watcher = imported(make_watcher, digest_toml(topics='["port", "floods"]'))
    result = watcher("digest", "--name", "daily", "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.output.index("Port of Velmar") < result.output.index("Floods on the Tessel")


def test_an_unwritable_out_file_is_a_one_line_error(make_watcher) -> None:
    """--out into a folder that does not exist says so without a traceback."""
    watcher = imported(make_watcher)
    result = watcher("digest", "--dry-run", "--out", str(watcher.directory / "no" / "x.eml"))
    assert result.exit_code == 1
    assert "cannot write" in result.output
    assert "Traceback" not in result.output
