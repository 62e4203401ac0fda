"""Load ``watcher.toml`` into validated settings; every error names the file and the key."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
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

from watcher.errors import ConfigError, QueryError
from watcher.similarity import DEFAULT_SETTINGS as _SIMILARITY

DEFAULT_CONFIG_PATH = Path("config/watcher.toml")
DEFAULT_DB_PATH = Path("db/watcher.db")

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
ZeroOrDuration = Annotated[float, BeforeValidator(_zero_or_duration)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TopicConfig(_Section):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    title: str
    query: str
    keywords: tuple[str, ...] = ()
    aliases: dict[str, tuple[str, ...]] = Field(default_factory=dict)

    @field_validator("query")
    @classmethod
    def _query_is_valid(cls, query: str) -> str:
        from watcher.match import validate_query

        try:
            validate_query(query)
        except QueryError as error:
            raise ValueError(f"not a valid FTS5 boolean query ({error.reason})") from None
        return query


class FeedConfig(_Section):
    url: str
    title: str | None = None
    topics: tuple[str, ...] | None = None
    interval: Duration | None = None
    enabled: StrictBool = True

    @field_validator("url")
    @classmethod
    def _http_only(cls, url: str) -> str:
        from watcher.normalize import is_http_url

        if not is_http_url(url):
            raise ValueError(f"expected an absolute http:// or https:// URL, got {url!r}")
        return url.strip()


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
    user_agent: str = "watcher/0.1 (media-monitoring feed watcher)"


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

    @field_validator("duplicate_window", mode="before")
    @classmethod
    def _whole_corpus(cls, value: object) -> object:
        return None if value in ("all", "forever") else value


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
    daemon: DaemonConfig = DaemonConfig()

    @model_validator(mode="after")
    def _cross_references(self) -> Config:
        names = [topic.name for topic in self.topics]
        for index, name in enumerate(names):
            if names.index(name) != index:
                raise _KeyedError(f"topics[{index}].name", f"duplicate topic name {name!r}")
        seen_urls: set[str] = set()
        for index, feed in enumerate(self.feeds):
            if feed.url in seen_urls:
                raise _KeyedError(f"feeds[{index}].url", f"duplicate feed {feed.url!r}")
            seen_urls.add(feed.url)
            for topic in feed.topics or ():
                if topic not in names:
                    raise _KeyedError(
                        f"feeds[{index}].topics",
                        f"unknown topic {topic!r}; expected one of {names}",
                    )
        return self

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
