"""Helpers for the browsing tests: a corpus imported through the CLI, a `watcher serve` process."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.conftest import Watcher, write_config

ROOT = Path(__file__).resolve().parents[1]
METADATA = ROOT / "db" / "metadata.yml"
FEED_URL = "https://feeds.example/never-polled.xml"


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def corpus_documents(now: datetime) -> list[dict[str, str]]:
    """JSONL documents written for these tests; recent ones are dated relative to ``now``."""
    drone_text = (
        "A squadron of reconnaissance drones has been moved to the Kant air base outside "
        "Bishkek, officials of the Kyrgyz defence ministry told reporters on Monday. The "
        "aircraft will fly patrols along the southern border of Kyrgyzstan and will be "
        "maintained by Russian technicians stationed at the base. The ministry said the "
        "transfer had been agreed under the existing treaty on the Russian military "
        "presence and that no new agreement was needed. Local residents near Kant said "
        "they had noticed more flights over the town during the past fortnight."
    )
    return [
        {
            "id": "drones-1",
            "url": "https://steppe-herald.example/2026/kant-drones",
            "title": "Reconnaissance drones moved to Kant air base",
            "text": drone_text,
            "published": _stamp(now - timedelta(days=1)),
            "source": "Steppe Herald",
            "lang": "en",
        },
        {
            # a wire copy of the first, lightly edited: a near-duplicate in the same story
            "id": "drones-wire",
            "url": "https://wire.example/kyrgyzstan/kant-drones-squadron",
            "title": "Drones moved to Kant air base, ministry says",
            "text": drone_text.replace("on Monday", "on Monday morning"),
            "published": _stamp(now - timedelta(days=1) + timedelta(hours=3)),
            "source": "Central Asia Wire",
            "lang": "en",
        },
        {
            # the first one again under a tracking URL: a sighting, not a new row
            "id": "drones-1-again",
            "url": "https://mirror.example/kant-drones?utm_source=feed",
            "title": "Reconnaissance drones moved to Kant air base",
            "text": drone_text,
            "published": _stamp(now - timedelta(days=1)),
            "source": "Steppe Herald",
            "lang": "en",
        },
        {
            "id": "csto-drill",
            "url": "https://steppe-herald.example/2026/csto-drill",
            "title": "CSTO air defence drill ends near Issyk-Kul",
            "text": (
                "Units from four member states of the CSTO finished a week of air defence "
                "exercises near lake Issyk-Kul in Kyrgyzstan. Crews from the Kant air base "
                "flew interception sorties against target drones launched from the shore. "
                "Observers from Bishkek called the drill the largest held in the region "
                "this year and praised the coordination of the radar crews."
            ),
            "published": _stamp(now - timedelta(days=20)),
            "source": "Steppe Herald",
            "lang": "en",
        },
        {
            "id": "ru-kant",
            "url": "https://vesti-kg.example/ru/kant-bespilotniki",
            "title": "На авиабазу Кант в Киргизии переброшены беспилотники",
            "text": (
                "Министерство обороны Киргизии сообщило, что на российскую авиабазу Кант "
                "под Бишкеком прибыли разведывательные беспилотники. По словам военных, "
                "аппараты будут патрулировать южную границу страны, а обслуживать их "
                "будут российские специалисты, которые служат на базе."
            ),
            "published": _stamp(now - timedelta(days=2)),
            "source": "Vesti KG",
            "lang": "ru",
        },
        {
            "id": "script-notice",
            "url": "https://odd-blog.example/kant-notice",
            "title": "Kant water notice <script>alert('title')</script>",
            "text": (
                "The town council of Kant in Kyrgyzstan posted a notice about repairs to "
                "the water main on Lenin street. <script>alert('text')</script> <b>Taps</b> "
                "will run dry on Thursday afternoon and tanker lorries will park by the market."
            ),
            "published": _stamp(now - timedelta(days=3)),
            "source": "Odd Blog",
            "lang": "en",
        },
    ]


def write_corpus(directory: Path, now: datetime) -> Path:
    path = directory / "corpus.jsonl"
    path.write_text(
        "".join(json.dumps(doc, ensure_ascii=False) + "\n" for doc in corpus_documents(now)),
        encoding="utf-8",
    )
    return path


@dataclass
class Corpus:
    """A database built by ``watcher corpus import`` of the documents above."""

    watcher: Watcher
    db: Path
    name: str


def build_corpus(directory: Path, db_name: str = "morning") -> Corpus:
    """Import the test corpus through the real CLI into ``directory/<db_name>.db``."""
    config = write_config(directory, [FEED_URL])
    watcher = Watcher(directory, config)
    watcher.db = directory / f"{db_name}.db"
    result = watcher("corpus", "import", str(write_corpus(directory, datetime.now(UTC))))
    assert result.exit_code == 0, result.output
    return Corpus(watcher=watcher, db=watcher.db, name=db_name)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode("utf-8")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8")


@contextmanager
def serving(args: list[str], *, cwd: Path, port: int) -> Iterator[subprocess.Popen[str]]:
    """Run ``python -m watcher ARGS`` until it answers on 127.0.0.1:port; stop it afterwards."""
    process = subprocess.Popen(
        [sys.executable, "-m", "watcher", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                out, err = process.communicate()
                raise AssertionError(f"watcher serve exited {process.returncode}: {out}{err}")
            try:
                status, _ = get(f"http://127.0.0.1:{port}/-/versions.json")
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("watcher serve did not answer within 60 s")
            time.sleep(0.2)
        yield process
    finally:
        process.terminate()
        try:
            process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a TCP socket listening on ``port``, from /proc/net/tcp{,6}."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            address, port_hex = fields[1].rsplit(":", 1)
            if fields[3] == "0A" and int(port_hex, 16) == port:
                found.add(address)
    return found


def project_layout(directory: Path) -> Path:
    """A working folder shaped like the repository: config/watcher.toml and db/metadata.yml."""
    (directory / "config").mkdir()
    (directory / "db").mkdir()
    shutil.copy(ROOT / "config" / "watcher.toml", directory / "config" / "watcher.toml")
    shutil.copy(METADATA, directory / "db" / "metadata.yml")
    return directory
