"""Scheduling decisions with a frozen clock: adaptive intervals, jitter, cron lines, the lock, logs."""

from __future__ import annotations

import json
import logging
import os
import pickle
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import kant_story, rss
from watcher.backoff import Fetched, adaptive_interval
from watcher.config import DaemonConfig, config_from_dict, format_duration
from watcher.daemon.lock import DaemonLock
from watcher.daemon.logs import KeyValueFormatter, formatter
from watcher.daemon.plan import cron_trigger, fire_time, reprobe_check_every
from watcher.errors import ConfigError, DaemonAlreadyRunning

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
MINUTE = 60.0


def history(gaps_minutes: float, new: list[int]) -> list[Fetched]:
    """Earlier fetches, newest first, ``gaps_minutes`` apart, with these new-item counts."""
    return [
        Fetched(NOW - timedelta(minutes=gaps_minutes * (k + 1)), count)
        for k, count in enumerate(new)
    ]


def adapt(new_items: int, past: list[Fetched], current: float = 10 * MINUTE) -> float:
    return adaptive_interval(
        NOW,
        new_items=new_items,
        history=past,
        current=current,
        low=MINUTE,
        high=24 * 60 * MINUTE,
    )


def test_a_feed_with_little_history_keeps_its_interval() -> None:
    """Two fetches say too little about a feed: its interval stays as it is."""
    assert adapt(5, history(10, [3])) == 10 * MINUTE
    assert adapt(0, []) == 10 * MINUTE


def test_a_feed_with_news_at_every_fetch_is_polled_more_often() -> None:
    """When every fetch finds new items, the interval shrinks (at most halving per step)."""
    assert adapt(2, history(10, [1, 3, 2, 1, 4, 2])) == 5 * MINUTE


def test_a_feed_that_rarely_changes_is_polled_less_often() -> None:
    """No news over the last fetches doubles the interval; one hit in nine stretches it."""
    assert adapt(0, history(10, [0] * 9)) == 20 * MINUTE
    one_hit = adapt(0, history(10, [0, 0, 0, 1, 0, 0, 0, 0, 0]))
    assert 10 * MINUTE < one_hit <= 20 * MINUTE


def test_a_feed_with_news_at_every_other_fetch_stays_put() -> None:
    """Half the fetches finding something new is the target: the interval holds (within
    the one-in-nine rounding of ten fetches)."""
    assert 9 * MINUTE <= adapt(1, history(10, [0, 1, 0, 1, 0, 1, 0, 1, 0])) <= 10 * MINUTE
    assert 10 * MINUTE <= adapt(0, history(10, [1, 0, 1, 0, 1, 0, 1, 0, 1])) <= 11.25 * MINUTE


def test_the_adaptive_interval_stays_within_its_bounds() -> None:
    """However busy or quiet the feed, the interval stays between low and high."""
    assert adapt(9, history(1, [9] * 9), current=1.5 * MINUTE) == MINUTE
    assert adapt(0, history(600, [0] * 9), current=20 * 60 * MINUTE) == 24 * 60 * MINUTE


def test_only_the_last_ten_fetches_count() -> None:
    """An old burst no longer speeds up a feed that went quiet."""
    quiet_then_busy = [0] * 9 + [5] * 20
    assert adapt(0, history(10, quiet_then_busy)) == 20 * MINUTE


def test_interval_bounds_widen_to_the_feeds_own_interval_and_close_when_off() -> None:
    """A feed set faster or slower than the bounds keeps its range; adaptive off fixes it."""
    daemon = DaemonConfig(min_interval=300, max_interval=3600)
    assert daemon.interval_bounds(900) == (300, 3600)
    assert daemon.interval_bounds(30) == (30, 3600)
    assert daemon.interval_bounds(7200) == (300, 7200)
    assert DaemonConfig(adaptive=False).interval_bounds(900) == (900, 900)


def test_daemon_settings_are_validated_with_the_key_named() -> None:
    """Swapped bounds, an unknown log format or a bad duration name [daemon] and the key."""
    with pytest.raises(ConfigError, match=r"daemon\.min_interval"):
        config_from_dict({"daemon": {"min_interval": "2h", "max_interval": "1h"}})
    with pytest.raises(ConfigError, match=r"daemon\.log_format"):
        config_from_dict({"daemon": {"log_format": "xml"}})
    with pytest.raises(ConfigError, match=r"daemon\.jitter"):
        config_from_dict({"daemon": {"jitter": "soon"}})
    config = config_from_dict({"daemon": {"jitter": "0s", "watch_config": "off"}})
    assert config.daemon.jitter == 0.0
    assert config.daemon.watch_config is None


def test_a_job_fires_at_the_due_time_from_the_database() -> None:
    """A feed due later fires then; without jitter, exactly then."""
    due = NOW + timedelta(minutes=7)
    when = fire_time("2026-11-20T12:07:00Z", now=NOW, interval=600, jitter=0, rng=random.Random(1))
    assert when == due


def test_an_overdue_or_new_feed_fires_now_plus_jitter() -> None:
    """After a restart overdue feeds are spread over the jitter, not fired all at once."""
    rng = random.Random(7)
    times = [
        fire_time("2026-11-19T00:00:00Z", now=NOW, interval=3600, jitter=60, rng=rng)
        for _ in range(50)
    ]
    times.append(fire_time(None, now=NOW, interval=3600, jitter=60, rng=rng))
    assert all(NOW <= when <= NOW + timedelta(seconds=60) for when in times)
    assert len(set(times)) > 40


