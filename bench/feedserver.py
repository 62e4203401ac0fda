"""The feeds the benchmarks poll: the generator, the watcher config that lists them, the
HTTP server every benchmark serves with, and feed servers in a process of their own
(machine, memory and report helpers: common.py).

Run as a script it is the server process (the benchmarks start it with :func:`serving`,
which closes its stdin to stop it):

    python bench/feedserver.py static DIR      # every DIR/*.xml at /feed/<name>, with ETags
    python bench/feedserver.py growing SPEC    # feeds that gain entries while served (soak)

Both print their port on the first line of stdout.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import email.utils
import gzip
import hashlib
import itertools
import json
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO
from xml.sax.saxutils import escape

SERVER = Path(__file__).resolve()

# --------------------------------------------------------------------- feed generation

TOPICS_TOML = """
[[topics]]
name = "kant-air-base"
title = "Russia's Kant air base in Kyrgyzstan"
query = '(Kant OR Кант*) AND (Kyrgyz* OR Bishkek OR "air base" OR airbase OR "military base" OR Киргиз* OR Кыргыз* OR авиабаз*)'
keywords = [
  "Kant", "Kyrgyzstan", "CSTO", "air defence", "air base", "military base",
  "Bishkek", "Japarov", "Jeenbekov", "Putin", "Collective Rapid Deployment Force",
  "joint air defence system", "Issyk-Kul",
]
[topics.aliases]
"Kant" = ["Кант"]
"Kyrgyzstan" = ["Kyrgyz Republic", "Kirghizia", "Киргизия", "Кыргызстан"]
"CSTO" = ["Collective Security Treaty Organization", "Collective Security Treaty Organisation", "ОДКБ"]
"air defence" = ["air defense", "ПВО"]
"air base" = ["airbase", "авиабаза"]

[[topics]]
name = "russia-kyrgyzstan-defence"
title = "Russia–Kyrgyzstan defence cooperation"
query = '(Russia* OR Moscow OR Kremlin OR Росси*) AND (Kyrgyz* OR Bishkek OR Киргиз* OR Кыргыз*) AND (defence OR defense OR military OR CSTO OR troops OR weapons OR "air defence" OR "air defense" OR военн* OR ОДКБ)'
keywords = ["CSTO", "military base", "air defence", "Kyrgyzstan", "Russia", "military-technical cooperation", "drills"]
[topics.aliases]
"CSTO" = ["Collective Security Treaty Organization", "ОДКБ"]
"Kyrgyzstan" = ["Kyrgyz Republic", "Киргизия", "Кыргызстан"]
"""


def _words(text: str) -> list[str]:
    return text.split()


EN_WORDS = _words(
    """
the of and to in a is that for on with as was by at from it be this are an has have
had not were which their after more new but been also will its two one about said
over than into who would year years first last government minister officials said
statement week month report reported according agency news sources official country
countries region regional security economic economy trade talks meeting visit
president prime cooperation agreement agreements plan plans project projects border
military defence defense forces troops exercise exercises drills aircraft helicopters
equipment systems weapons modernization infrastructure runway hangar personnel staff
budget funding million billion percent price prices market energy gas oil electricity
water transport railway road construction investment investors bank banks currency
inflation exports imports partners partner parliament deputies committee law bill
draft vote election elections opposition court judge case investigation police arrest
protest protests rights journalists media press conference spokesman ministry foreign
affairs embassy ambassador delegation summit leaders heads states organization member
members treaty collective rapid deployment force joint system control training
contract supply delivery deliveries units battalion brigade command headquarters
strategic partnership stability threat threats terrorism extremism drug trafficking
migration migrants workers labour remittances capital city district province village
mountain lake valley river winter summer spring autumn weather snow flights airport
airline passengers tourism tourists students schools university hospital health
doctors vaccine programme support aid humanitarian development grant loan debt
restructuring sanctions restrictions companies company shares growth decline record
level levels data figures survey analysts experts observers critics supporters
"""
)

EN_PROPER = _words(
    """
