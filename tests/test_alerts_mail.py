"""Instant alerts by mail: one message per new story through [smtp], retried when refused."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from tests.conftest import rss, rss_item
from tests.digest_support import MailSink, parts, smtp_toml
from tests.test_alerts import DRONES, FIRE, LEASE, alert_config, alerting_watcher, serve_feed
from tests.test_digest_mail import smtp_server
from watcher.config import config_from_dict
from watcher.errors import ConfigError

__all__ = ["alerting_watcher", "smtp_server"]  # fixtures, imported for the tests below


def mail_target(name: str = "desk", to: str = '["desk@newsroom.example"]') -> str:
    return f'\n[[alerts.emails]]\nname = "{name}"\nto = {to}\n'


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as connection:
        return connection.execute(sql).fetchall()


def test_one_mail_per_new_story_across_two_polls(
    httpserver: HTTPServer, alerting_watcher, smtp_server: tuple[MailSink, int]
) -> None:
    """Each new story reaches the mail target once, with a text and an HTML part."""
    sink, port = smtp_server
    feed = serve_feed(httpserver, "/feed.xml", [rss([DRONES, LEASE]), rss([DRONES, LEASE, FIRE])])
    watcher = alerting_watcher([feed], alert_config(mail_target()) + smtp_toml(port))

    watcher("poll", "--all")
    assert "2 delivered" in watcher("alerts", "send").output
    watcher("poll", "--all")
    assert "1 delivered" in watcher("alerts", "send").output
    assert "0 delivered" in watcher("alerts", "send").output

    subjects = [str(message["Subject"]) for message in sink.messages]
    assert subjects == [
        "watcher alert · Russia's Kant air base in Kyrgyzstan: "
        "Russia moves reconnaissance drones to Kant air base",
        "watcher alert · Russia's Kant air base in Kyrgyzstan: Kyrgyz parliament votes on the Kant lease",
        "watcher alert · Russia's Kant air base in Kyrgyzstan: Fuel depot fire near Kant airbase",
    ]
    text, html = parts(sink.messages[0])
    assert "https://news.example/drones" in text
    assert 'href="https://news.example/drones"' in html
    assert rows(watcher.db, "SELECT DISTINCT target, status FROM alert_deliveries") == [
        ("email:desk", "delivered")
    ]


def test_a_refused_alert_mail_is_retried_and_sent_once(
    httpserver: HTTPServer, alerting_watcher, smtp_server: tuple[MailSink, int]
) -> None:
    """A 550 is recorded as a failed attempt, shows in status, and the retry delivers it once."""
    sink, port = smtp_server
    feed = serve_feed(httpserver, "/feed.xml", [rss([FIRE])])
    watcher = alerting_watcher(
        [feed], alert_config(mail_target(), 'retry_delay = "1s"\n') + smtp_toml(port)
    )
    watcher("poll", "--all")
    sink.refuse = "550 mailbox unavailable"
    refused = watcher("alerts", "send")
    assert "1 failed" in refused.output
    assert "email:desk" in watcher("status").output
    sink.refuse = None
    time.sleep(1.2)  # the retry is due after retry_delay
    assert "1 delivered" in watcher("alerts", "send").output
    assert len(sink.messages) == 1
    assert rows(watcher.db, "SELECT status, attempts FROM alert_deliveries") == [("delivered", 2)]


def test_a_headline_with_line_breaks_and_markup_arrives_harmless(
    httpserver: HTTPServer, alerting_watcher, smtp_server: tuple[MailSink, int]
) -> None:
    """Feed text cannot add a header or markup to the alert mail."""
    sink, port = smtp_server
    hostile = rss_item(
        "Kant air base\r\nBcc: victim@example.org <script>alert(1)</script>",
        "javascript:alert(1)",
        "<p>The Kant air base in Kyrgyzstan answered questions about the <b>radar</b>.</p>",
        guid="hostile",
    )
    feed = serve_feed(httpserver, "/feed.xml", [rss([hostile])])
    watcher = alerting_watcher([feed], alert_config(mail_target()) + smtp_toml(port))
    watcher("poll", "--all")
    watcher("alerts", "send")

    (message,) = sink.messages
    assert message["Bcc"] is None
    assert [envelope.rcpt_tos for envelope, _ in sink.received] == [["desk@newsroom.example"]]
    _text, html = parts(message)
    assert "<script>" not in html
    assert "javascript:" not in html


def test_mail_alerts_without_smtp_name_the_key() -> None:
    """[[alerts.emails]] without [smtp] is a config error that says what is missing."""
    with pytest.raises(ConfigError, match=r"alerts\.emails: .*\[smtp\]"):
        config_from_dict({"alerts": {"emails": [{"name": "desk", "to": ["a@b.example"]}]}})
