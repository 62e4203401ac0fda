"""Datasette plugin hooks for watcher's instances: links between pages, no writes over HTTP.

Both hooks act only on an instance built by :func:`watcher.browse.build_datasette` (its
metadata carries the ``watcher-browse`` plugin block); other values are left to Datasette,
which escapes text and links only http(s) URLs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from datasette import hookimpl
from markupsafe import Markup, escape

from watcher.browse.metadata import PLUGIN_NAME

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Any]

ITEM_COLUMNS = frozenset({"item_id", "duplicate_of"})
READ_METHODS = frozenset({"GET", "HEAD"})


def _served(datasette: Any) -> str | None:
    config = datasette.plugin_config(PLUGIN_NAME)
    return config.get("database") if isinstance(config, dict) else None


@hookimpl  # type: ignore[untyped-decorator]
def render_cell(
    row: Any, value: Any, column: str, table: str | None, database: str, datasette: Any
) -> Markup | None:
    """Story numbers link to the story's items; item ids to the item's row page."""
    if database != _served(datasette):
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        return None
    if column == "story_id":
        href = f"{datasette.urls.table(database, 'news')}?story_id={value}"
        return Markup(f'<a href="{escape(href)}" title="every item of this story">{value}</a>')
    if column in ITEM_COLUMNS or (column == "id" and table == "news"):
        href = datasette.urls.row(database, "items", str(value))
        return Markup(f'<a href="{escape(href)}">{value}</a>')
    return None


@hookimpl  # type: ignore[untyped-decorator]
def asgi_wrapper(datasette: Any) -> Callable[[ASGIApp], ASGIApp]:
    """Answer every request but GET and HEAD with 405: browsing never changes the database.

    Datasette 0.65 would run a read-only canned query for a POST too, then fail with a 500.
    """

    def wrap(app: ASGIApp) -> ASGIApp:
        async def read_only(scope: Scope, receive: Any, send: Any) -> Any:
            if (
                scope.get("type") == "http"
                and scope.get("method") not in READ_METHODS
                and _served(datasette) is not None
            ):
                await send(
                    {
                        "type": "http.response.start",
                        "status": 405,
                        "headers": [
                            (b"content-type", b"text/plain; charset=utf-8"),
                            (b"allow", b"GET, HEAD"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": b"watcher serve is read-only\n"})
                return None
            return await app(scope, receive, send)

        return read_only

    return wrap
