"""Digests sent to a real SMTP server (aiosmtpd on 127.0.0.1) through the real CLI."""

from __future__ import annotations

import re
import shutil
import sqlite3
import ssl
import subprocess
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from tests.digest_support import (
    DIGEST_TOPICS,
    FLOOD_STORY,
    PORT_STORIES,
    MailSink,
    digest_toml,
    free_port,
    labelled,
    parts,
    smtp_toml,
    write_jsonl,
)


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as connection:
        return connection.execute(sql).fetchall()


@pytest.fixture
def smtp_server() -> Iterator[tuple[MailSink, int]]:
    sink = MailSink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


@pytest.fixture
def mailer(make_watcher, smtp_server, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A watcher whose config has the test topics, one digest and the local SMTP server."""
    sink, port = smtp_server

    def factory(digest: str = "", smtp: str = ""):  # type: ignore[no-untyped-def]
        extra = DIGEST_TOPICS + (digest or digest_toml()) + (smtp or smtp_toml(port))
        return make_watcher(extra=extra), sink

    return factory


def import_records(watcher, records, name: str = "batch.jsonl") -> None:  # type: ignore[no-untyped-def]
    path = write_jsonl(watcher.directory / name, records)
    result = watcher("corpus", "import", str(path))
    assert result.exit_code == 0, result.output


def test_digest_arrives_with_both_parts_and_one_entry_per_story(mailer) -> None:
    """A sent digest is multipart/alternative, dated, identified, and lists each story once."""
    watcher, sink = mailer()
    import_records(watcher, labelled({**FLOOD_STORY, **PORT_STORIES}))

    result = watcher("digest", "--name", "daily")
    assert result.exit_code == 0, result.output
    assert "digest daily: sent 3 stories, 5 items" in result.output

    assert len(sink.received) == 1
    envelope, message = sink.received[0]
    assert sorted(envelope.rcpt_tos) == ["analyst@newsroom.example", "second@newsroom.example"]
    assert message["From"] == "watcher@newsroom.example"
    assert "3 stories, 5 items" in message["Subject"]
    assert parsedate_to_datetime(message["Date"]).tzinfo is not None
    assert re.fullmatch(r"<[^<>@\s]+@newsroom\.example>", message["Message-ID"])
    text, html = parts(message)

    for body in (text, html):
        assert body.count("Hundreds evacuated as River Tessel floods Brackenford") == 1
        # the wire copy and the later write-up are folded into the first report's entry
        assert "River Tessel bursts its banks" not in body
        assert "Brackenford counts the cost" not in body
        assert "Velmar dockworkers begin 48-hour strike" in body
        assert "Port of Velmar secures funding" in body
    assert re.search(r"Also reported by .*Northern Press.*Valley Radio", html)
    assert "Also reported by Northern Press, Valley Radio." in text
    assert 'href="https://tesselcourier.example/brackenford-flood-orig"' in html
    # the story with three outlets leads its topic, tags are shown
    assert text.index("Floods on the Tessel") < text.index("Hundreds evacuated")
    assert "brackenford" in text.split("Hundreds evacuated", 1)[1].split("\n*", 1)[0]

    recorded = rows(watcher.db, "SELECT name, status, stories, items, message_id FROM digests")
    assert recorded == [("daily", "sent", 3, 5, message["Message-ID"])]
    assert rows(watcher.db, "SELECT count(*) FROM digest_items") == [(5,)]


def test_hostile_titles_arrive_escaped_and_on_one_line(mailer) -> None:
    """A <script> title is escaped in HTML, a title with CR/LF cannot add a header or a line."""
    watcher, sink = mailer(digest=digest_toml(subject="'Port: {{ headline }}'", topics='["port"]'))
    import_records(
        watcher,
        [
            {
                "id": "h1",
                "title": "Velmar <script>alert('x')</script> board & crane",
                "text": "The Velmar harbour board met to discuss a new crane for the quay.",
                "source": "Quay <b>Post</b>",
                "url": "https://quay.example/h1",
                "published": "2024-05-02T10:00:00Z",
            },
            {
                "id": "h2",
                "title": "Velmar ferry\r\nBcc: victim@elsewhere.example\r\n\r\n<b>body</b>",
                "text": "A plan for a night ferry from Velmar to the islands was published.",
                "source": "Island\nNews",
                "url": "https://island.example/h2",
                "published": "2024-05-03T10:00:00Z",
            },
        ],
    )
    result = watcher("digest")
    assert result.exit_code == 0, result.output

    envelope, message = sink.received[0]
    assert sorted(envelope.rcpt_tos) == ["analyst@newsroom.example", "second@newsroom.example"]
    assert message["Bcc"] is None
    subject = message["Subject"]
    assert subject == "Port: Velmar ferry Bcc: victim@elsewhere.example <b>body</b>"
    raw_headers = bytes(envelope.original_content or b"").split(b"\r\n\r\n", 1)[0]
    assert b"\nBcc:" not in raw_headers
    text, html = parts(message)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; board &amp; crane" in html
    assert "<b>" not in html
    assert "Quay &lt;b&gt;Post&lt;/b&gt;" in html
    assert "* Velmar ferry Bcc: victim@elsewhere.example <b>body</b>\n" in text
    assert "Island News" in text
    assert "\nBcc:" not in text


def test_refused_message_marks_nothing_and_the_next_run_sends_the_same_items(mailer) -> None:
    """A 550 from the server fails the run (exit 1) and the next run delivers those items."""
    watcher, sink = mailer()
    import_records(watcher, labelled(PORT_STORIES))
    sink.refuse = "550 5.7.1 Message rejected by policy"

    failed = watcher("digest", "--name", "daily")
    assert failed.exit_code == 1
    assert "digest daily: failed: 127.0.0.1:" in failed.output
    assert "550" in failed.output
    assert "rejected by policy" in failed.output
    assert sink.received == []
    assert rows(watcher.db, "SELECT status, items FROM digests") == [("failed", 2)]
    assert rows(watcher.db, "SELECT error FROM digests")[0][0]
    assert rows(watcher.db, "SELECT count(*) FROM digest_items") == [(0,)]

    sink.refuse = None
    again = watcher("digest", "--name", "daily")
    assert again.exit_code == 0, again.output
    assert "sent 2 stories, 2 items" in again.output
    text, _ = parts(sink.messages[0])
    assert "Velmar dockworkers begin 48-hour strike" in text
    assert "Port of Velmar secures funding" in text
    assert rows(watcher.db, "SELECT status FROM digests ORDER BY id") == [("failed",), ("sent",)]


def test_unreachable_server_is_a_recorded_failure(mailer) -> None:
    """No server on the port: one-line failure, recorded, nothing marked."""
    watcher, _sink = mailer(smtp=smtp_toml(free_port()))
    import_records(watcher, labelled(PORT_STORIES))
    result = watcher("digest")
    assert result.exit_code == 1
    assert "cannot connect" in result.output
    assert "Traceback" not in result.output
    assert rows(watcher.db, "SELECT status FROM digests") == [("failed",)]
    assert rows(watcher.db, "SELECT count(*) FROM digest_items") == [(0,)]


def test_two_runs_in_a_row_send_nothing_twice(mailer) -> None:
    """The second run finds nothing new and sends nothing; a later one sends only new items."""
    watcher, sink = mailer()
    import_records(watcher, labelled(FLOOD_STORY))
    assert watcher("digest").exit_code == 0
    second = watcher("digest")
    assert second.exit_code == 0, second.output
    assert "digest daily: nothing new, not sent" in second.output
    assert len(sink.received) == 1

    import_records(watcher, labelled(PORT_STORIES), name="later.jsonl")
    third = watcher("digest")
    assert third.exit_code == 0, third.output
    assert "sent 2 stories, 2 items" in third.output
    assert len(sink.received) == 2
    text, html = parts(sink.messages[1])
    assert "Velmar dockworkers" in text
    assert "Brackenford" not in text
    assert "Brackenford" not in html
    sent = rows(
        watcher.db,
        "SELECT item_id, count(*) FROM digest_items JOIN digests ON digests.id = digest_id "
        "WHERE status = 'sent' GROUP BY item_id HAVING count(*) > 1",
    )
    assert sent == []


def test_send_empty_sends_a_digest_with_no_stories(mailer) -> None:
    """With send_empty = true a digest goes out even when nothing is new."""
    watcher, sink = mailer(digest=digest_toml(send_empty="true"))
    result = watcher("digest")
    assert result.exit_code == 0, result.output
    assert "sent 0 stories, 0 items" in result.output
    text, _ = parts(sink.messages[0])
    assert "Nothing new." in text
    assert "0 stories, 0 items" in sink.messages[0]["Subject"]


def test_a_topic_limited_send_leaves_the_other_topics_due(mailer) -> None:
    """`--topic` sends one topic; the next full run still has the other topic's items."""
    watcher, sink = mailer()
    import_records(watcher, labelled({**FLOOD_STORY, **PORT_STORIES}))
    first = watcher("digest", "--topic", "port")
    assert first.exit_code == 0, first.output
    assert "sent 2 stories, 2 items" in first.output
    second = watcher("digest")
    assert second.exit_code == 0, second.output
    assert "sent 1 story, 3 items" in second.output
    text, _ = parts(sink.messages[1])
    assert "Hundreds evacuated" in text
    assert "Velmar dockworkers" not in text


def test_non_ascii_subject_is_encoded_and_arrives_intact(mailer) -> None:
    """A Cyrillic subject is sent as an encoded word and decodes to the same text."""
    watcher, sink = mailer(digest=digest_toml(subject="'Сводка «{{ name }}»: {{ stories }}'"))
    import_records(watcher, labelled(PORT_STORIES))
    assert watcher("digest").exit_code == 0
    envelope, message = sink.received[0]
    assert message["Subject"] == "Сводка «daily»: 2"
    raw_headers = bytes(envelope.original_content or b"").split(b"\r\n\r\n", 1)[0]
    assert b"=?utf-8?" in raw_headers.lower()
    raw_headers.decode("ascii")


# loopback only; TLS would need a certificate this test does not have
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_login_uses_the_password_from_the_environment(
    make_watcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Login with the password from password_env or password_file; a wrong or unset one fails."""
    from aiosmtpd.smtp import AuthResult, LoginPassword

    def authenticator(server, session, envelope, mechanism, auth_data):  # type: ignore[no-untyped-def]
        ok = isinstance(auth_data, LoginPassword) and (
            auth_data.login == b"digest-bot" and auth_data.password == b"s3cret"
        )
        return AuthResult(success=ok, handled=False)

    sink = MailSink()
    port = free_port()
    controller = Controller(
        sink,
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticator,
        auth_required=True,
        auth_require_tls=False,
    )
    controller.start()
    try:
        smtp = smtp_toml(port, user='"digest-bot"', password_env='"WATCHER_TEST_SMTP_PASSWORD"')
        watcher = make_watcher(extra=DIGEST_TOPICS + digest_toml() + smtp)
        import_records(watcher, labelled(PORT_STORIES))

        monkeypatch.setenv("WATCHER_TEST_SMTP_PASSWORD", "wrong")
        refused = watcher("digest")
        assert refused.exit_code == 1
        assert "535" in refused.output

        monkeypatch.delenv("WATCHER_TEST_SMTP_PASSWORD")
        unset = watcher("digest")
        assert unset.exit_code == 1
        assert "WATCHER_TEST_SMTP_PASSWORD is not set" in unset.output

        monkeypatch.setenv("WATCHER_TEST_SMTP_PASSWORD", "s3cret")
        sent = watcher("digest")
        assert sent.exit_code == 0, sent.output
        assert len(sink.received) == 1

        secret = watcher.directory / "smtp-password"
        secret.write_text("s3cret\n", encoding="utf-8")
        smtp = smtp_toml(port, user='"digest-bot"', password_file=f'"{secret}"')
        watcher = make_watcher(extra=DIGEST_TOPICS + digest_toml(send_empty="true") + smtp)
        from_file = watcher("digest")
        assert from_file.exit_code == 0, from_file.output
        assert len(sink.received) == 2
    finally:
        controller.stop()


def test_stories_cut_by_max_stories_are_counted_and_not_brought_back(mailer) -> None:
    """Past max_stories a topic says how many it left out; the next run does not resend them."""
    watcher, sink = mailer(digest=digest_toml(max_stories="1", topics='["port"]'))
    import_records(watcher, labelled(PORT_STORIES))
    first = watcher("digest")
    assert first.exit_code == 0, first.output
    assert "sent 1 story, 1 item" in first.output
    text, html = parts(sink.messages[0])
    assert "… and 1 more story not shown." in text
    assert "1 more story not shown" in html
    assert rows(watcher.db, "SELECT listed, count(*) FROM digest_items GROUP BY listed") == [
        (0, 1),
        (1, 1),
    ]
    again = watcher("digest")
    assert "nothing new, not sent" in again.output
    assert len(sink.received) == 1


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with the openssl command."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.mark.parametrize(
    ("security", "server_options"),
    [
        ("starttls", lambda context: {"tls_context": context, "require_starttls": True}),
        ("tls", lambda context: {"ssl_context": context}),
    ],
)
def test_starttls_and_implicit_tls_verify_the_server(
    make_watcher, certificate, monkeypatch: pytest.MonkeyPatch, security: str, server_options
) -> None:
    """STARTTLS and implicit TLS deliver when the certificate is trusted, and fail when not."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    sink = MailSink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port, **server_options(context))
    controller.start()
    try:
        smtp = smtp_toml(port).replace('security = "none"', f'security = "{security}"')
        watcher = make_watcher(extra=DIGEST_TOPICS + digest_toml() + smtp)
        import_records(watcher, labelled(PORT_STORIES))

        monkeypatch.setenv("SSL_CERT_FILE", str(watcher.directory / "no-such-bundle.pem"))
        untrusted = watcher("digest")
        assert untrusted.exit_code == 1
        assert "certificate" in untrusted.output.lower()
        assert sink.received == []

        monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
        trusted = watcher("digest")
        assert trusted.exit_code == 0, trusted.output
        assert len(sink.received) == 1
    finally:
        controller.stop()


def test_a_server_that_requires_starttls_refuses_a_plain_text_send(
    make_watcher, certificate
) -> None:
    """With security = "none" against a STARTTLS-only server the send fails and marks nothing."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    sink = MailSink()
    port = free_port()
    controller = Controller(
        sink, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True
    )
    controller.start()
    try:
        watcher = make_watcher(extra=DIGEST_TOPICS + digest_toml() + smtp_toml(port))
        import_records(watcher, labelled(PORT_STORIES))
        result = watcher("digest")
        assert result.exit_code == 1
        assert "530" in result.output
        assert rows(watcher.db, "SELECT count(*) FROM digest_items") == [(0,)]
    finally:
        controller.stop()


def test_a_send_left_unfinished_by_a_dead_process_is_sent_again(mailer) -> None:
    """A row left 'sending' becomes 'interrupted' on the next run, which sends its items."""
    from watcher.store import Store
    from watcher.store import digests as records

    watcher, sink = mailer()
    import_records(watcher, labelled(PORT_STORIES))
    store = Store.open(watcher.db)
    try:
        item_ids = [row[0] for row in store.db.execute("SELECT id FROM items")]
        records.begin_send(
            store,
            name="daily",
            topics=["floods", "port"],
            period_start=None,
            period_end="2026-01-01T00:00:00Z",
            recipients=["analyst@newsroom.example"],
            subject="killed mid-send",
            message_id="<dead@newsroom.example>",
            stories=2,
            item_ids=item_ids,
            now="2026-01-01T00:00:00Z",
        )
    finally:
        store.close()
    result = watcher("digest")
    assert result.exit_code == 0, result.output
    assert "sent 2 stories, 2 items" in result.output
    assert rows(watcher.db, "SELECT status FROM digests ORDER BY id") == [
        ("interrupted",),
        ("sent",),
    ]
    assert len(sink.received) == 1


def test_topic_without_name_sends_only_the_digests_that_cover_it(mailer) -> None:
    """`watcher digest --topic port` sends the port digest and leaves the floods digest alone."""
    watcher, sink = mailer(
        digest=digest_toml("floods-desk", topics='["floods"]')
        + digest_toml("port-desk", topics='["port"]')
    )
    import_records(watcher, labelled({**FLOOD_STORY, **PORT_STORIES}))
    result = watcher("digest", "--topic", "port")
    assert result.exit_code == 0, result.output
    assert "digest port-desk: sent 2 stories, 2 items" in result.output
    assert "floods-desk" not in result.output
    assert len(sink.received) == 1
