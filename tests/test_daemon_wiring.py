"""What `watcher run` runs beside polling: digests on their schedules, instant alerts, metrics."""

from __future__ import annotations

import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from pytest_httpserver import HTTPServer

from tests.conftest import kant_story, rss
from tests.digest_support import MailSink, digest_toml, free_port, parts, smtp_toml
from tests.test_alerts import Receiver, hook, mark_alert_topic
from tests.test_daemon import Daemon, daemon_config, daemons, item_count, query, wait_for
from tests.test_digest_mail import smtp_server
from watcher.config import load_config
from watcher.daemon import configured_jobs

__all__ = ["daemons", "smtp_server"]  # fixtures, imported for the tests below


def test_configured_jobs_are_the_digests_and_alerts_of_the_config(tmp_path: Path) -> None:
    """One cron job per [[digests]] entry on its schedule and zone; alerts only when a topic
    alerts and a webhook is there, and then also right after new items."""
    path = daemon_config(tmp_path, [])
    path.write_text(
        path.read_text(encoding="utf-8")
        + digest_toml("morning", timezone='"Asia/Bishkek"')
        + smtp_toml(2525),
        encoding="utf-8",
    )
    jobs = configured_jobs(load_config(path), tmp_path / "w.db")
    assert [(job.name, job.crontab, str(job.timezone)) for job in jobs] == [
        ("digest-morning", "0 7 * * *", "Asia/Bishkek")
    ]

    path.write_text(
        path.read_text(encoding="utf-8") + hook("team", "http://127.0.0.1:9/hook"),
        encoding="utf-8",
    )
    assert [job.name for job in configured_jobs(load_config(path), tmp_path / "w.db")] == [
        "digest-morning"
    ]  # no topic has alert = true yet
    mark_alert_topic(path)
    alerts = list(configured_jobs(load_config(path), tmp_path / "w.db"))[-1]
    assert (alerts.name, alerts.after_new_items) == ("alerts", True)


def test_the_digest_job_mails_what_the_daemon_stored(
    httpserver: HTTPServer, tmp_path: Path, smtp_server: tuple[MailSink, int]
) -> None:
    """The digest cron job, run as the daemon runs it (its own Store, in a thread's stead),
    mails the stories a poll stored, once."""
    sink, port = smtp_server
    httpserver.expect_request("/f.xml").respond_with_data(
        rss([kant_story(1), kant_story(2)]), content_type="application/rss+xml"
    )
    path = daemon_config(tmp_path, [httpserver.url_for("/f.xml")])
    path.write_text(
        path.read_text(encoding="utf-8")
        + digest_toml("daily", first_lookback='"7d"')
        + smtp_toml(port),
        encoding="utf-8",
    )
    from tests.conftest import Watcher

    Watcher(tmp_path, path)("poll", "--all")
    (job,) = configured_jobs(load_config(path), tmp_path / "watcher.db")
    job.run(datetime.now(UTC))
    job.run(datetime.now(UTC))

    assert len(sink.messages) == 1
    assert "1 story, 2 items" in str(sink.messages[0]["Subject"])  # two reports of one event
    text, _html = parts(sink.messages[0])
    assert "Kant air base report number" in text


def test_daemon_alerts_at_once_and_serves_metrics(
    httpserver: HTTPServer, tmp_path: Path, daemons: list[Daemon]
) -> None:
    """A running daemon POSTs one alert per new story right after the poll that stored it
    (not at the next minute), and its metrics endpoint parses as Prometheus text."""
    receiver = Receiver(httpserver)
    httpserver.expect_request("/feed.xml").respond_with_data(
        rss([kant_story(1), kant_story(7)]), content_type="application/rss+xml"
    )
    metrics_port = free_port()
    path = daemon_config(tmp_path, [httpserver.url_for("/feed.xml")], interval="1h")
    path.write_text(
        path.read_text(encoding="utf-8")
        + hook("team", receiver.url)
        + f"\n[metrics]\nenabled = true\nport = {metrics_port}\n",
        encoding="utf-8",
    )
    mark_alert_topic(path)
    db = tmp_path / "daemon.db"
    daemon = Daemon(path, db)
    daemons.append(daemon)

    wait_for(lambda: item_count(db) == 2, "two stored items")
    stories = query(db, "SELECT title FROM items WHERE story_id = id AND duplicate_of IS NULL")
    wait_for(lambda: len(receiver.bodies) >= len(stories), "an alert per story", timeout=20)
    body = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read()
    assert daemon.stop() == 0

    assert sorted(map(str, receiver.titles())) == sorted(str(row[0]) for row in stories)
    families = {family.name: family for family in text_string_to_metric_families(body.decode())}
    assert families["watcher_items_stored"].samples[0].value == 2
    assert "watcher_polls" in families
