"""The daemon's log lines: ``key=value`` text or JSON lines, one event per line.

Both read the same records: a message naming the event (``poll``, ``reload``, ...) and its
fields as logging ``extra``, so journald, ``grep`` and log shippers all get flat fields.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Literal

from pythonjsonlogger.json import JsonFormatter

from watcher.display import escaped, terminal_safe

LogFormat = Literal["text", "json"]

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}
QUIET = ("apscheduler", "httpx", "httpcore")
"""Libraries that log every job run or request at INFO: the poll line already says it."""


def _fields(record: logging.LogRecord) -> dict[str, object]:
    return {key: value for key, value in record.__dict__.items() if key not in _STANDARD}


def _text(value: object) -> str:
    """A field's value: bare when it is one plain word, else quoted as JSON; control
    characters and direction overrides from a feed are escaped either way."""
    if value is None:
        return "-"
    text = str(value)
    if not text or any(c.isspace() or c in '"=\\' for c in text) or terminal_safe(text) != text:
        text = json.dumps(text, ensure_ascii=False)
    return escaped(text)


class KeyValueFormatter(logging.Formatter):
    """``2026-11-20T09:00:00Z info poll feed=https://… status=ok new_items=3 duration_ms=41``."""

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        parts = [moment, record.levelname.lower(), _text(record.getMessage())]
        parts += [f"{key}={_text(value)}" for key, value in _fields(record).items()]
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def formatter(log_format: LogFormat) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter(
            "{levelname}{name}{message}",
            style="{",
            rename_fields={"levelname": "level", "name": "logger", "message": "event"},
            timestamp="time",
            json_ensure_ascii=False,
        )
    return KeyValueFormatter()


def configure(log_format: LogFormat, *, verbose: bool = False) -> None:
    """Send the daemon's records to stderr in ``log_format``.

    The pipeline's own line per refresh is left to ``-v``: the daemon writes its ``poll``
    line for each refresh, with the next due time.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    logging.getLogger("watcher.refresh").setLevel(logging.INFO if verbose else logging.WARNING)
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
