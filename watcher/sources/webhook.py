"""POST one JSON alert to a webhook and say whether it was taken; the HTTP half of alerts.

A 2xx answer is a delivery; anything else (an error status, a redirect, a timeout, a
refused connection) raises :class:`~watcher.errors.AlertError`, to be recorded and
retried by the caller. The answer's body is never read beyond its status.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from types import TracebackType

import httpx

from watcher.errors import AlertError
from watcher.sources.fetch import parse_retry_after


class WebhookSender:
    """One HTTP client for a delivery run; each POST is bounded by ``timeout`` seconds."""

    def __init__(
        self,
        *,
        user_agent: str,
        timeout: float,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._client = httpx.Client(
            follow_redirects=False,
            timeout=httpx.Timeout(timeout),
            headers={"User-Agent": user_agent},
            transport=transport,
        )

    def __enter__(self) -> WebhookSender:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def post(
        self,
        target: str,
        url: str,
        body: Mapping[str, object],
        headers: Mapping[str, str] | None = None,
    ) -> int:
        """POST ``body`` as JSON; the HTTP status when it was taken, else AlertError."""
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        sent_headers = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
        try:
            with self._client.stream("POST", url, content=data, headers=sent_headers) as answer:
                status = answer.status_code
                retry_after = answer.headers.get("retry-after")
        except httpx.TimeoutException as error:
            raise AlertError(target, f"timed out ({type(error).__name__})") from None
        except (httpx.HTTPError, httpx.InvalidURL, UnicodeError) as error:
            raise AlertError(target, f"{type(error).__name__}: {error}") from None
        if 200 <= status < 300:
            return status
        message = f"HTTP {status}"
        if 300 <= status < 400:
            message += " redirect (webhooks are not followed; update the URL)"
        wait = parse_retry_after(retry_after, datetime.now(UTC))
        raise AlertError(target, message, retry_after=wait)