Moscow Kremlin Russia Russian Kazakhstan Tajikistan Uzbekistan China Beijing Astana
Dushanbe Tashkent Osh Jalal-Abad Naryn Talas Karakol Cholpon-Ata Chui Batken Europe
Washington Brussels Ankara Tehran Minsk Yerevan Baku Putin Japarov Tashiev Shoigu
Belousov Lavrov Mishustin Tokayev Rahmon Mirziyoyev Xi Gazprom Rosatom Sberbank
Aeroflot TASS Interfax Reuters AKIpress Kabar Issyk-Kul Fergana Pamir Altai
"""
)

RU_WORDS = _words(
    """
и в на с по что не для о из к от это как был была были его ее их года году году
министр правительство президент заявил заявила сообщил сообщает агентство источник
официальный страна страны региона безопасность экономика сотрудничество соглашение
визит встреча переговоры военные военный военной учения техника вооружение самолеты
вертолеты система системы граница пограничный бюджет миллион миллиардов процентов
цены рынок энергетика газ нефть транспорт дорога строительство инвестиции банк
валюта инфляция экспорт импорт партнеры парламент депутаты комитет закон проект
голосование выборы суд дело полиция журналисты пресс конференция министерство
иностранных дел посол делегация саммит лидеры государств организация договор
коллективной безопасности силы быстрого развертывания подготовка контракт поставки
подразделения командование стратегическое партнерство стабильность угрозы терроризм
миграция мигранты трудовые переводы столица область село горы озеро долина зима лето
"""
)

RU_PROPER = _words(
    """
