"""Instant alerts: feeds polled from 127.0.0.1 through the CLI, a webhook receiver on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.conftest import rss, rss_item
from watcher.alerts import deliver_pending, retry_delay, send_alerts
from watcher.alerts.messages import generic_body, mail_bodies, slack_body
from watcher.config import load_config
from watcher.errors import ConfigError
from watcher.store import Store
from watcher.store.alerts import StoryRow, claim_due, enqueue_new_stories

DRONES = rss_item(
    "Russia moves reconnaissance drones to Kant air base",
    "https://news.example/drones",
    "<p>Several reconnaissance drones arrived at the Kant air base near Bishkek this week, "
    "the defence ministry in Moscow said, adding that crews had trained at home for months "
    "before the transfer to Kyrgyzstan and that hangars had been rebuilt for them.</p>",
    guid="drones",
)
DRONES_COPY = rss_item(
    "Russia moves reconnaissance drones to Kant air base (updated)",
    "https://wire.example/2026/drones-kant",
    "<p>Several reconnaissance drones arrived at the Kant air base near Bishkek this week, "
    "the defence ministry in Moscow said, adding that crews had trained at home for months "
    "before the transfer to Kyrgyzstan and that hangars had been rebuilt for them. "
    "A spokesman declined to give numbers.</p>",
    guid="wire-drones",
)
LEASE = rss_item(
    "Kyrgyz parliament votes on the Kant lease",
    "https://news.example/lease",
    "<p>Deputies in Bishkek approved an extension of the agreement under which Russia rents "
    "the airfield at Kant, after a debate about the yearly payment, road repairs promised "
    "around the garrison town and the jobs held by local workers.</p>",
    guid="lease",
)
FIRE = rss_item(
    "Fuel depot fire near Kant airbase",
    "https://news.example/fire",
    "<p>Firefighters in Kyrgyzstan put out a blaze at a fuel store beside the Kant airbase "
    "late on Tuesday; the emergency service reported no injuries and said the cause, "
    "possibly a faulty pump, was being investigated by a commission.</p>",
    guid="fire",
)


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as connection:
        return connection.execute(sql).fetchall()


class Receiver:
    """A webhook endpoint on the test server that records each POST and answers as told."""

    def __init__(self, httpserver: HTTPServer, path: str = "/hook", fail_first: int = 0) -> None:
        self.bodies: list[dict[str, object]] = []
        self.headers: list[dict[str, str]] = []
        self.fail_first = fail_first
        self.url = httpserver.url_for(path)
        httpserver.expect_request(path, method="POST").respond_with_handler(self.handle)

    def handle(self, request: Request) -> Response:
        self.bodies.append(json.loads(request.get_data()))
        self.headers.append(dict(request.headers))
        if len(self.bodies) <= self.fail_first:
            return Response("busy", status=503)
        return Response("ok")

    def titles(self) -> list[object]:
        return [body["title"] for body in self.bodies]


def serve_feed(httpserver: HTTPServer, path: str, bodies: list[bytes]) -> str:
    """Serve the given documents one after another (the last one from then on)."""

    def handler(_request: Request) -> Response:
        body = bodies.pop(0) if len(bodies) > 1 else bodies[0]
        return Response(body, content_type="application/rss+xml")

    httpserver.expect_request(path).respond_with_handler(handler)
    return httpserver.url_for(path)


def alert_config(hooks: str, settings: str = "") -> str:
    return f"\n[alerts]\n{settings}\n{hooks}"


def hook(name: str, url: str, *, format: str = "generic", extra: str = "") -> str:
    return f'\n[[alerts.webhooks]]\nname = "{name}"\nurl = "{url}"\nformat = "{format}"\n{extra}\n'


def mark_alert_topic(config_path: Path) -> None:
    text = config_path.read_text(encoding="utf-8")
    config_path.write_text(
        text.replace('name = "kant-air-base"\n', 'name = "kant-air-base"\nalert = true\n', 1),
        encoding="utf-8",
    )


@pytest.fixture
def alerting_watcher(make_watcher):  # type: ignore[no-untyped-def]
    """A watcher whose kant-air-base topic alerts, with the given feeds and alert section."""

    def factory(feeds: list[str], alerts: str):  # type: ignore[no-untyped-def]
        watcher = make_watcher(feeds, extra=alerts)
        mark_alert_topic(watcher.config)
        return watcher

    return factory


def test_one_post_per_new_story_across_two_polls(httpserver: HTTPServer, alerting_watcher) -> None:
    """New stories are posted once; a near-duplicate and items already sent are not posted again."""
    receiver = Receiver(httpserver)
    feed = serve_feed(httpserver, "/feed.xml", [rss([DRONES, LEASE]), rss([DRONES, LEASE, FIRE])])
    other = serve_feed(httpserver, "/wire.xml", [rss([]), rss([DRONES_COPY])])
    watcher = alerting_watcher([feed, other], alert_config(hook("team", receiver.url)))

    assert watcher("poll", "--all").exit_code == 0
    sent = watcher("alerts", "send")
    assert sent.exit_code == 0, sent.output
    assert "2 delivered" in sent.output
    assert watcher("poll", "--all").exit_code == 0
    assert "1 delivered" in watcher("alerts", "send").output
    assert "0 delivered" in watcher("alerts", "send").output

    assert receiver.titles() == [
        "Russia moves reconnaissance drones to Kant air base",
        "Kyrgyz parliament votes on the Kant lease",
        "Fuel depot fire near Kant airbase",
    ]
    # the wire copy was stored, as a near-duplicate, and that is why it was not posted
    copies = rows(watcher.db, "SELECT duplicate_of FROM items WHERE url LIKE '%wire.example%'")
    assert len(copies) == 1
    assert copies[0][0] is not None
    deliveries = rows(watcher.db, "SELECT target, status, attempts FROM alert_deliveries")
    assert deliveries == [("webhook:team", "delivered", 1)] * 3
    assert receiver.bodies[0]["event"] == "watcher.story"
    assert receiver.bodies[0]["url"] == "https://news.example/drones"
    assert receiver.bodies[0]["topic"] == "kant-air-base"
    assert (
        receiver.headers[0]["Idempotency-Key"]
        == f"watcher-team-story-{receiver.bodies[0]['story_id']}"
    )


def test_receiver_failing_twice_gets_the_story_on_the_third_attempt(
    httpserver: HTTPServer, alerting_watcher
) -> None:
    """Retries wait for their backoff, survive two failures and deliver exactly once."""
    receiver = Receiver(httpserver, fail_first=2)
    feed = serve_feed(httpserver, "/feed.xml", [rss([DRONES])])
    watcher = alerting_watcher(
        [feed], alert_config(hook("team", receiver.url), 'retry_delay = "1m"\nmax_backoff = "1h"')
    )
    assert watcher("poll", "--all").exit_code == 0
    config = load_config(watcher.config)
    start = datetime.now(UTC)
    store = Store.open(watcher.db)
    try:
        first = deliver_pending(config, store, now=start)
        assert (first.queued, first.delivered, first.failed) == (1, 0, 1)
        assert first.failed_targets == {"webhook:team": "HTTP 503"}
        too_soon = deliver_pending(config, store, now=start + timedelta(seconds=30))
        assert (too_soon.delivered, too_soon.failed) == (0, 0)
        assert len(receiver.bodies) == 1  # nothing is sent before the backoff has passed
        second = deliver_pending(config, store, now=start + timedelta(seconds=61))
        assert second.failed == 1
        # the second retry waits twice as long: two minutes after the second attempt
        waiting = deliver_pending(config, store, now=start + timedelta(seconds=61 + 100))
        assert waiting.failed + waiting.delivered == 0
        third = deliver_pending(config, store, now=start + timedelta(seconds=61 + 121))
        assert third.delivered == 1
        again = deliver_pending(config, store, now=start + timedelta(hours=2))
        assert (again.queued, again.delivered) == (0, 0)
    finally:
        store.close()
    assert len(receiver.bodies) == 3
    assert rows(watcher.db, "SELECT status, attempts, last_error FROM alert_deliveries") == [
        ("delivered", 3, None)
    ]


def test_failing_target_is_skipped_for_the_run_and_reported_in_status(
    httpserver: HTTPServer, alerting_watcher
) -> None:
    """A dead target costs one attempt per run, the healthy one gets everything, status says so."""
    dead = Receiver(httpserver, "/dead", fail_first=1000)
    good = Receiver(httpserver, "/good")
    feed = serve_feed(httpserver, "/feed.xml", [rss([DRONES, LEASE, FIRE])])
    watcher = alerting_watcher(
        [feed], alert_config(hook("dead", dead.url) + hook("good", good.url, format="slack"))
    )
    assert watcher("poll", "--all").exit_code == 0

    sent = watcher("alerts", "send")

    assert sent.exit_code == 0
    assert "failed: webhook:dead: HTTP 503" in sent.output
    assert len(dead.bodies) == 1
    assert len(good.bodies) == 3
    status = watcher("status")
    assert status.exit_code == 0
    assert "alert target webhook:dead failing: HTTP 503" in status.output
    assert "webhook:good" not in status.output
    table = watcher("alerts", "status")
    assert "failing" in table.output
    document = json.loads(watcher("status", "--json").output)
    assert document["alert_targets_failing"] == ["webhook:dead"]
    assert document["alert_deliveries"] == {
        "webhook:dead": {"pending": 3},
        "webhook:good": {"delivered": 3},
    }
    assert rows(
        watcher.db,
        "SELECT target, status, COUNT(*), MAX(attempts) FROM alert_deliveries "
        "GROUP BY target, status ORDER BY target",
    ) == [("webhook:dead", "pending", 3, 1), ("webhook:good", "delivered", 3, 1)]


def test_slow_receiver_times_out_and_is_retried(httpserver: HTTPServer, alerting_watcher) -> None:
    """A receiver slower than [alerts].timeout is a failure recorded for retry, not a hang."""
    calls: list[float] = []

    def slow(_request: Request) -> Response:
        calls.append(1.0)
        time.sleep(1.5)
        return Response("late")

    httpserver.expect_request("/slow", method="POST").respond_with_handler(slow)
    feed = serve_feed(httpserver, "/feed.xml", [rss([DRONES])])
    watcher = alerting_watcher(
        [feed], alert_config(hook("slow", httpserver.url_for("/slow")), 'timeout = "0.3s"')
    )
    watcher("poll", "--all")

    sent = watcher("alerts", "send")

    assert "timed out" in sent.output
    assert rows(watcher.db, "SELECT status, attempts FROM alert_deliveries") == [("pending", 1)]


def test_backlog_older_than_max_age_is_not_alerted_and_old_retries_expire(
    httpserver: HTTPServer, alerting_watcher
) -> None:
    """Stories first seen before max_age are not queued; a retry older than it stops."""
    dead = Receiver(httpserver, "/dead", fail_first=1000)
    feed = serve_feed(httpserver, "/feed.xml", [rss([DRONES])])
    watcher = alerting_watcher([feed], alert_config(hook("dead", dead.url), 'max_age = "1h"'))
    watcher("poll", "--all")
    config = load_config(watcher.config)
    store = Store.open(watcher.db)
    try:
        now = datetime.now(UTC)
        assert deliver_pending(config, store, now=now).failed == 1
        later = deliver_pending(config, store, now=now + timedelta(hours=2))
        assert (later.expired, later.failed, later.queued) == (1, 0, 0)
        since = (now + timedelta(hours=2) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert (
            enqueue_new_stories(
                store, target="webhook:new", topics=["kant-air-base"], since=since, now=since
            )
            == 0
        )
    finally:
        store.close()
    assert len(dead.bodies) == 1


def test_topics_without_alert_and_imports_send_nothing(
    httpserver: HTTPServer, make_watcher, tmp_path: Path
) -> None:
    """Without alert = true nothing is queued; imported documents never alert."""
    receiver = Receiver(httpserver)
    feed = serve_feed(httpserver, "/feed.xml", [rss([DRONES])])
    watcher = make_watcher([feed], extra=alert_config(hook("team", receiver.url)))
    watcher("poll", "--all")
    quiet = watcher("alerts", "send")
    assert "0 queued" in quiet.output
    assert "no topic has alert = true" in quiet.output
    mark_alert_topic(watcher.config)
    document = tmp_path / "note.txt"
    document.write_text(
        "Kant air base\n\nA note about the Kant air base in Kyrgyzstan and its new hangars.",
        encoding="utf-8",
    )
    assert watcher("corpus", "import", str(document)).exit_code == 0
    assert "1 delivered" in watcher("alerts", "send").output
    assert receiver.titles() == ["Russia moves reconnaissance drones to Kant air base"]


def test_two_senders_never_claim_the_same_delivery(
    httpserver: HTTPServer, alerting_watcher
) -> None:
    """A claim moves the rows out of reach of a second sender running at the same time."""
    feed = serve_feed(httpserver, "/feed.xml", [rss([DRONES, LEASE])])
    watcher = alerting_watcher([feed], alert_config(hook("team", "http://127.0.0.1:9/")))
    watcher("poll", "--all")
    first, second = Store.open(watcher.db), Store.open(watcher.db)
    try:
        now = "2999-01-01T00:00:00Z"
        enqueue_new_stories(
            first,
            target="webhook:team",
            topics=["kant-air-base"],
            since="2000-01-01T00:00:00Z",
            now=now,
        )
        lease = "2999-01-01T00:01:00Z"
        taken = claim_due(first, target="webhook:team", now=now, lease_until=lease, limit=10)
        assert len(taken) == 2
        assert claim_due(second, target="webhook:team", now=now, lease_until=lease, limit=10) == []
        after = "2999-01-01T00:02:00Z"
        assert (
            claim_due(second, target="webhook:team", now=after, lease_until=after, limit=10)
            == taken
        )
    finally:
        first.close()
        second.close()


STORY = StoryRow(
    delivery_id=1,
    story_id=7,
    attempts=0,
    topic="kant-air-base",
    topic_title="Kant <base>",
    title="Drones & <!channel> at Kant",
    url="https://news.example/a|b>c",
    source="News Example",
    summary="  Several   drones\narrived. ",
    published_at="2026-11-20T09:00:00Z",
    first_seen_at="2026-11-20T09:05:00Z",
)


def test_slack_body_escapes_control_characters_and_links_only_http() -> None:
    """Slack text cannot be forged by a title: & < > escaped, the link URL cannot be broken out of."""
    text = slack_body(STORY)["text"]
    assert text == (
        "*Kant &lt;base&gt;*: <https://news.example/a%7Cb%3Ec|Drones &amp; &lt;!channel&gt; at Kant>\n"
        "News Example · 2026-11-20 09:00\n"
        "Several drones arrived."
    )
    unsafe = dataclasses.replace(STORY, url="javascript:alert(1)")
    assert "javascript" not in str(slack_body(unsafe)["text"])
    assert generic_body(unsafe)["url"] is None


def test_alert_links_carry_no_tracking_parameters() -> None:
    """A feed's ``?utm_source=rss`` is not passed on to the people an alert reaches."""
    tracked = dataclasses.replace(
        STORY, url="https://news.example/drones?id=7&utm_source=rss&utm_medium=feed"
    )
    assert generic_body(tracked)["url"] == "https://news.example/drones?id=7"
    assert "utm_" not in str(slack_body(tracked)["text"])


