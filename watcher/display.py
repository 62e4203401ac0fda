"""Text from outside (feeds, servers, imported documents) made safe to show in a terminal.

A feed title can hold Rich markup (``[/]`` stops a table, ``[bold red]`` restyles it),
escape sequences that move the cursor or set the window title, and Unicode direction
overrides that reorder what is shown. Every such string goes through here on its way to
the terminal; Rich renders a :class:`~rich.text.Text` as it is, never as markup.
"""

from __future__ import annotations

import re

from rich.text import Text

_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
"""C0 and C1 control characters (but tab and newline), DEL, and the bidirectional marks
and overrides."""
_LINE_BREAKS = re.compile(r"[\t\n\u2028\u2029]+")


def terminal_safe(text: object, *, one_line: bool = False) -> str:
    """``text`` without control characters; ``one_line`` also folds line breaks to spaces."""
    value = _UNSAFE.sub("", "" if text is None else str(text))
    return _LINE_BREAKS.sub(" ", value) if one_line else value


def cell(text: object) -> Text:
    """A table cell for outside text: one line, no control characters, never markup."""
    return Text(terminal_safe(text, one_line=True))


def escaped(text: str) -> str:
    """``text`` with each unsafe character written as a ``\\uXXXX`` escape: for log lines,
    where what a feed sent must stay visible but never act on the terminal."""
    return _UNSAFE.sub(lambda found: f"\\u{ord(found.group()):04x}", text)