Москва Россия Казахстан Таджикистан Узбекистан Китай Бишкек Ош Нарын Талас Каракол
Путин Жапаров Ташиев Шойгу Белоусов Лавров Мишустин Токаев ОДКБ ЕАЭС ШОС Иссык-Куль
"""
)

EN_TOPIC_SENTENCES = [
    "Officials in Bishkek said the Kant air base will receive {n} new {equip} under "
    "the {year} agreement with Moscow.",
    "The Russian military base at Kant in Kyrgyzstan hosted {n} {equip} during the "
    "CSTO exercise near {place}.",
    "Kyrgyz and Russian defence ministers discussed the future of the Kant airbase and "
    "the joint air defence system of the Collective Security Treaty Organization.",
    "Russia's air base in Kant, {km} kilometres east of Bishkek, is part of the "
    "Collective Rapid Deployment Force, the {org} said.",
    "President Japarov said Kyrgyzstan would extend the lease of the Kant base until "
    "{year}, according to {org}.",
    "Satellite images show {n} new hangars at the Kant air base in Kyrgyzstan.",
]
EN_OTHER_TITLES = [
    "{proper} {verb} {noun} talks with {proper2}",
    "{noun_cap} {verb} in {place} as {proper} weighs {noun2}",
    "{proper} and {proper2} sign {noun} deal",
    "{place}: {noun_cap} rises {n} percent",
]
EN_TOPIC_TITLES = [
    "Kant air base to get {n} new {equip}",
    "Russia expands Kant air base in Kyrgyzstan",
    "{proper} visits Kant airbase near Bishkek",
    "CSTO drills at Kant: {n} {equip} arrive in Kyrgyzstan",
    "Kyrgyzstan, Russia discuss Kant base lease until {year}",
]
EN_TITLE_EXTRAS = [
    ", {name} says",
    " as {name} weighs {noun}",
    ": what it means for {name}",
    " amid {noun} row",
    ", {word} {noun} in focus",
]
RU_TITLE_EXTRAS = [", заявил {name}", ": {name} о {noun}", " на фоне {noun}"]
RU_TOPIC_SENTENCES = [
    "На российской авиабазе Кант в Киргизии прошли учения ОДКБ, в которых участвовали "
    "{n} самолетов.",
    "Авиабаза Кант получит {n} новых вертолетов до {year} года, сообщил {ru_proper}.",
    "Российская военная база в Киргизии остается ключевым элементом системы "
    "коллективной безопасности, заявил министр обороны.",
]
RU_TOPIC_TITLES = [
    "Авиабаза Кант получит {n} новых самолетов",
    "{ru_proper} посетил авиабазу Кант в Киргизии",
    "Учения ОДКБ на авиабазе Кант",
]
RU_OTHER_TITLES = [
    "{ru_proper} обсудил {ru_noun} с партнерами",
    "В {ru_proper} выросли {ru_noun} на {n} процентов",
]
TITLE_TEMPLATES = frozenset(EN_TOPIC_TITLES + EN_OTHER_TITLES + RU_TOPIC_TITLES + RU_OTHER_TITLES)
EQUIPMENT = ["Su-25 jets", "Mi-8 helicopters", "drones", "radar systems", "Yak-130 trainers"]
ORGS = ["TASS", "Interfax", "Kabar", "AKIpress", "the defence ministry", "RFE/RL"]


def _syllable_words(rng: random.Random, count: int) -> list[str]:
    """Made-up words so that texts do not repeat; none is 'kant' or a topic term."""
    onsets = ["b", "d", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "sh", "ch", "tr"]
    vowels = ["a", "e", "i", "o", "u", "ai", "ou"]
    codas = ["", "n", "r", "s", "l", "m", "x", "nd", "rt"]
    words: set[str] = set()
    while len(words) < count:
        word = "".join(
            rng.choice(onsets) + rng.choice(vowels) + rng.choice(codas)
            for _ in range(rng.randint(2, 4))
        )
        if "kant" not in word and "kyrgyz" not in word:
            words.add(word)
    return sorted(words)


_CYRILLIC = {"sh": "ш", "ch": "ч", "ai": "ай", "ou": "у", "x": "кс"} | dict(
    zip("abdegiklmnoprstuvz", "абдегиклмнопрстувз", strict=True)
)


def _cyrillic(word: str) -> str:
    out = []
    index = 0
    while index < len(word):
        pair = word[index : index + 2].lower()
        if pair in _CYRILLIC:
            out.append(_CYRILLIC[pair])
            index += 2
        else:
            out.append(_CYRILLIC.get(pair[0], pair[0]))
            index += 1
    return "".join(out).capitalize()


@dataclass
class Story:
    title: str
    html: str
    link: str
    on_topic: bool = False


@dataclass
class Generator:
    """Deterministic (per seed) feeds of realistic news items."""

    seed: int = 2
    topic_share: float = 0.8
    syndicated_share: float = 0.05
    russian_feeds: float = 0.1
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.made_up = _syllable_words(self.rng, 6000)
        # People, places and companies: a few famous ones and a long tail of others.
        self.names_en = [word.capitalize() for word in self.made_up[::4]]
        self.rng.shuffle(self.names_en)
        self.names_ru = [_cyrillic(name) for name in self.names_en]
        self.name_weights = list(
            itertools.accumulate(1 / (rank + 10) for rank in range(len(self.names_en)))
        )
        self.shared = [self._story(10_000 + k, "en", wire=True) for k in range(200)]
        self.last_on_topic = False
        """Whether the story of the latest :meth:`item` was written about the topics."""

    def _fill(self, template: str, lang: str) -> str:
        rng = self.rng
        values = {
            "n": rng.randint(2, 40),
            "km": rng.randint(15, 30),
            "year": rng.randint(2025, 2045),
            "equip": rng.choice(EQUIPMENT),
            "place": self._name("en"),
            "org": rng.choice(ORGS),
            "proper": self._name("en"),
            "proper2": self._name("en"),
            "verb": rng.choice(["opens", "holds", "resumes", "rejects", "backs", "plans"]),
            "noun": rng.choice(EN_WORDS[60:]),
            "noun2": rng.choice(EN_WORDS[60:]),
            "noun_cap": rng.choice(EN_WORDS[60:]).capitalize(),
            "ru_proper": self._name("ru"),
            "ru_noun": rng.choice(RU_WORDS[30:]),
        }
        text = template.format(**values)
        if template in TITLE_TEMPLATES and rng.random() < 0.7:
            extra = rng.choice(EN_TITLE_EXTRAS if lang == "en" else RU_TITLE_EXTRAS)
            text += extra.format(
                name=self._name(lang),
                word=rng.choice(self.made_up),
                noun=rng.choice(EN_WORDS[60:] if lang == "en" else RU_WORDS[30:]),
            )
        return text

    def _name(self, lang: str) -> str:
        """A proper name: a famous one now and then, mostly one of a long (Zipf) tail."""
        rng = self.rng
        if rng.random() < 0.3:
            return rng.choice(EN_PROPER if lang == "en" else RU_PROPER)
        names = self.names_en if lang == "en" else self.names_ru
        return rng.choices(names, cum_weights=self.name_weights)[0]

    def _sentence(self, lang: str) -> str:
        rng = self.rng
        common = EN_WORDS if lang == "en" else RU_WORDS
        words = []
        for _ in range(rng.randint(8, 20)):
            roll = rng.random()
            if roll < 0.10:
                words.append(self._name(lang))
            elif roll < 0.40:
                words.append(rng.choice(self.made_up))
            else:
                words.append(rng.choice(common))
        if rng.random() < 0.2:
            words.append(str(rng.randint(2, 2000)))
        text = " ".join(words)
        return text[0].upper() + text[1:] + "."

    def _paragraph_html(self, sentences: list[str]) -> str:
        rng = self.rng
        parts = []
        for sentence in sentences:
            sentence = escape(sentence)
            roll = rng.random()
            if roll < 0.08:
                words = sentence.split(" ")
                cut = rng.randint(1, max(1, len(words) - 2))
                href = f"https://ref{rng.randint(1, 50)}.example/{rng.choice(self.made_up)}"
                sentence = (
                    " ".join(words[:cut])
                    + f' <a href="{href}">{words[cut]}</a> '
                    + " ".join(words[cut + 1 :])
                )
            elif roll < 0.14:
                sentence = f"<strong>{sentence}</strong>"
            elif roll < 0.18:
                sentence = f"<em>{sentence}</em>"
            parts.append(sentence)
        return "<p>" + " ".join(parts) + "</p>"

    def _story(self, number: int, lang: str, *, wire: bool = False) -> Story:
        rng = self.rng
        on_topic = rng.random() < self.topic_share
        if lang == "en":
            titles = EN_TOPIC_TITLES if on_topic else EN_OTHER_TITLES
            topic_sentences = EN_TOPIC_SENTENCES
        else:
            titles = RU_TOPIC_TITLES if on_topic else RU_OTHER_TITLES
            topic_sentences = RU_TOPIC_SENTENCES
        title = self._fill(rng.choice(titles), lang)
        target = rng.randint(100, 300)
        sentences: list[str] = []
        if on_topic:
            sentences.append(self._fill(rng.choice(topic_sentences), lang))
        words = sum(len(s.split()) for s in sentences)
        while words < target:
            sentence = self._sentence(lang)
            if on_topic and rng.random() < 0.1:
                sentence = self._fill(rng.choice(topic_sentences), lang)
            sentences.append(sentence)
            words += len(sentence.split())
        paragraphs = []
        while sentences:
            take = rng.randint(2, 5)
            paragraphs.append(self._paragraph_html(sentences[:take]))
            sentences = sentences[take:]
        if rng.random() < 0.3:
            src = f"https://img.example/{number}/{rng.choice(self.made_up)}.jpg"
            paragraphs.insert(0, f'<p><img src="{src}" alt="photo" width="640"></p>')
        host = "wire.example" if wire else f"outlet{number // 1000}.example"
        slug = "-".join(rng.choice(self.made_up) for _ in range(4))
        link = f"https://{host}/news/{number}/{slug}?utm_source=rss&utm_medium=feed"
        return Story(title=title, html="".join(paragraphs), link=link, on_topic=on_topic)

    def language(self) -> str:
        return "ru" if self.rng.random() < self.russian_feeds else "en"

    def channel(self, index: int, lang: str, built: dt.datetime | None = None) -> str:
        """The opening of feed ``index``'s document, up to its first item."""
        title = f"Outlet {index} — {'Новости' if lang == 'ru' else 'News'}"
        return "".join(
            [
                '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" '
                'xmlns:atom="http://www.w3.org/2005/Atom"><channel>',
                f"<title>{escape(title)}</title><link>https://outlet{index}.example/</link>",
                f"<description>News from outlet {index}</description><language>{lang}</language>",
                f'<atom:link href="https://outlet{index}.example/rss" rel="self" '
                'type="application/rss+xml"/>',
                f"<lastBuildDate>{email.utils.format_datetime(built or self.now)}</lastBuildDate>",
            ]
        )

    def item(self, index: int, number: int, lang: str, published: dt.datetime | None = None) -> str:
        """Entry ``number`` of feed ``index`` (GUID ``outlet<index>-<number>``)."""
        rng = self.rng
        if lang == "en" and rng.random() < self.syndicated_share:
            story = rng.choice(self.shared)
        else:
            story = self._story(index * 1000 + number, lang)
        self.last_on_topic = story.on_topic
        if published is None:
            published = self.now - dt.timedelta(minutes=rng.randint(1, 60 * 24 * 14))
        return (
            f"<item><title>{escape(story.title)}</title><link>{escape(story.link)}</link>"
            f'<guid isPermaLink="false">outlet{index}-{number}</guid>'
            f"<pubDate>{email.utils.format_datetime(published)}</pubDate>"
            f"<description>{escape(story.html)}</description></item>"
        )

    def feed(self, index: int, items: int) -> bytes:
        lang = self.language()
        entries = [self.item(index, number, lang) for number in range(items)]
        return (self.channel(index, lang) + "".join(entries) + CHANNEL_END).encode("utf-8")


