"""When a feed is due again: its interval after success, growing backoff after failures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from watcher.backoff import MIN_RETRY_SECONDS, next_due

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
HOUR = 3600.0
DAY = 86400.0


def delay(**kwargs: float | None) -> float:
    """Seconds from NOW until the feed is due."""
    options: dict[str, float | None] = {"interval": 1800.0, "max_backoff": 12 * HOUR}
    options.update(kwargs)
    return (next_due(NOW, **options) - NOW).total_seconds()  # type: ignore[arg-type]


def test_success_waits_one_interval() -> None:
    """After a success the feed is due again after its own interval."""
    assert delay(error_count=0, interval=900.0) == 900.0
    assert next_due(NOW, interval=900.0, error_count=0, max_backoff=HOUR) == NOW + timedelta(
        minutes=15
    )


def test_backoff_starts_at_a_minute_and_doubles() -> None:
    """The first retries come quickly and each failure doubles the wait."""
    waits = [delay(error_count=count, interval=60.0) for count in range(1, 6)]
    assert waits[0] == MIN_RETRY_SECONDS
    assert waits == [60.0, 120.0, 240.0, 480.0, 960.0]


def test_backoff_is_capped_and_never_gives_up() -> None:
    """After many failures the wait stays at max_backoff: the feed is still tried."""
    assert delay(error_count=50) == 12 * HOUR
    assert delay(error_count=10_000) == 12 * HOUR


def test_persistent_failure_waits_at_least_an_interval() -> None:
    """A feed failing again and again is not retried more often than when it works."""
    assert delay(error_count=4, interval=2 * HOUR) == 2 * HOUR
    assert delay(error_count=2, interval=2 * HOUR) == 120.0


def test_interval_longer_than_the_cap_is_capped_on_failure() -> None:
    """A daily feed that fails is retried within max_backoff, not a day later."""
    assert delay(error_count=5, interval=DAY, max_backoff=6 * HOUR) == 6 * HOUR


def test_retry_after_wins_when_longer() -> None:
    """A server asking for two hours gets two hours, even on the first failure."""
    assert delay(error_count=1, retry_after=2 * HOUR) == 2 * HOUR


def test_retry_after_shorter_than_the_backoff_does_not_shorten_it() -> None:
    """Retry-After is a minimum; the backoff still applies."""
    assert delay(error_count=5, interval=60.0, retry_after=10.0) == 960.0


def test_absurd_retry_after_is_capped_at_a_week() -> None:
    """A server cannot park a feed for a year."""
    assert delay(error_count=1, retry_after=365 * DAY) == 7 * DAY
