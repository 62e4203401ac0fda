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
def serving(
    args: list[str], *, cwd: Path, port: int, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[str]]:
    """Run ``python -m watcher ARGS`` (``env``: added to the environment) until it answers
    on 127.0.0.1:port; stop it afterwards."""
    process = subprocess.Popen(
        [sys.executable, "-m", "watcher", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
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


# a larger invented corpus for the screenshots in docs/browse.md ---------------------------

SHOWCASE_TOPICS = """
[[topics]]
name = "caspian-shipping"
title = "Shipping on the Caspian Sea"
query = 'Caspian AND (port OR ferry OR tanker OR shipping OR Aktau OR Baku OR Turkmenbashi)'
keywords = ["Caspian", "Aktau", "Baku", "ferry", "tanker"]

[[topics]]
name = "central-asia-water"
title = "Water and dams in Central Asia"
query = '(reservoir OR dam OR irrigation OR Toktogul OR Rogun OR "Syr Darya" OR "Amu Darya")'
keywords = ["Toktogul", "Rogun", "Syr Darya", "Amu Darya", "irrigation"]
"""


def _doc(
    key: str, source: str, host: str, lang: str, at: datetime, title: str, text: str
) -> dict[str, str]:
    return {
        "id": key,
        "url": f"https://{host}/{at:%Y/%m}/{key}",
        "title": title,
        "text": text,
        "published": _stamp(at),
        "source": source,
        "lang": lang,
    }


def showcase_documents(now: datetime) -> list[dict[str, str]]:
    """Invented reports (no real article is quoted) across three topics, six outlets, three
    languages, several stories with more than one write-up."""
    hour = timedelta(hours=1)
    ferry = (
        "The port of Aktau on the Caspian coast of Kazakhstan will open a second ferry berth "
        "in the spring, the port authority said, doubling the number of rail ferries it can "
        "load each day. Ferries from Aktau cross to Baku in about eighteen hours and carry "
        "wagons of grain, cotton and steel pipe bound for Georgia and Turkey. Shipping agents "
        "said queues of lorries at the port gates had grown since the autumn."
    )
    toktogul = (
        "The Toktogul reservoir on the Naryn river in Kyrgyzstan has fallen to its lowest "
        "level for the season in a decade, the energy ministry said, and releases through the "
        "dam will be cut to keep water for the winter. Farmers downstream in the Fergana "
        "valley, who depend on the Syr Darya for irrigation, asked for a guarantee of summer "
        "water before the sowing season."
    )
    radar = (
        "A new air defence radar has been installed at the Kant air base near Bishkek, the "
        "Kyrgyz defence ministry said on Tuesday. Crews from the base and from the CSTO "
        "joint staff will test the station during the next month before it goes on duty. "
        "The ministry said the radar would cover the airspace over the Chui valley."
    )
    docs = [
        _doc(
            "kant-radar",
            "Steppe Herald",
            "steppe-herald.example",
            "en",
            now - 9 * hour,
            "New air defence radar installed at Kant air base",
            radar,
        ),
        _doc(
            "kant-radar-wire",
            "Central Asia Wire",
            "wire.example",
            "en",
            now - 7 * hour,
            "Kant air base gets air defence radar, ministry says",
            radar.replace("on Tuesday", "on Tuesday afternoon"),
        ),
        _doc(
            "kant-radar-ru",
            "Vesti KG",
            "vesti-kg.example",
            "ru",
            now - 6 * hour,
            "На авиабазе Кант установлен новый радар ПВО",
            "Министерство обороны Киргизии сообщило, что на авиабазе Кант под Бишкеком "
            "установлена новая радиолокационная станция противовоздушной обороны. Расчёты "
            "базы и штаба ОДКБ проверят станцию в течение месяца.",
        ),
        _doc(
            "kant-radar-de",
            "Ostexpress",
            "ostexpress.example",
            "de",
            now - 4 * hour,
            "Neues Radar für den Luftwaffenstützpunkt Kant",
            "Auf dem russischen Luftwaffenstützpunkt Kant bei Bischkek in Kyrgyzstan ist ein "
            "neues Radar zur Luftverteidigung aufgestellt worden, teilte das kirgisische "
            "Verteidigungsministerium mit. Die Anlage soll im kommenden Monat erprobt werden.",
        ),
        _doc(
            "kant-fuel",
            "Steppe Herald",
            "steppe-herald.example",
            "en",
            now - 20 * hour,
            "Fuel convoy delays at Kant air base gate anger residents",
            "Residents of Kant in Kyrgyzstan complained to the town council about fuel tanker "
            "convoys queuing at the gate of the air base through the night. The base command "
            "said deliveries would move to daytime hours from next week.",
        ),
        _doc(
            "kant-school",
            "Bishkek Evening",
            "bishkek-evening.example",
            "en",
            now - 15 * hour,
            "Kant air base opens its sports hall to town schools",
            "Pupils from three schools in Kant will use the sports hall of the air base near "
            "Bishkek on weekday afternoons under an agreement signed with the town of Kant "
            "in Kyrgyzstan. The hall was repaired last year.",
        ),
        _doc(
            "aktau-ferry",
            "Caspian Courier",
            "caspian-courier.example",
            "en",
            now - 11 * hour,
            "Aktau port to open second ferry berth",
            ferry,
        ),
        _doc(
            "aktau-ferry-wire",
            "Central Asia Wire",
            "wire.example",
            "en",
            now - 10 * hour,
            "Second ferry berth planned at Caspian port of Aktau",
            ferry.replace("in the spring", "next spring"),
        ),
        _doc(
            "aktau-ferry-ru",
            "Vesti KG",
            "vesti-kg.example",
            "ru",
            now - 8 * hour,
            "В порту Актау на Каспии откроют второй паромный причал",
            "Порт Актау на Каспийском море откроет весной второй паромный причал, сообщили в "
            "администрации порта. Паромы из Актау идут в Баку около восемнадцати часов. "
            "Caspian ferry shipping from Aktau to Baku is expected to double.",
        ),
        _doc(
            "baku-tanker",
            "Caspian Courier",
            "caspian-courier.example",
            "en",
            now - 14 * hour,
            "Tanker runs aground outside Baku port in Caspian storm",
            "A small tanker ran aground on a sandbank outside the port of Baku during a storm "
            "on the Caspian on Sunday night. The harbour master said no oil had leaked and "
            "tugs would try to refloat the ship at high water.",
        ),
        _doc(
            "turkmenbashi-grain",
            "Ostexpress",
            "ostexpress.example",
            "de",
            now - 30 * hour,
            "Getreidefrachter laufen Turkmenbaschi an",
            "Im Hafen Turkmenbashi am Kaspischen Meer (Caspian port) legen wieder "
            "Getreidefrachter an; die shipping Saison beginnt früher als im Vorjahr.",
        ),
        _doc(
            "toktogul-low",
            "Bishkek Evening",
            "bishkek-evening.example",
            "en",
            now - 13 * hour,
            "Toktogul reservoir at lowest level in a decade",
            toktogul,
        ),
        _doc(
            "toktogul-low-wire",
            "Central Asia Wire",
            "wire.example",
            "en",
            now - 12 * hour,
            "Kyrgyzstan cuts Toktogul dam releases as reservoir falls",
            toktogul.replace("the energy ministry said", "officials said"),
        ),
        _doc(
            "toktogul-ru",
            "Vesti KG",
            "vesti-kg.example",
            "ru",
            now - 5 * hour,
            "Уровень Токтогульского водохранилища упал до минимума",
            "Уровень Токтогульского водохранилища на Нарыне опустился до самой низкой отметки "
            "за десять лет. Toktogul reservoir releases will be cut, the dam operator said.",
        ),
        _doc(
            "rogun-turbine",
            "Steppe Herald",
            "steppe-herald.example",
            "en",
            now - 17 * hour,
            "Third turbine of Rogun dam starts turning",
            "Engineers at the Rogun dam in Tajikistan started the third turbine of the "
            "hydropower plant, the operator said. Downstream, irrigation districts on the "
            "Amu Darya asked for the filling schedule of the reservoir to be published.",
        ),
        _doc(
            "amu-canal",
            "Ostexpress",
            "ostexpress.example",
            "de",
            now - timedelta(days=3),
            "Streit um Kanal am Amu Darya",
            "Ein neuer Bewässerungskanal am Amu Darya sorgt für Streit; irrigation experts "
            "warnen vor sinkenden Pegeln im Aralsee-Becken und am reservoir Tuyamuyun.",
        ),
    ]
    return docs


def build_showcase(directory: Path, db_name: str = "watcher") -> Corpus:
    """The screenshot corpus: the test corpus plus :func:`showcase_documents`, three topics."""
    config = write_config(directory, [FEED_URL], extra=SHOWCASE_TOPICS)
    watcher = Watcher(directory, config)
    watcher.db = directory / f"{db_name}.db"
    now = datetime.now(UTC)
    path = directory / "showcase.jsonl"
    documents = corpus_documents(now) + showcase_documents(now)
    path.write_text(
        "".join(json.dumps(doc, ensure_ascii=False) + "\n" for doc in documents),
        encoding="utf-8",
    )
    result = watcher("corpus", "import", str(path))
    assert result.exit_code == 0, result.output
    return Corpus(watcher=watcher, db=watcher.db, name=db_name)
