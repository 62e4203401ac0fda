"""Downloading one feed from a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import gzip
import time
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.conftest import kant_story, rss
from watcher.errors import (
    FetchError,
    FetchTimeout,
    HTTPStatusError,
    InvalidFeedURL,
    ResponseTooLarge,
    TooManyRedirects,
)
from watcher.models import FeedState, FetchResult
from watcher.sources.fetch import Fetcher, FetchSettings, parse_retry_after

FEED = rss([kant_story(1), kant_story(2)])
USER_AGENT = "watcher/0.1 (media-monitoring feed watcher)"


def fetch(
    url: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    **settings: float,
) -> FetchResult:
    """Fetch ``url`` once with a fresh Fetcher."""
    options: dict[str, float] = {"connect_timeout": 5.0, "read_timeout": 5.0, "deadline": 10.0}
    options.update(settings)

    async def run() -> FetchResult:
        async with Fetcher(FetchSettings(user_agent=USER_AGENT, **options)) as fetcher:  # type: ignore[arg-type]
            return await fetcher.fetch(
                FeedState(id=1, url=url, etag=etag, last_modified=last_modified)
            )

    return asyncio.run(run())


def redirect(httpserver: HTTPServer, path: str, status: int, location: str) -> None:
    httpserver.expect_request(path).respond_with_data(
        "", status=status, headers={"Location": location}
    )


def serve_feed(httpserver: HTTPServer, path: str = "/feed.xml") -> str:
    httpserver.expect_request(path).respond_with_data(FEED, content_type="application/rss+xml")
    return httpserver.url_for(path)


def test_plain_fetch_returns_the_body_and_validators(httpserver: HTTPServer) -> None:
    """A 200 answer gives the bytes, the headers and the ETag/Last-Modified to keep."""
    httpserver.expect_request("/feed.xml").respond_with_data(
        FEED,
        content_type="application/rss+xml",
        headers={"ETag": '"v1"', "Last-Modified": "Wed, 11 Oct 2023 08:00:00 GMT"},
    )
    url = httpserver.url_for("/feed.xml")
    result = fetch(url)
    assert result.status == 200
    assert result.body == FEED
    assert not result.not_modified
    assert result.final_url == url
    assert result.permanent_url is None
    assert result.etag == '"v1"'
    assert result.last_modified == "Wed, 11 Oct 2023 08:00:00 GMT"
    assert result.headers["content-type"].startswith("application/rss+xml")


def test_user_agent_names_watcher(httpserver: HTTPServer) -> None:
    """Publishers can see who is polling them."""
    seen: list[Request] = []

    def handler(request: Request) -> Response:
        seen.append(request)
        return Response(FEED, content_type="text/xml")

    httpserver.expect_request("/ua.xml").respond_with_handler(handler)
    fetch(httpserver.url_for("/ua.xml"))
    assert seen[0].headers["User-Agent"].startswith("watcher/")
    assert "rss+xml" in seen[0].headers["Accept"]


def test_conditional_get_sends_validators_and_304_is_not_modified(
    httpserver: HTTPServer,
) -> None:
    """The stored ETag and Last-Modified go out; a 304 comes back as not_modified, no body."""
    stamp = "Wed, 11 Oct 2023 08:00:00 GMT"
    seen: dict[str, str | None] = {}

    def handler(request: Request) -> Response:
        seen["etag"] = request.headers.get("If-None-Match")
        seen["since"] = request.headers.get("If-Modified-Since")
        return Response(status=304, headers={"ETag": '"v2"'})

    httpserver.expect_request("/cond.xml").respond_with_handler(handler)
    result = fetch(httpserver.url_for("/cond.xml"), etag='"v1"', last_modified=stamp)
    assert seen == {"etag": '"v1"', "since": stamp}
    assert result.not_modified
    assert result.status == 304
    assert result.body == b""
    assert result.etag == '"v2"'
    assert result.last_modified == stamp


def test_no_validators_means_no_conditional_headers(httpserver: HTTPServer) -> None:
    """A feed fetched for the first time asks unconditionally."""
    seen: list[Request] = []

    def handler(request: Request) -> Response:
        seen.append(request)
        return Response(FEED, content_type="text/xml")

    httpserver.expect_request("/first.xml").respond_with_handler(handler)
    fetch(httpserver.url_for("/first.xml"))
    assert "If-None-Match" not in seen[0].headers
    assert "If-Modified-Since" not in seen[0].headers


@pytest.mark.parametrize("status", [404, 410, 500])
def test_error_status_raises_with_the_status(httpserver: HTTPServer, status: int) -> None:
    """A 4xx/5xx answer is an HTTPStatusError carrying the status code."""
    httpserver.expect_request("/err.xml").respond_with_data("no", status=status)
    with pytest.raises(HTTPStatusError) as caught:
        fetch(httpserver.url_for("/err.xml"))
    assert caught.value.status == status
    assert caught.value.retry_after is None
    assert f"HTTP {status}" in caught.value.message


def test_retry_after_in_seconds(httpserver: HTTPServer) -> None:
    """A 429 with Retry-After: 120 asks for two minutes."""
    httpserver.expect_request("/busy.xml").respond_with_data(
        "slow down", status=429, headers={"Retry-After": "120"}
    )
    with pytest.raises(HTTPStatusError) as caught:
        fetch(httpserver.url_for("/busy.xml"))
    assert caught.value.status == 429
    assert caught.value.retry_after == 120.0


def test_retry_after_as_http_date(httpserver: HTTPServer) -> None:
    """A 503 with Retry-After as an HTTP date asks for the time until that date."""
    when = datetime.now(UTC) + timedelta(hours=1)
    httpserver.expect_request("/down.xml").respond_with_data(
        "maintenance", status=503, headers={"Retry-After": format_datetime(when, usegmt=True)}
    )
    with pytest.raises(HTTPStatusError) as caught:
        fetch(httpserver.url_for("/down.xml"))
    assert caught.value.retry_after is not None
    assert 3500 < caught.value.retry_after <= 3600


def test_parse_retry_after_forms() -> None:
    """Seconds, a date in the future, a date in the past and junk."""
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    assert parse_retry_after("30", now) == 30.0
    assert parse_retry_after("Fri, 20 Nov 2026 12:10:00 GMT", now) == 600.0
    assert parse_retry_after("Fri, 20 Nov 2026 11:00:00 GMT", now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


@pytest.mark.parametrize("status", [301, 308])
def test_permanent_redirect_sets_the_new_url(httpserver: HTTPServer, status: int) -> None:
    """301 and 308 are followed and tell the caller where the feed now lives."""
    redirect(httpserver, "/moved.xml", status, "/feed.xml")
    new = serve_feed(httpserver)
    result = fetch(httpserver.url_for("/moved.xml"))
    assert result.body == FEED
    assert result.final_url == new
    assert result.permanent_url == new
    assert result.url == httpserver.url_for("/moved.xml")


@pytest.mark.parametrize("status", [302, 303, 307])
def test_temporary_redirect_keeps_the_old_url(httpserver: HTTPServer, status: int) -> None:
    """302/303/307 are followed but the feed keeps its address."""
    redirect(httpserver, "/for-now.xml", status, "/feed.xml")
    new = serve_feed(httpserver)
    result = fetch(httpserver.url_for("/for-now.xml"))
    assert result.final_url == new
    assert result.permanent_url is None


def test_permanent_then_temporary_redirect_moves_only_to_the_permanent_target(
    httpserver: HTTPServer,
) -> None:
    """After 301 → 302, the feed moves to the 301's target, not the temporary one."""
    redirect(httpserver, "/a.xml", 301, "/b.xml")
    redirect(httpserver, "/b.xml", 302, "/feed.xml")
    serve_feed(httpserver)
    result = fetch(httpserver.url_for("/a.xml"))
    assert result.permanent_url == httpserver.url_for("/b.xml")