CHANNEL_END = "</channel></rss>\n"


def generate_feeds(
    directory: Path,
    feeds: int,
    items: int,
    seed: int,
    *,
    russian_feeds: float = 0.1,
    topic_share: float = 0.8,
) -> int:
    """``feeds`` feeds of ``items`` items each, ``russian_feeds`` of them in Russian,
    ``topic_share`` of the items written about the bench topic."""
    directory.mkdir(parents=True, exist_ok=True)
    generator = Generator(seed=seed, russian_feeds=russian_feeds, topic_share=topic_share)
    total = 0
    for index in range(feeds):
        body = generator.feed(index, items)
        (directory / f"{index:05d}.xml").write_bytes(body)
        total += len(body)
    return total


def advance_feeds(source: Path, target: Path, seed: int, *, every: int = 5) -> tuple[int, int]:
    """Copy the feeds of ``source`` to ``target``, every ``every``-th with 1–5 new items.

    The new items come first, as a feed publishes them; the older items are byte for byte
    those of ``source``. Returns (feeds changed, items added).
    """
    target.mkdir(parents=True, exist_ok=True)
    generator = Generator(seed=seed + 1000)
    rng = random.Random(seed)
    changed = added = 0
    for index, path in enumerate(sorted(source.glob("*.xml"))):
        body = path.read_text(encoding="utf-8")
        if index % every == 0:
            lang = body.split("<language>", 1)[1].split("<", 1)[0]
            count = rng.randint(1, 5)
            start = body.count("<item>")
            fresh = [
                generator.item(index, start + k, lang, generator.now - dt.timedelta(minutes=k))
                for k in range(count)
            ]
            head, tail = body.split("<item>", 1)
            body = head + "".join(fresh) + "<item>" + tail
            changed += 1
            added += count
        (target / path.name).write_text(body, encoding="utf-8")
    return changed, added


