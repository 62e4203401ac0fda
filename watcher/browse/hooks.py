"""Datasette plugin hooks for watcher's instances: links between pages, lists as chips,
what the project's templates show, no writes over HTTP.

Every hook acts only on an instance built by :func:`watcher.browse.build_datasette` (its
metadata carries the ``watcher-browse`` plugin block); other values are left to Datasette,
which escapes text and links only http(s) URLs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs, urlencode

from datasette import hookimpl
from markupsafe import Markup, escape

from watcher.browse import pages
from watcher.browse.metadata import PLUGIN_NAME
from watcher.normalize import followable

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Any]

ITEM_COLUMNS = frozenset({"item_id", "duplicate_of", "lead_item_id"})
LIST_COLUMNS = frozenset({"topics", "tags", "places", "orgs", "keywords"})
"""Columns holding a JSON list of names: shown as chips, never as a JSON array."""
PLAIN_URL_COLUMNS = frozenset({"canonical_url"})
"""URLs shown as text: the cleaned form of a link need not open (http became https)."""
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
    if column in LIST_COLUMNS and isinstance(value, str) and value.startswith("["):
        names = pages.json_list(value)
        return Markup(
            '<span class="chips">'
            + "".join(f'<span class="chip">{escape(name)}</span>' for name in names)
            + "</span>"
        )
    if column in PLAIN_URL_COLUMNS and isinstance(value, str):
        return Markup(f'<span class="plain-url">{escape(value)}</span>')
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
def prepare_jinja2_environment(env: Any, datasette: Any) -> None:
    """Filters for the project's templates (watcher/browse/templates)."""
    env.filters["when"] = pages.when
    env.filters["day"] = lambda value: pages.when(value, with_time=False)
    env.filters["json_list"] = pages.json_list
    env.filters["http_url"] = followable
    env.filters["one_line"] = pages.one_line
    env.filters["counted"] = pages.counted


@hookimpl  # type: ignore[untyped-decorator]
def extra_template_vars(datasette: Any, database: str | None) -> dict[str, Any]:
    """``watcher``: what the project's templates read beyond a page's rows (pages.Reader).

    Only on watcher's instance, and on its index page or a page of the served database;
    the templates fall back to Datasette's own when it is missing.
    """
    served = _served(datasette)
    if served is None or database not in (None, served):
        return {}
    return {"watcher": pages.Reader(datasette, served)}


async def _story_moved(datasette: Any, served: str, scope: Scope) -> str | None:
    """Where a story's page is now when its id was merged into another story (or split off
    and back): the same page with the story's current id; None for anything else."""
    if scope.get("path") != datasette.urls.table(served, "news"):
        return None
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    values = query.get("story_id", [])
    if len(values) != 1 or not values[0].isdigit():
        return None
    current = await pages.current_story(datasette, served, int(values[0]))
    if current is None or current == int(values[0]):
        return None
    query["story_id"] = [str(current)]
    return f"{scope['path']}?{urlencode(query, doseq=True)}"


@hookimpl  # type: ignore[untyped-decorator]
def asgi_wrapper(datasette: Any) -> Callable[[ASGIApp], ASGIApp]:
    """Answer every request but GET and HEAD with 405: browsing never changes the database.
    A link to a story that was merged into another leads to the story it is part of now.

    Datasette 0.65 would run a read-only canned query for a POST too, then fail with a 500.
    """

    def wrap(app: ASGIApp) -> ASGIApp:
        async def read_only(scope: Scope, receive: Any, send: Any) -> Any:
            served = _served(datasette)
            if scope.get("type") == "http" and served is not None:
                moved = await _story_moved(datasette, served, scope)
                if moved is not None:
                    await send(
                        {
                            "type": "http.response.start",
                            "status": 302,
                            "headers": [(b"location", moved.encode())],
                        }
                    )
                    await send({"type": "http.response.body", "body": b""})
                    return None
            if (
                scope.get("type") == "http"
                and scope.get("method") not in READ_METHODS
                and served is not None
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
