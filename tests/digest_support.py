"""Helpers for digest tests: a real SMTP server on 127.0.0.1 and JSONL corpora to import."""

from __future__ import annotations

import json
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

LABELLED = Path(__file__).resolve().parent / "fixtures" / "dedupe" / "labelled.jsonl"

# (labelled record, outlet). The flood report, its wire copy and a later write-up are one
# story; the port records are two unrelated stories.
FLOOD_STORY = {
    "brackenford-flood-orig": "Tessel Courier",
    "brackenford-flood-wire": "Northern Press",
    "brackenford-flood-followup": "Valley Radio",
}
PORT_STORIES = {
    "velmar-strike-orig": "Harbour Gazette",
    "velmar-strike-other": "Coast Daily",
}

DIGEST_TOPICS = """
[[topics]]
name = "floods"
title = "Floods on the Tessel"
query = 'Brackenford OR Tessel'
keywords = ["Brackenford", "River Tessel"]

[[topics]]
name = "port"
title = "Port of Velmar"
query = 'Velmar'
keywords = ["Velmar", "dockworkers"]
"""


def labelled(ids_and_sources: dict[str, str]) -> list[dict[str, Any]]:
    """Records of the dedupe fixture, each given an outlet and a URL of its own."""
    records = {
        record["id"]: record
        for record in map(json.loads, LABELLED.read_text(encoding="utf-8").splitlines())
    }
    out = []
    for record_id, source in ids_and_sources.items():
        record = records[record_id]
        host = source.lower().replace(" ", "")
        out.append(
            {
                "id": record_id,
                "title": record["title"],
                "text": record["text"],
                "published": record["published"],
                "source": source,
                "url": f"https://{host}.example/{record_id}",
                "lang": record["lang"],
            }
        )
    return out


def write_jsonl(path: Path, records: Sequence[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), "utf-8")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class MailSink:
    """An aiosmtpd handler that keeps what it receives, or refuses it while ``refuse`` is set."""

    received: list[tuple[Envelope, EmailMessage]] = field(default_factory=list)
    refuse: str | None = None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.refuse:
            return self.refuse
        data = envelope.original_content or b""
        parsed = message_from_bytes(data, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.received.append((envelope, parsed))
        return "250 OK"

    @property
    def messages(self) -> list[EmailMessage]:
        return [message for _, message in self.received]


def parts(message: EmailMessage) -> tuple[str, str]:
    """The plain-text and HTML bodies of a multipart/alternative digest."""
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None
    assert html is not None
    unix = str.maketrans({"\r": None})
    return str(text.get_content()).translate(unix), str(html.get_content()).translate(unix)


def smtp_toml(port: int, **extra: str) -> str:
    lines = [
        "[smtp]",
        'host = "127.0.0.1"',
        f"port = {port}",
        'security = "none"',
        'from_address = "watcher@newsroom.example"',
        'timeout = "10s"',
    ]
    lines += [f"{key} = {value}" for key, value in extra.items()]
    return "\n" + "\n".join(lines) + "\n"


def digest_toml(name: str = "daily", **extra: str) -> str:
    lines = [
        "[[digests]]",
        f'name = "{name}"',
        'to = ["analyst@newsroom.example", "Second Reader <second@newsroom.example>"]',
        'schedule = "0 7 * * *"',
    ]
    lines += [f"{key} = {value}" for key, value in extra.items()]
    return "\n" + "\n".join(lines) + "\n"