def write_config(
    path: Path, urls: Sequence[str], topics: str = TOPICS_TOML, **sections: Mapping[str, object]
) -> None:
    """A watcher config: each of ``sections`` (``poll={"workers": 0}`` is ``[poll]`` with
    ``workers = 0``), ``topics`` and a feed per URL."""
    lines = []
    for name, settings in sections.items():
        lines += [f"[{name}]", *(f"{key} = {json.dumps(value)}" for key, value in settings.items())]
        lines.append("")
    feeds = "".join(f'\n[[feeds]]\nurl = "{url}"\n' for url in urls)
    path.write_text("\n".join(lines) + topics + feeds, encoding="utf-8")


# --------------------------------------------------------------------- servers


@contextlib.contextmanager
def server_process(
    command: Sequence[str], timeout: float = 30
) -> Iterator[tuple[subprocess.Popen[str], IO[str]]]:
    """A server process that prints where it listens on stdout (returned to read) and runs
    until its stdin closes, which it does on leaving."""
    server = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert server.stdin is not None
    assert server.stdout is not None
    try:
        yield server, server.stdout
    finally:
        server.stdin.close()
        server.wait(timeout=timeout)


@contextlib.contextmanager
def serving(*argv: str, timeout: float = 30) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """This module as a server process (``static DIR`` or ``growing SPEC``), and its port;
    stopped on leaving (its stdin closed)."""
    with server_process([sys.executable, str(SERVER), *argv], timeout) as (server, stdout):
        yield server, int(stdout.readline())