@pytest.mark.parametrize(
    "location",
    ["ftp://files.example/feed.xml", "file:///etc/passwd", "javascript:alert(1)", "data:,x"],
)
def test_redirect_to_a_non_http_url_is_refused(httpserver: HTTPServer, location: str) -> None:
    """A redirect may not lead out of http(s)."""
    redirect(httpserver, "/sneaky.xml", 302, location)
    with pytest.raises(InvalidFeedURL, match="non-http"):
        fetch(httpserver.url_for("/sneaky.xml"))


def test_redirect_without_location_is_an_error(httpserver: HTTPServer) -> None:
    """A 302 with nowhere to go is a fetch error, not a crash."""
    httpserver.expect_request("/nowhere.xml").respond_with_data("", status=302)
    with pytest.raises(FetchError, match="without a Location"):
        fetch(httpserver.url_for("/nowhere.xml"))


def test_max_redirects_is_respected(httpserver: HTTPServer) -> None:
    """Three hops pass with max_redirects = 3 and fail with 2."""
    redirect(httpserver, "/r1.xml", 302, "/r2.xml")
    redirect(httpserver, "/r2.xml", 302, "/r3.xml")
    redirect(httpserver, "/r3.xml", 302, "/feed.xml")
    serve_feed(httpserver)
    start = httpserver.url_for("/r1.xml")
    assert fetch(start, max_redirects=3).body == FEED
    with pytest.raises(TooManyRedirects, match="more than 2 redirects"):
        fetch(start, max_redirects=2)
    with pytest.raises(TooManyRedirects):
        fetch(start, max_redirects=0)


def test_redirect_loop_is_caught(httpserver: HTTPServer) -> None:
    """A → B → A stops at the loop however many hops are allowed."""
    redirect(httpserver, "/ping.xml", 302, "/pong.xml")
    redirect(httpserver, "/pong.xml", 302, "/ping.xml")
    with pytest.raises(TooManyRedirects, match="loop"):
        fetch(httpserver.url_for("/ping.xml"), max_redirects=20)


