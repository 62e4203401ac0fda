"""Load ``watcher.toml`` into validated settings; every error names the file and the key."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from watcher.dedupe_settings import DEFAULT_SETTINGS as _SIMILARITY
from watcher.errors import ConfigError, QueryError

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: object) -> float:
    """Seconds from ``"15m"``, ``"2h"``, ``"1h30m"``, ``"45s"``, ``"1d"`` or a number of seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like '15m' or '2h', got a boolean")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower()
        parts = _DURATION_PART.findall(text)
        if not parts or _DURATION_PART.sub("", text).strip():
            raise ValueError(f"expected a duration like '15m', '2h' or '1h30m', got {value!r}")
        seconds = sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)
    else:
        raise ValueError(f"expected a duration like '15m' or '2h', got {type(value).__name__}")
    if seconds <= 0:
        raise ValueError(f"expected a positive duration, got {value!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """``5400`` → ``"1h30m"``: the short form the config uses, to whole seconds."""
    rest = round(seconds)
    if rest <= 0:
        return f"{seconds:g}s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            count, rest = divmod(rest, size)
            parts.append(f"{count}{unit}")
    return "".join(parts)


def _zero_or_duration(value: object) -> float:
    if value in (0, "0") or (isinstance(value, str) and re.fullmatch(r"\s*0+\s*[a-z]*\s*", value)):
        return 0.0
    return parse_duration(value)


Duration = Annotated[float, BeforeValidator(parse_duration)]
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
ZeroOrDuration = Annotated[float, BeforeValidator(_zero_or_duration)]


def _http_url(url: str) -> str:
    from watcher.normalize import is_http_url

    if not is_http_url(url):
        raise ValueError(f"expected an absolute http:// or https:// URL, got {url!r}")
    return url.strip()


HttpURL = Annotated[str, AfterValidator(_http_url)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TopicConfig(_Section):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    title: str
    query: str
    keywords: tuple[str, ...] = ()
    aliases: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    alert: StrictBool = False

    @field_validator("query")
    @classmethod
    def _query_is_valid(cls, query: str) -> str:
        from watcher.match import validate_query

        try:
            validate_query(query)
        except QueryError as error:
            raise ValueError(f"not a valid FTS5 boolean query ({error.reason})") from None
        return query


FullTextMode = Literal["always", "auto", "never"]


class FeedConfig(_Section):
    url: HttpURL
    title: str | None = None
    topics: tuple[str, ...] | None = None
    interval: Duration | None = None
    enabled: StrictBool = True
    full_text: FullTextMode | None = None
    """None: ``[full_text].mode``."""
    dedicated: StrictBool = False
    """Every item of the feed is about its topics: all get full text, not only the matched."""


class PollConfig(_Section):
    keep_unmatched: StrictBool = False
    default_interval: Duration = 1800.0
    concurrency: StrictInt = Field(default=32, ge=1, le=512)
    per_host: StrictInt = Field(default=4, ge=1, le=64)
    connect_timeout: Duration = 10.0
    read_timeout: Duration = 30.0
    deadline: Duration = 90.0
    max_bytes: StrictInt = Field(default=10_000_000, ge=1024)
    max_redirects: StrictInt = Field(default=5, ge=0, le=20)
    max_backoff: Duration = 43200.0
    workers: StrictInt = Field(default=0, ge=0, le=64)
    parse_timeout: Duration = 60.0
    executor: str = "local"
    """Where feeds are prepared: ``"local"`` (the process pool) or a Dask scheduler's
    address, ``"tcp://HOST:PORT"`` (watcher/dask_pool.py, docs/scaling.md)."""
    user_agent: str = "watcher/0.1 (media-monitoring feed watcher)"
    keep_fetches: Duration | None = 90 * 86400.0
    """How long a row of the fetch log is kept (each feed's newest rows always are); None
    (``"all"``): forever."""

    @field_validator("keep_fetches", mode="before")
    @classmethod
    def _keep_all(cls, value: object) -> object:
        return None if value in ("all", "forever") else value


class FullTextConfig(_Section):
    """Defaults and limits of article downloads for feeds that carry only headlines
    (docs/fulltext.md)."""

    mode: FullTextMode = "never"
    short_words: StrictInt = Field(default=80, ge=1, le=100_000)
    per_host: StrictInt = Field(default=2, ge=1, le=64)
    timeout: Duration = 20.0
    max_bytes: StrictInt = Field(default=5_000_000, ge=1024)
    user_agent: str | None = None
    cache_lifetime: Duration = 30 * 86400.0
    retry_failed_after: Duration = 86400.0


Fraction = Annotated[float, Field(ge=0.0, le=1.0, strict=True)]


class DedupeConfig(_Section):
    """Thresholds and windows of near-duplicate and story detection (docs/dedupe.md).

    The defaults are :data:`watcher.similarity.DEFAULT_SETTINGS`, where they are explained;
    this section only validates what a user overrides.
    """

    duplicate_threshold: Fraction = _SIMILARITY.duplicate_threshold
    containment_threshold: Fraction = _SIMILARITY.containment_threshold
    containment_min_jaccard: Fraction = _SIMILARITY.containment_min_jaccard
    duplicate_window: Duration | None = _SIMILARITY.duplicate_window
    story_window: Duration = _SIMILARITY.story_window
    phrase_threshold: Fraction = _SIMILARITY.phrase_threshold
    phrase_min_terms: Fraction = _SIMILARITY.phrase_min_terms
    terms_threshold: Fraction = _SIMILARITY.terms_threshold
    title_threshold: Fraction = _SIMILARITY.title_threshold
    title_window: Duration = _SIMILARITY.title_window
    short_words: StrictInt = Field(default=_SIMILARITY.short_words, ge=0, le=10_000)
    story_threshold: Fraction = _SIMILARITY.story_threshold
    story_merge_threshold: Fraction = _SIMILARITY.story_merge_threshold
    story_names_share: Fraction = _SIMILARITY.story_names_share
    story_lexical_fallback: StrictBool = _SIMILARITY.story_lexical_fallback

    @field_validator("duplicate_window", mode="before")
    @classmethod
    def _whole_corpus(cls, value: object) -> object:
        return None if value in ("all", "forever") else value


def check_address(value: str) -> str:
    """One mail address (``a@b.example`` or ``Name <a@b.example>``), as the email package parses it."""
    from email.policy import default

    text = value.strip()
    problem = f"expected a mail address like 'analyst@example.org', got {value!r}"
    if not text or any(char in text for char in "\r\n,;"):
        raise ValueError(problem)
    try:
        header = default.header_factory("To", text)
    except (ValueError, IndexError):
        raise ValueError(problem) from None
    addresses: tuple[Any, ...] = getattr(header, "addresses", ())
    if header.defects or len(addresses) != 1:
        raise ValueError(problem)
    address = addresses[0]
    if not address.username or not address.domain:
        raise ValueError(problem)
    return text


MailAddress = Annotated[str, AfterValidator(check_address)]

DEFAULT_DIGEST_SUBJECT = (
    "watcher {{ name }}: {{ stories }} {{ 'story' if stories == 1 else 'stories' }}, "
    "{{ items }} {{ 'item' if items == 1 else 'items' }} ({{ date }})"
)
"""The subject when a digest sets none; the counts tell the reader what is inside."""

SUBJECT_FIELDS = ("name", "stories", "items", "sources", "topics", "date", "headline")
"""The variables a digest's ``subject`` template may use."""


class DigestConfig(_Section):
    """One digest mail: which topics, to whom, when, and how the subject reads."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    topics: tuple[str, ...] | None = None
    to: tuple[MailAddress, ...] = Field(min_length=1)
    schedule: str
    timezone: str = "UTC"
    subject: str = DEFAULT_DIGEST_SUBJECT
    first_lookback: Duration = 86400.0
    send_empty: StrictBool = False
    max_stories: StrictInt = Field(default=30, ge=1, le=1000)

    @field_validator("topics")
    @classmethod
    def _some_topics(cls, topics: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if topics is not None and not topics:
            raise ValueError("expected at least one topic name (leave the key out for every topic)")
        return topics

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"expected an IANA time zone like 'UTC' or 'Asia/Bishkek', got {zone!r}"
            ) from None
        return zone

    @field_validator("schedule")
    @classmethod
    def _crontab(cls, schedule: str) -> str:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(schedule, timezone="UTC")
        except ValueError as error:
            raise ValueError(
                f"expected a 5-field crontab like '0 7 * * *' (minute hour day month weekday), "
                f"got {schedule!r}: {error}"
            ) from None
        return schedule

    @field_validator("subject")
    @classmethod
    def _subject_template(cls, subject: str) -> str:
        from jinja2 import StrictUndefined, TemplateError
        from jinja2.sandbox import SandboxedEnvironment

        sample = {
            "name": "n",
            "stories": 2,
            "items": 3,
            "sources": 2,
            "topics": "t",
            "date": "d",
            "headline": "h",
        }
        try:
            SandboxedEnvironment(undefined=StrictUndefined).from_string(subject).render(sample)
        except TemplateError as error:
            raise ValueError(
                f"not a valid subject template ({error}); it may use {', '.join(SUBJECT_FIELDS)}"
            ) from None
        return subject


class SmtpConfig(_Section):
    """The mail server digests go through; the password never lives in this file."""

    host: str = Field(min_length=1)
    port: StrictInt | None = Field(default=None, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    user: str | None = None
    password_env: str | None = None
    password_file: Path | None = None
    from_address: MailAddress
    timeout: Duration = 30.0

    @model_validator(mode="before")
    @classmethod
    def _no_password(cls, data: Any) -> Any:
        if isinstance(data, dict) and "password" in data:
            raise _KeyedError(
                "smtp.password",
                "a password is not kept in the config file; set password_env (the name of "
                "an environment variable) or password_file (a file only you can read)",
            )
        return data

    @model_validator(mode="after")
    def _one_password_source(self) -> SmtpConfig:
        if self.password_env and self.password_file:
            raise _KeyedError("smtp.password_file", "give password_env or password_file, not both")
        if (self.password_env or self.password_file) and not self.user:
            raise _KeyedError("smtp.user", "a password is set but no user to log in as")
        return self

    @property
    def effective_port(self) -> int:
        """The port given, else the usual one for the security mode."""
        if self.port is not None:
            return self.port
        return {"starttls": 587, "tls": 465, "none": 25}[self.security]


class ServeConfig(_Section):
    """``watcher serve``: where Datasette listens and what it lets a visitor do."""

    host: str = "127.0.0.1"
    port: StrictInt = Field(default=8001, ge=0, le=65535)
    allow_sql: StrictBool = False
    title: str | None = None
    metadata: str = "db/metadata.yml"


class WebhookConfig(_Section):
    """One instant-alert target that receives a JSON POST per new story (docs/alerts.md)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    url: HttpURL
    format: Literal["slack", "generic"] = "generic"
    topics: tuple[str, ...] | None = None
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("headers")
    @classmethod
    def _plain_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        for name, value in headers.items():
            if not _HEADER_NAME.fullmatch(name):
                raise ValueError(f"not a valid HTTP header name: {name!r}")
            if any(char in value for char in "\r\n\0"):
                raise ValueError(f"the value of header {name!r} has a line break")
        return headers


class EmailAlertConfig(_Section):
    """One instant-alert target that receives a one-story mail per new story, through
    ``[smtp]`` (docs/alerts.md)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    to: tuple[MailAddress, ...] = Field(min_length=1)
    topics: tuple[str, ...] | None = None


class AlertsConfig(_Section):
    """Instant alerts: targets, and how deliveries are retried (docs/alerts.md)."""

    webhooks: tuple[WebhookConfig, ...] = ()
    emails: tuple[EmailAlertConfig, ...] = ()
    timeout: Duration = 10.0
    retry_delay: Duration = 60.0
    max_backoff: Duration = 3600.0
    max_age: Duration = 86400.0
    per_run: StrictInt = Field(default=50, ge=1, le=10_000)


class MetricsConfig(_Section):
    """The daemon's Prometheus endpoint (docs/metrics.md)."""

    enabled: StrictBool = False
    host: str = "127.0.0.1"
    port: StrictInt = Field(default=9464, ge=1, le=65535)


class DaemonConfig(_Section):
    """How ``watcher run`` schedules feeds, reloads its config and logs (docs/daemon.md)."""

    adaptive: StrictBool = True
    min_interval: Duration = 300.0
    max_interval: Duration = 86400.0
    jitter: ZeroOrDuration = 60.0
    reprobe_interval: Duration = 86400.0
    watch_config: Duration | None = 10.0
    log_format: Literal["text", "json"] = "text"

    @field_validator("watch_config", mode="before")
    @classmethod
    def _off(cls, value: object) -> object:
        return None if value in ("off", False) else value

    @model_validator(mode="after")
    def _bounds_in_order(self) -> DaemonConfig:
        if self.min_interval > self.max_interval:
            raise _KeyedError("daemon.min_interval", "must not be longer than max_interval")
        return self

    def interval_bounds(self, interval: float) -> tuple[float, float]:
        """The range a feed's adaptive interval moves in: the configured bounds, widened to
        include the feed's own interval (a feed set to poll every 30 s may stay at 30 s);
        one point, the interval itself, when ``adaptive`` is off."""
        if not self.adaptive:
            return interval, interval
        return min(self.min_interval, interval), max(self.max_interval, interval)


class Config(_Section):
    """The whole configuration. ``path`` is where it was read from, for messages."""

    path: str = ""
    topics: tuple[TopicConfig, ...] = ()
    feeds: tuple[FeedConfig, ...] = ()
    poll: PollConfig = PollConfig()
    dedupe: DedupeConfig = DedupeConfig()
    digests: tuple[DigestConfig, ...] = ()
    smtp: SmtpConfig | None = None

    serve: ServeConfig = ServeConfig()

    alerts: AlertsConfig = AlertsConfig()
    metrics: MetricsConfig = MetricsConfig()

    full_text: FullTextConfig = FullTextConfig()
    daemon: DaemonConfig = DaemonConfig()

    @model_validator(mode="after")
    def _cross_references(self) -> Config:
        names = [topic.name for topic in self.topics]
        for index, name in enumerate(names):
            if names.index(name) != index:
                raise _KeyedError(f"topics[{index}].name", f"duplicate topic name {name!r}")
        _check_entries("alerts.webhooks", self.alerts.webhooks, "name", "alert target", names)
        _check_entries("alerts.emails", self.alerts.emails, "name", "alert target", names)
        if self.alerts.emails and self.smtp is None:
            raise _KeyedError("alerts.emails", "mail alerts need an [smtp] section to send through")
        _check_entries("feeds", self.feeds, "url", "feed", names)
        _check_entries("digests", self.digests, "name", "digest name", names)
        return self

    def digest(self, name: str) -> DigestConfig:
        for digest in self.digests:
            if digest.name == name:
                return digest
        raise KeyError(name)

    def topic(self, name: str) -> TopicConfig:
        for topic in self.topics:
            if topic.name == name:
                return topic
        raise KeyError(name)


class _KeyedError(ValueError):
    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(problem)


def _check_entries(
    section: str, entries: Sequence[Any], key: str, what: str, topics: list[str]
) -> None:
    """Each entry of ``section`` has its own ``key`` and names only topics that exist."""
    seen: set[object] = set()
    for index, entry in enumerate(entries):
        value = getattr(entry, key)
        if value in seen:
            raise _KeyedError(f"{section}[{index}].{key}", f"duplicate {what} {value!r}")
        seen.add(value)
        for topic in entry.topics or ():
            if topic not in topics:
                raise _KeyedError(
                    f"{section}[{index}].topics",
                    f"unknown topic {topic!r}; expected one of {topics}",
                )


# pydantic's error types in the words of a TOML file
_TOML_TYPES = {
    "bool_type": "true or false",
    "int_type": "an integer",
    "float_type": "a number",
    "string_type": "a string",
    "tuple_type": "an array",
    "list_type": "an array",
    "dict_type": "a table",
    "model_type": "a table",
}


def _toml_value(value: object) -> str:
    kind = {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "array",
        dict: "table",
    }.get(type(value), type(value).__name__)
    return f"the {kind} {value!r}"


def _key_of(location: tuple[int | str, ...]) -> str:
    key = ""
    for part in location:
        if isinstance(part, int):
            key += f"[{part}]"
        else:
            key += f".{part}" if key else part
    return key


def config_from_dict(data: dict[str, Any], path: str = "<config>") -> Config:
    """Validate parsed TOML; raise ConfigError naming ``path`` and the first bad key."""
    try:
        return Config.model_validate({**data, "path": path})
    except ValidationError as error:
        first = error.errors()[0]
        context_error = first.get("ctx", {}).get("error")
        if isinstance(context_error, _KeyedError):
            raise ConfigError(path, context_error.key, context_error.problem) from None
        key = _key_of(first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; see docs/configuration.md)"
        elif first["type"] == "missing":
            message = "required key is missing"
        elif first["type"] in _TOML_TYPES:
            message = f"expected {_TOML_TYPES[first['type']]}, got {_toml_value(first['input'])}"
        elif "input" in first and first["type"] not in ("value_error",):
            message = f"{message}, got {first['input']!r}"
        more = len(error.errors()) - 1
        if more:
            message += f" (and {more} more problem{'s' if more > 1 else ''})"
        raise ConfigError(path, key, message) from None


def load_config(path: Path | str) -> Config:
    """Read and validate a TOML config file."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(str(path), "", "file not found") from None
    except OSError as error:
        raise ConfigError(str(path), "", f"cannot read: {error.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(str(path), "", "not UTF-8 text") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(str(path), "", f"not valid TOML: {error}") from None
    return config_from_dict(data, str(path))