def test_an_alert_links_nothing_after_a_line_break() -> None:
    """A stored URL with a line break inside is no link: not posted, not mailed."""
    broken = dataclasses.replace(STORY, url="https://news.example/a\nBcc: b@c.example")
    assert generic_body(broken)["url"] is None
    assert "Bcc" not in str(slack_body(broken)["text"])
    assert all("Bcc" not in part for part in mail_bodies(broken))


def test_generic_body_carries_every_field() -> None:
    """The generic body has the story's id, topic, title, link, source, dates and summary."""
    assert generic_body(STORY) == {
        "event": "watcher.story",
        "id": "story-7",
        "story_id": 7,
        "topic": "kant-air-base",
        "topic_title": "Kant <base>",
        "title": "Drones & <!channel> at Kant",
        "url": "https://news.example/a|b>c",
        "source": "News Example",
        "published_at": "2026-11-20T09:00:00Z",
        "first_seen_at": "2026-11-20T09:05:00Z",
        "summary": "Several drones arrived.",
    }


def test_retry_delay_doubles_up_to_the_cap() -> None:
    """Backoff: base, twice, four times, ... never more than the cap."""
    delays = [retry_delay(n, base=60, cap=600) for n in range(1, 7)]
    assert delays == [60, 120, 240, 480, 600, 600]