@contextlib.contextmanager
def serving_growing(spec: GrowingSpec) -> Iterator[tuple[subprocess.Popen[str], int, list[str]]]:
    """:func:`serving` ``growing SPEC``, with the URLs of its feeds."""
    with serving("growing", json.dumps(dataclasses.asdict(spec))) as (server, port):
        yield server, port, [f"http://127.0.0.1:{port}/feed/{i:05d}.xml" for i in range(spec.feeds)]


Answer = tuple[int, dict[str, str], bytes]  # status, headers, body
NOT_FOUND: Answer = (404, {}, b"")
Document = tuple[bytes, bytes, dict[str, str]]  # body, gzipped body, ETag and Last-Modified


def start_http(
    answer: Callable[[BaseHTTPRequestHandler], Answer], host: str = "127.0.0.1", queue: int = 512
) -> ThreadingHTTPServer:
    """A threaded HTTP server on ``host`` (a free port) whose GETs ``answer`` answers, served
    from a daemon thread. Every server of the benchmarks is one of these."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            status, headers, payload = answer(self)
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = queue

    server = Server((host, 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def feed_answer(request: BaseHTTPRequestHandler, document: Document | None) -> Answer:
    """A feed as a server with ETags and gzip answers it: 304 to its ETag, gzip when asked."""
    if document is None:
        return NOT_FOUND
    body, zipped, validators = document
    if request.headers.get("If-None-Match") == validators["ETag"]:
        return 304, validators, b""
    headers = {"Content-Type": "application/rss+xml; charset=utf-8", **validators}
    if "gzip" in (request.headers.get("Accept-Encoding") or ""):
        return 200, {**headers, "Content-Encoding": "gzip"}, zipped
    return 200, headers, body


def _document(body: bytes, last_modified: str) -> Document:
    etag = '"' + hashlib.sha1(body).hexdigest() + '"'
    return body, gzip.compress(body, 6), {"ETag": etag, "Last-Modified": last_modified}


def serve(directory: Path) -> None:
    """Serve every ``*.xml`` of ``directory`` at /feed/<name>; print the port.

    A line ``DIR`` on stdin switches to the files of DIR (answered ``ok`` once they are
    served); the server runs until stdin closes.
    """
    last_modified = email.utils.formatdate(usegmt=True)

    def documents(folder: Path) -> dict[str, Document]:
        files = sorted(folder.glob("*.xml"))
        return {f"/feed/{f.name}": _document(f.read_bytes(), last_modified) for f in files}

    served = documents(directory)
    server = start_http(lambda request: feed_answer(request, served.get(request.path)))
    print(server.server_address[1], flush=True)
    for line in sys.stdin:  # the parent closes our stdin to stop us
        served = documents(Path(line.strip()))
        print("ok", flush=True)
    server.shutdown()


# --------------------------------------------------------------------- growing feeds


@dataclass
class GrowingSpec:
    """What the growing server publishes: ``feeds`` feeds starting with ``initial`` entries;
    every ``tick`` seconds a share ``share`` of them gain one to ``burst`` entries, for
    ``publish_seconds``; a feed shows its latest ``window`` entries."""

    feeds: int = 200
    initial: int = 20
    window: int = 60
    tick: float = 5.0
    share: float = 0.1
    burst: int = 2
    publish_seconds: float = 600.0
    seed: int = 8
    topic_share: float = 0.8
    """Share of the entries written about the topics (the others are news of other things)."""


def serve_growing(spec: GrowingSpec) -> None:
    """Serve feeds that gain entries while served. ``GET /_published`` answers what was
    published so far ({"guids": [...], "on_topic": [guids written about the topics],
    "changes": n, "publishing": bool}) and ``GET /_stop`` stops the publishing (answering
    the same); ETags change with the body, so unchanged feeds answer 304."""
    generator = Generator(seed=spec.seed, syndicated_share=0.0, topic_share=spec.topic_share)
    lock = threading.Lock()
    langs = [generator.language() for _ in range(spec.feeds)]
    entries: list[list[str]] = []
    guids: list[str] = []
    on_topic: list[str] = []
    documents: dict[str, Document] = {}
    state = {"changes": 0, "publishing": True}

    def render(index: int) -> None:
        now = dt.datetime.now(dt.UTC)
        shown = entries[index][-spec.window :][::-1]
        body = (generator.channel(index, langs[index], now) + "".join(shown) + CHANNEL_END).encode()
        stamp = email.utils.format_datetime(now, usegmt=True)
        documents[f"/feed/{index:05d}.xml"] = _document(body, stamp)

    def publish(index: int) -> None:
        number = len(entries[index])
        entries[index].append(
            generator.item(index, number, langs[index], published=dt.datetime.now(dt.UTC))
        )
        guids.append(f"outlet{index}-{number}")
        if generator.last_on_topic:
            on_topic.append(guids[-1])

    for index in range(spec.feeds):
        entries.append([])
        for _ in range(spec.initial):
            publish(index)
        render(index)

    def grow() -> None:
        rng = random.Random(spec.seed + 1)
        deadline = time.monotonic() + spec.publish_seconds
        while time.monotonic() + spec.tick <= deadline:
            time.sleep(spec.tick)
            if not state["publishing"]:  # stopped early: GET /_stop
                return
            chosen = rng.sample(range(spec.feeds), max(1, round(spec.feeds * spec.share)))
            with lock:
                for index in chosen:
                    for _ in range(rng.randint(1, spec.burst)):
                        publish(index)
                    render(index)
                state["changes"] += len(chosen)
        state["publishing"] = False

    def answer(request: BaseHTTPRequestHandler) -> Answer:
        with lock:
            if request.path == "/_stop":
                state["publishing"] = False
            published = (
                {"guids": list(guids), "on_topic": list(on_topic), **state}
                if request.path in ("/_published", "/_stop")
                else None
            )
            document = documents.get(request.path)
        if published is not None:
            return 200, {"Content-Type": "application/json"}, json.dumps(published).encode()
        return feed_answer(request, document)

    server = start_http(answer)
    threading.Thread(target=grow, daemon=True).start()
    print(server.server_address[1], flush=True)
    sys.stdin.read()  # the parent closes our stdin to stop us
    server.shutdown()


if __name__ == "__main__":
    if sys.argv[1:2] == ["static"]:
        serve(Path(sys.argv[2]))
    elif sys.argv[1:2] == ["growing"]:
        serve_growing(GrowingSpec(**json.loads(sys.argv[2])))
    else:
        sys.exit(__doc__)