def test_jitter_is_capped_at_a_tenth_of_the_interval() -> None:
    """A feed polled every 30 s is never delayed by more than 3 s, whatever the jitter."""
    rng = random.Random(3)
    delays = [
        (fire_time(None, now=NOW, interval=30, jitter=60, rng=rng) - NOW).total_seconds()
        for _ in range(100)
    ]
    assert max(delays) <= 3.0
    assert max(delays) > 2.0


def test_cron_lines_fire_at_their_minutes() -> None:
    """A weekday-morning crontab fires next on Monday 08:30 when asked on Friday noon."""
    trigger = cron_trigger("30 8 * * mon-fri", UTC)
    friday_noon = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    assert friday_noon.weekday() == 4
    assert trigger.get_next_fire_time(None, friday_noon) == datetime(
        2026, 11, 23, 8, 30, tzinfo=UTC
    )
    hourly = cron_trigger("0 * * * *", UTC)
    assert hourly.get_next_fire_time(None, NOW + timedelta(seconds=1)) == NOW + timedelta(hours=1)


@pytest.mark.parametrize("line", ["0 8 * *", "0 0 8 * * *", "61 * * * *", "daily"])
def test_malformed_cron_lines_are_refused(line: str) -> None:
    """Four or six fields, a minute out of range, a word: a ValueError, never a job."""
    with pytest.raises(ValueError):  # noqa: PT011 - APScheduler's messages vary
        cron_trigger(line, UTC)


def test_reprobe_checks_run_hourly_at_most() -> None:
    """Disabled feeds are looked at hourly; a shorter re-probe interval is honoured."""
    assert reprobe_check_every(86400) == 3600
    assert reprobe_check_every(5) == 5


def test_the_lock_admits_one_holder_and_names_it(tmp_path: Path) -> None:
    """A second lock on the same database fails naming the holder's pid; release frees it."""
    db = tmp_path / "watcher.db"
    with DaemonLock(db) as held:
        assert held.path.read_text().strip() == str(os.getpid())
        with pytest.raises(DaemonAlreadyRunning) as refused:
            DaemonLock(db).acquire()
    assert refused.value.pid == str(os.getpid())
    assert str(held.path) in str(refused.value)
    copy = pickle.loads(pickle.dumps(refused.value))
    assert (copy.pid, str(copy)) == (refused.value.pid, str(refused.value))
    with DaemonLock(db):
        pass


def record(**fields: object) -> logging.LogRecord:
    item = logging.LogRecord("watcher.daemon", logging.INFO, __file__, 1, "poll", None, None)
    item.__dict__.update(fields)
    item.created = NOW.timestamp()
    return item


def test_text_log_lines_are_key_value_with_quoting() -> None:
    """Plain lines read `time level event key=value`; values with spaces are quoted."""
    line = KeyValueFormatter().format(
        record(feed="https://a.example/rss", status="failed", new_items=0, error="HTTP 503 busy")
    )
    assert line == (
        "2026-11-20T12:00:00Z info poll feed=https://a.example/rss status=failed new_items=0 "
        'error="HTTP 503 busy"'
    )


def test_json_log_lines_are_flat_objects() -> None:
    """JSON lines hold the event and each field at the top level."""
    data = json.loads(formatter("json").format(record(feed="https://a.example/rss", new_items=3)))
    assert data["event"] == "poll"
    assert data["feed"] == "https://a.example/rss"
    assert data["new_items"] == 3
    assert data["level"] == "INFO"
    assert data["time"].startswith("2026-11-20T12:00:00")


def test_durations_print_in_the_config_form() -> None:
    """Intervals shown by status read like the config: 1h30m, 45s, 1d."""
    assert [format_duration(s) for s in (5400, 45, 86400, 90061, 0.5)] == [
        "1h30m",
        "45s",
        "1d",
        "1d1h1m1s",
        "0.5s",
    ]


def test_polls_adapt_the_stored_interval(httpserver, make_watcher) -> None:  # type: ignore[no-untyped-def]
    """A feed that keeps answering the same body is polled less often, and the adapted
    interval is stored on the feed and shown by status."""
    httpserver.expect_request("/same.xml").respond_with_data(
        rss([kant_story(1)]), content_type="text/xml"
    )
    watcher = make_watcher(
        [httpserver.url_for("/same.xml")],
        poll='default_interval = "10m"\n',
        extra='\n[daemon]\nmin_interval = "1m"\nmax_interval = "1h"\n',
    )
    for _ in range(4):
        assert watcher("poll", "--all").exit_code == 0
    from watcher.store import Store

    store = Store.open(watcher.db)
    try:
        (row,) = store.feeds()
    finally:
        store.close()
    assert row.poll_interval == 40 * MINUTE, "two quiet fetches after the first doubled it twice"
    due = datetime.fromisoformat(str(row.next_due_at)) - datetime.fromisoformat(
        str(row.last_fetch_at)
    )
    assert due == timedelta(minutes=40)
    assert "40m" in watcher("status").output


def test_the_tag_id_cache_of_a_long_running_store_stays_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A daemon storing new keyphrases for months keeps at most TAG_ID_CACHE ids in memory,
    and tags stay correct after the cache starts again."""
    from watcher.models import Tag
    from watcher.store import Store, database

    monkeypatch.setattr(database, "TAG_ID_CACHE", 10)
    store = Store.open(tmp_path / "tags.db")
    try:
        with store.transaction():
            store.db.execute(
                "INSERT INTO items(title, first_seen_at, content_hash) VALUES ('t', 'now', 'h')"
            )
            for _ in range(3):
                tags = [Tag(f"phrase {k}", "keyphrase", 0.5) for k in range(25)]
                store.set_tags(1, tags)
                assert len(store._tag_ids) <= 10
        assert store.count("tags") == 25
        assert store.count("item_tags") == 25
    finally:
        store.close()