@pytest.mark.parametrize(
    ("section", "key", "problem"),
    [
        ('[[alerts.webhooks]]\nname = "a"\nurl = "ftp://x"\n', "alerts.webhooks[0].url", "http"),
        (
            '[[alerts.webhooks]]\nname = "a"\nurl = "http://x/"\nformat = "teams"\n',
            "alerts.webhooks[0].format",
            "slack",
        ),
        (
            '[[alerts.webhooks]]\nname = "a"\nurl = "http://x/"\n'
            'headers = { "X-Token" = "a\\r\\nHost: evil" }\n',
            "alerts.webhooks[0].headers",
            "line break",
        ),
        (
            '[[alerts.webhooks]]\nname = "a"\nurl = "http://x/"\ntopics = ["nope"]\n',
            "alerts.webhooks[0].topics",
            "unknown topic",
        ),
        (
            '[[alerts.webhooks]]\nname = "a"\nurl = "http://x/"\n'
            '[[alerts.webhooks]]\nname = "a"\nurl = "http://y/"\n',
            "alerts.webhooks[1].name",
            "duplicate",
        ),
    ],
)
def test_bad_alert_config_names_the_key(make_watcher, section: str, key: str, problem: str) -> None:
    """A broken [alerts] section names the key and what was expected."""
    watcher = make_watcher(extra="\n" + section)
    with pytest.raises(ConfigError) as error:
        load_config(watcher.config)
    assert error.value.key == key
    assert problem in error.value.problem