def test_declared_content_length_over_the_cap_is_refused_before_reading(
    httpserver: HTTPServer,
) -> None:
    """A body announced as too big is refused on its headers, not after downloading it."""

    def handler(_request: Request) -> Response:
        body = (b" " * 65536 for _ in range(200))
        return Response(body, content_type="text/xml", headers={"Content-Length": str(200 * 65536)})

    httpserver.expect_request("/big.xml").respond_with_handler(handler)
    with pytest.raises(ResponseTooLarge) as caught:
        fetch(httpserver.url_for("/big.xml"), max_bytes=100_000)
    # the streamed cap would say "body larger than"; the header check names Content-Length
    assert "Content-Length 13107200 is over the 100000-byte cap" in caught.value.message
    assert caught.value.kind == "too_large"


def test_undeclared_body_over_the_cap_is_cut_off(httpserver: HTTPServer) -> None:
    """A streamed body with no Content-Length stops at the cap."""

    def handler(_request: Request) -> Response:
        return Response((b"<rss>" + b" " * 8192 for _ in range(100)), content_type="text/xml")

    httpserver.expect_request("/stream.xml").respond_with_handler(handler)
    with pytest.raises(ResponseTooLarge, match="larger than 100000 bytes"):
        fetch(httpserver.url_for("/stream.xml"), max_bytes=100_000)


def test_gzip_bomb_is_caught(httpserver: HTTPServer) -> None:
    """A small gzip body that inflates past the cap is refused while inflating."""
    bomb = gzip.compress(b"<rss>" + b" " * 5_000_000)
    assert len(bomb) < 100_000
    httpserver.expect_request("/bomb.xml").respond_with_data(
        bomb, content_type="text/xml", headers={"Content-Encoding": "gzip"}
    )
    with pytest.raises(ResponseTooLarge, match="after decompression"):
        fetch(httpserver.url_for("/bomb.xml"), max_bytes=1_000_000)


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("gzip", gzip.compress),
        ("x-gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda data: zlib.compress(data, wbits=-zlib.MAX_WBITS)),
    ],
    ids=["gzip", "x-gzip", "zlib-deflate", "raw-deflate"],
)
def test_compressed_body_is_inflated(
    httpserver: HTTPServer, encoding: str, compress: Callable[[bytes], bytes]
) -> None:
    """gzip and deflate (with or without the zlib header) bodies arrive inflated."""
    httpserver.expect_request("/z.xml").respond_with_data(
        compress(FEED), content_type="text/xml", headers={"Content-Encoding": encoding}
    )
    assert fetch(httpserver.url_for("/z.xml")).body == FEED


def test_corrupt_gzip_is_a_fetch_error(httpserver: HTTPServer) -> None:
    """Bytes that claim to be gzip but are not give a clear error."""
    httpserver.expect_request("/corrupt.xml").respond_with_data(
        b"this is not gzip at all", content_type="text/xml", headers={"Content-Encoding": "gzip"}
    )
    with pytest.raises(FetchError, match="corrupt compressed body"):
        fetch(httpserver.url_for("/corrupt.xml"))


def test_slow_server_times_out(httpserver: HTTPServer) -> None:
    """A server slower than the read timeout is a FetchTimeout."""

    def slow(_request: Request) -> Response:
        time.sleep(1.0)
        return Response(FEED, content_type="text/xml")

    httpserver.expect_request("/slow.xml").respond_with_handler(slow)
    with pytest.raises(FetchTimeout):
        fetch(httpserver.url_for("/slow.xml"), read_timeout=0.3, deadline=0.5)


def test_closed_port_is_a_network_error() -> None:
    """Nobody listening is a FetchError of kind network."""
    with pytest.raises(FetchError) as caught:
        fetch("http://127.0.0.1:9/feed.xml")
    assert caught.value.kind == "network"


@pytest.mark.parametrize(
    "url", ["ftp://feeds.example/rss.xml", "file:///etc/passwd", "feeds.example/rss", ""]
)
def test_non_http_feed_url_is_refused_without_a_request(url: str) -> None:
    """Only absolute http(s) URLs are fetched."""
    with pytest.raises(InvalidFeedURL) as caught:
        fetch(url)
    assert caught.value.kind == "invalid_url"


def test_url_httpx_cannot_encode_is_an_invalid_feed_url() -> None:
    """A malformed host name is reported as an invalid feed URL, not an unexpected crash."""
    with pytest.raises(InvalidFeedURL, match="cannot be fetched"):
        fetch("http://xn--broken-.example/feed.xml")


def test_unknown_content_encoding_is_a_fetch_error(httpserver: HTTPServer) -> None:
    """A body in an encoding we did not ask for is refused by name, not parsed as garbage."""
    httpserver.expect_request("/br.xml").respond_with_data(
        b"\x1b\x00\x00", content_type="text/xml", headers={"Content-Encoding": "br"}
    )
    with pytest.raises(FetchError, match="unsupported Content-Encoding 'br'"):
        fetch(httpserver.url_for("/br.xml"))
