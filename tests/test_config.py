"""Loading watcher.toml: durations, and errors that name the file, the key and what was expected."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from watcher.config import load_config, parse_duration
from watcher.errors import ConfigError

SHIPPED = Path(__file__).resolve().parents[1] / "config" / "watcher.toml"

TOPIC = """
[[topics]]
name = "kant"
title = "Kant"
query = 'Kant AND (Kyrgyz* OR "air base")'
"""


def write(tmp_path: Path, text: str, name: str = "watcher.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def config_error(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("15m", 900.0),
        ("2h", 7200.0),
        ("1h30m", 5400.0),
        ("1h 30m", 5400.0),
        ("45s", 45.0),
        ("1d", 86400.0),
        ("1.5h", 5400.0),
        ("500ms", 0.5),
        ("15M", 900.0),
        (90, 90.0),
        (2.5, 2.5),
    ],
)
def test_durations_are_read_as_seconds(text: str | float, seconds: float) -> None:
    """Unit suffixes add up, case is ignored and plain numbers are seconds."""
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text", ["", "soon", "15mins", "-5m", "m", "5x", "1h30", "0s", 0, -3, True, None, [15]]
)
def test_bad_durations_are_refused(text: object) -> None:
    """Words, unknown units, bare numbers in strings, zero, negatives and non-scalars fail."""
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_shipped_config_validates_with_the_kant_topic_and_many_feeds() -> None:
    """config/watcher.toml loads, has the kant-air-base topic and at least ten http(s) feeds."""
    config = load_config(SHIPPED)
    assert "kant-air-base" in [topic.name for topic in config.topics]
    assert "Kant" in config.topic("kant-air-base").query
    assert len(config.feeds) >= 10
    assert all(feed.url.startswith(("http://", "https://")) for feed in config.feeds)


def test_a_valid_file_sets_topics_feeds_and_poll_settings(tmp_path: Path) -> None:
    """Every documented key of the contract is read, durations become seconds."""
    path = write(
        tmp_path,
        TOPIC
        + """
        [[feeds]]
        url = "https://one.example/rss.xml"
        topics = ["kant"]
        interval = "15m"

        [[feeds]]
        url = "http://two.example/feed"

        [poll]
        keep_unmatched = true
        max_bytes = 200_000
        """,
    )
    config = load_config(path)
    assert config.path == str(path)
    assert [feed.url for feed in config.feeds] == [
        "https://one.example/rss.xml",
        "http://two.example/feed",
    ]
    assert config.feeds[0].topics == ("kant",)
    assert config.feeds[0].interval == 900.0
    assert config.feeds[1].topics is None
    assert config.feeds[1].interval is None
    assert config.poll.keep_unmatched is True
    assert config.poll.max_bytes == 200_000


def test_unknown_key_is_named_with_its_full_path(tmp_path: Path) -> None:
    """A misspelt key in the second feed is reported as feeds[1].intervall."""
    path = write(
        tmp_path,
        TOPIC
        + """
        [[feeds]]
        url = "https://one.example/rss.xml"

        [[feeds]]
        url = "https://two.example/rss.xml"
        intervall = "15m"
        """,
    )
    error = config_error(path)
    assert error.path == str(path)
    assert error.key == "feeds[1].intervall"
    assert str(error).startswith(f"{path}: feeds[1].intervall: unknown key")


def test_unknown_section_key_is_named(tmp_path: Path) -> None:
    """A misspelt [poll] key is named as poll.<key>."""
    error = config_error(write(tmp_path, "[poll]\nkeep_unmached = true\n"))
    assert error.key == "poll.keep_unmached"
    assert "unknown key" in error.problem


@pytest.mark.parametrize(
    ("body", "key", "expected"),
    [
        ('[poll]\nkeep_unmatched = "yes"\n', "poll.keep_unmatched", "true or false"),
        ('[poll]\nconcurrency = "32"\n', "poll.concurrency", "an integer"),
        ("[poll]\nmax_redirects = 2.5\n", "poll.max_redirects", "an integer"),
        ('feeds = "https://one.example/rss.xml"\n', "feeds", "an array"),
        ("poll = 5\n", "poll", "a table"),
        ('[[feeds]]\nurl = "https://one.example/"\nenabled = 1\n', "feeds[0].enabled", "true"),
        ("[[feeds]]\nurl = 42\n", "feeds[0].url", "a string"),
        (
            '[[topics]]\nname = "t"\ntitle = "T"\nquery = "Kant"\nkeywords = "Kant"\n',
            "topics[0].keywords",
            "an array",
        ),
    ],
)
def test_wrong_type_names_the_key_and_what_was_expected(
    tmp_path: Path, body: str, key: str, expected: str
) -> None:
    """A value of the wrong TOML type is refused, not coerced, and the message says why."""
    error = config_error(write(tmp_path, body))
    assert error.key == key
    assert f"expected {expected}" in error.problem
    assert str(error).startswith(f"{tmp_path / 'watcher.toml'}: {key}: ")


def test_bad_duration_in_a_feed_names_the_key(tmp_path: Path) -> None:
    """An interval that is not a duration is reported on feeds[0].interval."""
    path = write(tmp_path, '[[feeds]]\nurl = "https://one.example/"\ninterval = "often"\n')
    error = config_error(path)
    assert error.key == "feeds[0].interval"
    assert "'often'" in error.problem


def test_invalid_fts5_query_in_a_topic_is_refused(tmp_path: Path) -> None:
    """A topic query FTS5 cannot parse is a config error on topics[i].query."""
    path = write(
        tmp_path,
        TOPIC + '\n[[topics]]\nname = "broken"\ntitle = "B"\nquery = \'"Kant AND base\'\n',
    )
    error = config_error(path)
    assert error.key == "topics[1].query"
    assert "FTS5" in error.problem


def test_feed_with_an_unknown_topic_is_refused(tmp_path: Path) -> None:
    """A feed naming a topic that is not defined lists the topics that are."""
    path = write(
        tmp_path, TOPIC + '\n[[feeds]]\nurl = "https://one.example/"\ntopics = ["kant", "nope"]\n'
    )
    error = config_error(path)
    assert error.key == "feeds[0].topics"
    assert "'nope'" in error.problem
    assert "'kant'" in error.problem


@pytest.mark.parametrize(
    "url", ["ftp://one.example/rss.xml", "file:///etc/passwd", "one.example/rss", "https://"]
)
def test_feed_url_must_be_absolute_http(tmp_path: Path, url: str) -> None:
    """Only absolute http(s) feed URLs are accepted."""
    error = config_error(write(tmp_path, f'[[feeds]]\nurl = "{url}"\n'))
    assert error.key == "feeds[0].url"
    assert "http" in error.problem


def test_duplicate_feed_is_refused(tmp_path: Path) -> None:
    """The same URL listed twice (even with stray spaces) names the second entry."""
    path = write(
        tmp_path,
        '[[feeds]]\nurl = "https://one.example/f"\n[[feeds]]\nurl = " https://one.example/f "\n',
    )
    error = config_error(path)
    assert error.key == "feeds[1].url"
    assert "duplicate" in error.problem


def test_duplicate_topic_name_is_refused(tmp_path: Path) -> None:
    """Two topics with one name cannot be told apart in item_topics."""
    error = config_error(write(tmp_path, TOPIC + TOPIC))
    assert error.key == "topics[1].name"


def test_missing_required_key_is_named(tmp_path: Path) -> None:
    """A topic without a query names topics[0].query as missing."""
    error = config_error(write(tmp_path, '[[topics]]\nname = "t"\ntitle = "T"\n'))
    assert error.key == "topics[0].query"
    assert "missing" in error.problem


def test_several_problems_report_the_first_and_count_the_rest(tmp_path: Path) -> None:
    """Two bad values: the first is named, the other counted."""
    error = config_error(write(tmp_path, "[poll]\nconcurrency = 0\nper_host = 0\n"))
    assert error.key == "poll.concurrency"
    assert "(and 1 more problem)" in error.problem


def test_missing_file_is_named(tmp_path: Path) -> None:
    """A config path that does not exist says so and names the path."""
    path = tmp_path / "absent.toml"
    error = config_error(path)
    assert str(error) == f"{path}: file not found"


def test_invalid_toml_is_named_with_its_line(tmp_path: Path) -> None:
    """A TOML syntax error names the file and where the parser stopped."""
    path = write(tmp_path, '[poll]\nkeep_unmatched = \n[[feeds]]\nurl = "https://a.example/"\n')
    error = config_error(path)
    assert error.path == str(path)
    assert "not valid TOML" in error.problem
    assert "line 2" in error.problem


def test_non_utf8_file_is_refused(tmp_path: Path) -> None:
    """A config saved in a legacy encoding is reported as not UTF-8, not misread."""
    path = tmp_path / "watcher.toml"
    path.write_bytes(
        '[[topics]]\nname = "t"\ntitle = "Авиабаза"\nquery = "Kant"\n'.encode("cp1251")
    )
    error = config_error(path)
    assert str(error) == f"{path}: not UTF-8 text"


DIGEST_BASE = """
[[topics]]
name = "harbour"
title = "Harbour"
query = "Velmar"
"""


def test_digest_and_smtp_sections_are_read(tmp_path: Path) -> None:
    """A digest with its topics, recipients and schedule, and the SMTP server, load."""
    config = load_config(
        write(
            tmp_path,
            DIGEST_BASE
            + textwrap.dedent(
                """
                [[digests]]
                name = "morning"
                topics = ["harbour"]
                to = ["analyst@news.example", "Desk <desk@news.example>"]
                schedule = "30 6 * * mon-fri"
                timezone = "Asia/Bishkek"
                first_lookback = "3d"
                max_stories = 10

                [smtp]
                host = "mail.news.example"
                security = "tls"
                user = "watcher"
                password_env = "WATCHER_SMTP_PASSWORD"
                from_address = "watcher@news.example"
                """
            ),
        )
    )
    digest = config.digest("morning")
    assert digest.topics == ("harbour",)
    assert digest.first_lookback == 3 * 86400
    assert digest.send_empty is False
    assert "{{ stories }}" in digest.subject
    assert config.smtp is not None
    assert config.smtp.effective_port == 465
    # 06:30 in Bishkek (UTC+6) is 00:30 UTC; Saturday 2026-03-07 is skipped to Monday
    after = datetime(2026, 3, 6, 1, 0, tzinfo=UTC)
    from watcher.daemon import configured_jobs
    from watcher.daemon.plan import cron_trigger

    (job,) = configured_jobs(config, Path("unused.db"))  # the trigger the daemon schedules
    fire = cron_trigger(job.crontab, job.timezone).get_next_fire_time(None, after)
    assert fire.astimezone(UTC) == datetime(2026, 3, 9, 0, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("toml", "key", "words"),
    [
        (
            '[smtp]\nhost = "h"\nfrom_address = "w@x.example"\npassword = "hunter2"\n',
            "smtp.password",
            "password_env",
        ),
        (
            '[[digests]]\nname = "d"\nto = ["a@b.example"]\nschedule = "every morning"\n',
            "digests[0].schedule",
            "crontab",
        ),
        (
            '[[digests]]\nname = "d"\nto = ["a@b.example"]\nschedule = "0 25 * * *"\n',
            "digests[0].schedule",
            "crontab",
        ),
        (
            '[[digests]]\nname = "d"\nto = ["not an address"]\nschedule = "0 7 * * *"\n',
            "digests[0].to[0]",
            "mail address",
        ),
        (
            '[[digests]]\nname = "d"\nto = ["a@b.example"]\nschedule = "0 7 * * *"\n'
            'topics = ["sports"]\n',
            "digests[0].topics",
            "unknown topic 'sports'",
        ),
        (
            '[[digests]]\nname = "d"\nto = ["a@b.example"]\nschedule = "0 7 * * *"\n'
            'subject = "{{ nonsense }}"\n',
            "digests[0].subject",
            "may use name, stories",
        ),
        (
            '[[digests]]\nname = "d"\nto = ["a@b.example"]\nschedule = "0 7 * * *"\n' * 2,
            "digests[1].name",
            "duplicate digest name",
        ),
        (
            '[smtp]\nhost = "h"\nfrom_address = "w@x.example"\npassword_env = "P"\n',
            "smtp.user",
            "no user",
        ),
        (
            '[[digests]]\nname = "d"\nto = ["a@b.example"]\nschedule = "0 7 * * *"\n'
            'timezone = "Mars/Olympus"\n',
            "digests[0].timezone",
            "IANA time zone",
        ),
        (
            '[[digests]]\nname = "d"\nto = ["a@b.example"]\nschedule = "0 7 * * *"\ntopics = []\n',
            "digests[0].topics",
            "at least one topic",
        ),
    ],
)
def test_bad_digest_and_smtp_settings_name_the_key(
    tmp_path: Path, toml: str, key: str, words: str
) -> None:
    """Each mistake in [[digests]] or [smtp] names its key and says what is expected."""
    error = config_error(write(tmp_path, DIGEST_BASE + toml))
    assert error.key == key
    assert words in error.problem