def test_per_run_caps_the_deliveries_of_one_run(httpserver: HTTPServer, alerting_watcher) -> None:
    """With per_run = 2, three new stories take two runs; none is sent twice."""
    receiver = Receiver(httpserver)
    feed = serve_feed(httpserver, "/feed.xml", [rss([DRONES, LEASE, FIRE])])
    watcher = alerting_watcher([feed], alert_config(hook("team", receiver.url), "per_run = 2"))
    watcher("poll", "--all")

    assert "2 delivered" in watcher("alerts", "send").output
    assert "1 delivered" in watcher("alerts", "send").output
    assert len(receiver.bodies) == 3
    assert len(set(receiver.titles())) == 3


def test_send_alerts_runs_in_a_thread_of_its_own(httpserver: HTTPServer, alerting_watcher) -> None:
    """The daemon's entry point opens its own Store, so it runs in a worker thread."""
    receiver = Receiver(httpserver)
    feed = serve_feed(httpserver, "/feed.xml", [rss([DRONES])])
    watcher = alerting_watcher([feed], alert_config(hook("team", receiver.url)))
    watcher("poll", "--all")
    config = load_config(watcher.config)
    reports = []
    worker = threading.Thread(target=lambda: reports.append(send_alerts(config, watcher.db)))
    worker.start()
    worker.join()
    assert [(report.queued, report.delivered) for report in reports] == [(1, 1)]
    assert receiver.titles() == ["Russia moves reconnaissance drones to Kant air base"]
