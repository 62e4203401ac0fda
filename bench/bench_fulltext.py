"""Benchmark of issue 10: full article text.

1. Extraction cost per page: ``watcher.extract.extract_article`` (trafilatura, text
   cleaning, language detection) on generated article pages of realistic size (a story of
   500–900 words inside navigation, an inline script blob, a cookie banner, related
   stories, comments and a footer), median and p95 over ``--pages`` pages.
2. The effect on one ``watcher poll --all`` of ``--feeds`` headline-only feeds with
   ``[full_text] mode = "never"`` against ``"auto"``, fresh database each time. Feeds and
   their article pages are served by a separate process from 20 loopback addresses
   (127.0.0.2 …), so the per-host limits act as they would on 20 publishers; each answer
   can be delayed by ``--latency`` ms to stand for a remote server.

    python bench/bench_fulltext.py               # writes its section of docs/benchmarks.md
    python bench/bench_fulltext.py --quick       # 20 feeds, 40 pages, prints, writes nothing
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from html import escape
from http.server import BaseHTTPRequestHandler
from itertools import cycle
from pathlib import Path
from typing import cast

from common import (
    Run,
    Section,
    arguments,
    machine,
    measure,
    measured_with,
    percentile,
    publish,
    query,
    remove_db,
    timed,
    watcher,
    workdir,
)
from feedserver import NOT_FOUND, Answer, server_process, start_http, write_config

SECTION = "## Full text (issue 10)"
HOSTS = 20
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

TOPIC_TOML = """
[[topics]]
name = "kant-air-base"
title = "Russia's Kant air base in Kyrgyzstan"
query = '(Kant OR Кант*) AND (Kyrgyz* OR Bishkek OR "air base" OR airbase)'
keywords = ["Kant", "Kyrgyzstan", "CSTO", "air defence", "air base", "Bishkek", "radar"]
"""

WORDS = [
    "officials", "engineers", "runway", "hangar", "convoy", "delegation", "budget",
    "agreement", "schedule", "report", "ministry", "spokesman", "equipment", "upgrade",
    "maintenance", "exercise", "brigade", "staff", "pilots", "crews", "transport",
    "aircraft", "helicopters", "radar", "airfield", "perimeter", "fence", "lighting",
    "fuel", "depot", "contract", "inspection", "visit", "meeting", "partners", "alliance",
    "region", "valley", "mountains", "road", "residents", "town", "market", "council",
    "weather", "season", "spring", "autumn", "winter", "summer", "week", "month",
    "statement", "interview", "analysts", "observers", "satellite", "images",
    "construction", "barracks", "training", "cadets", "instructors", "supplies", "rail",
    "freight", "border", "customs", "delay", "plan", "review",
]  # fmt: skip
TOPIC_SENTENCES = (
    "Work at the Kant air base near Bishkek continued through the {w} despite the {w}.",
    "Kyrgyzstan's {w} said the {w} at the base would be finished before the {w}.",
    "The CSTO {w} reviewed the joint air defence {w} during the {w}.",
    "Residents of Kant described the {w} and the {w} seen along the main {w}.",
)
NAV = [
    "Home", "World", "Europe", "Asia", "Politics", "Business", "Markets", "Tech", "Science",
    "Sport", "Culture", "Opinion",
]  # fmt: skip


def sentence(rng: random.Random, topic: bool) -> str:
    if topic and rng.random() < 0.3:
        template = rng.choice(TOPIC_SENTENCES)
        while "{w}" in template:
            template = template.replace("{w}", rng.choice(WORDS), 1)
        return template
    words = [rng.choice(WORDS) for _ in range(rng.randint(10, 22))]
    return " ".join(words).capitalize() + "."


def article_html(rng: random.Random, headline: str, topic: bool) -> str:
    """A whole news page around a story of 500-900 words."""
    paragraphs = []
    words = 0
    target = rng.randint(500, 900)
    while words < target:
        text = " ".join(sentence(rng, topic) for _ in range(rng.randint(3, 5)))
        words += len(text.split())
        paragraphs.append(f"<p>{escape(text)}</p>")
    blob = ",".join(f'"k{n}":"{rng.getrandbits(64):x}"' for n in range(1500))
    nav = "".join(
        f'<li><a href="/{name.lower()}/{n}">{name}</a></li>' for n in range(5) for name in NAV
    )
    related = "".join(
        f'<li><a href="/story/{rng.getrandbits(32)}">{escape(sentence(rng, False))}</a>'
        f"<p>{escape(sentence(rng, False))}</p></li>"
        for _ in range(12)
    )
    comments = "".join(
        f'<div class="comment"><b>reader{n}</b><p>{escape(sentence(rng, False))}</p></div>'
        for n in range(4)
    )
    footer = "".join(f'<a href="/about/{n}">{rng.choice(WORDS)}</a> ' for n in range(40))
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>{escape(headline)} | Bench Ledger</title>
<meta name="author" content="Bench Reporter">
<meta property="article:published_time" content="2026-11-19T08:00:00+00:00">
<style>{"body{margin:0}.x{color:#333}" * 150}</style>
<script>window.__STATE__={{{blob}}};</script></head><body>
<header><nav><ul>{nav}</ul></nav></header>
<div class="cookie-banner"><p>We use cookies to measure traffic. Accept or choose.</p></div>
<main><article><h1>{escape(headline)}</h1><p class="byline">By Bench Reporter</p>
{"".join(paragraphs)}</article>
<section class="comments">{comments}</section></main>
<aside class="related"><h2>Related</h2><ul>{related}</ul></aside>
<footer>{footer}</footer></body></html>"""


def feed_xml(feed: int, items: int, base: str, seed: int) -> str:
    rng = random.Random(f"{seed}-feed-{feed}")
    entries = []
    for number in range(items):
        topic = rng.random() < 0.8
        title = (
            f"Kant air base update {feed}-{number}" if topic else f"Market report {feed}-{number}"
        )
        summary = (
            f"Officials in Bishkek spoke about the Kant air base in Kyrgyzstan, {rng.choice(WORDS)}."
            if topic
            else f"Prices moved on the {rng.choice(WORDS)} market this week."
        )
        when = format_datetime(NOW - timedelta(minutes=feed * items + number))
        entries.append(
            f"<item><title>{title}</title><link>{base}/article/{feed}/{number}?t={int(topic)}</link>"
            f"<guid>bench-{feed}-{number}</guid><description>{escape(summary)}</description>"
            f"<pubDate>{when}</pubDate></item>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>Bench feed {feed}</title><link>{base}/</link><language>en</language>"
        f"{''.join(entries)}</channel></rss>"
    )


# ------------------------------------------------------------------------------ server


def serve(seed: int, items: int, latency: float) -> None:
    """Serve feeds and pages on 127.0.0.2 … from this process; print 'host port' per address."""

    def answer(request: BaseHTTPRequestHandler) -> Answer:
        if latency:
            time.sleep(latency)
        host, port = cast(tuple[str, int], request.server.server_address)
        base = f"http://{host}:{port}"
        path, _, query = request.path.partition("?")
        parts = path.strip("/").split("/")
        kind = "text/html; charset=utf-8"
        if path == "/robots.txt":
            body, kind = "User-agent: *\nDisallow: /private/\n", "text/plain"
        elif parts[0] == "feed":
            body, kind = feed_xml(int(parts[1]), items, base, seed), "application/rss+xml"
        elif parts[0] == "article":
            rng = random.Random(f"{seed}-page-{parts[1]}-{parts[2]}")
            body = article_html(rng, f"Story {parts[1]}-{parts[2]}", query.endswith("1"))
        else:
            return NOT_FOUND
        return 200, {"Content-Type": kind}, body.encode()

    for index in range(HOSTS):
        server = start_http(answer, f"127.0.0.{index + 2}", queue=256)
        print(f"127.0.0.{index + 2} {server.server_address[1]}", flush=True)
    sys.stdin.read()


# --------------------------------------------------------------------------- measuring


def extraction_cost(pages: int, seed: int) -> dict[str, float]:
    """Per page: extraction, and preparing the item again on its text (match, tags,
    fingerprint: what the pipeline adds after extracting), against preparing the feed's
    one-line version."""
    import tomllib

    from watcher.config import config_from_dict
    from watcher.extract import extract_article
    from watcher.normalize import make_item
    from watcher.prepare import prepare_items
    from watcher.tagging import warm_up

    topics = config_from_dict(tomllib.loads(TOPIC_TOML)).topics
    rng = random.Random(f"{seed}-extract")
    bodies = [article_html(rng, f"Story {n}", True).encode() for n in range(pages)]
    extract_article(bodies[0], "https://bench.example/0", now=NOW)  # imports, language model
    warm_up()
    extract_ms: list[float] = []
    prepare_ms: list[float] = []
    feed_ms: list[float] = []
    words: list[int] = []
    for number, body in enumerate(bodies):
        url = f"https://bench.example/{number}"
        seconds, result = timed(extract_article, body, url, now=NOW)
        extract_ms.append(seconds * 1000)
        words.append(result.words)
        for text, out in (
            ("Officials in Bishkek spoke about the Kant air base in Kyrgyzstan.", feed_ms),
            (result.text, prepare_ms),
        ):
            item = make_item(
                title=f"Kant air base update {number}", summary="", content=text, url=url,
                guid=None, published=NOW, now=NOW, lang_hint="en",
            )  # fmt: skip
            assert item is not None
            out.append(timed(prepare_items, [item], topics, keep_unmatched=True)[0] * 1000)
    figures = {
        "pages": pages,
        "kb": statistics.median(len(body) for body in bodies) / 1024,
        "words": statistics.median(words),
    }
    for prefix, times in (("", extract_ms), ("prepare_", prepare_ms), ("feed_", feed_ms)):
        figures |= {
            prefix + "median": statistics.median(times),
            prefix + "p95": percentile(times, 95),
        }
    return figures


@dataclass
class Poll:
    """One ``watcher poll --all`` with full text ``mode`` at a server ``latency`` (seconds),
    and what it stored (words and tags per item)."""

    latency: float
    mode: str
    run: Run
    items: int
    copies: int
    words: float
    tags: float
    pages: dict[str, int]

    @property
    def summary(self) -> str:
        """The line ``watcher poll`` ends with."""
        return (self.run.stdout.strip().splitlines() or [""])[-1]


def poll_once(
    directory: Path, sites: list[tuple[str, int]], feeds: int, mode: str, latency: float
) -> Poll:
    urls = [f"http://{host}:{port}/feed/{i}" for i, (host, port) in zip(range(feeds), cycle(sites))]
    config = directory / f"{mode}.toml"
    db = remove_db(directory / f"{mode}.db")
    poll = {"concurrency": 32, "workers": 0}
    write_config(config, urls, TOPIC_TOML, poll=poll, full_text={"mode": mode})
    # other load: everything else the machine did meanwhile, the page server's share too
    run = measure(mode, watcher(config, db, "poll", "--all"))
    text = "CASE WHEN content != '' THEN content ELSE summary END"
    ((items, words, copies),) = query(
        db,
        f"SELECT count(*), avg(length({text}) - length(replace({text}, ' ', '')) + 1), "
        "count(duplicate_of) FROM items",
    )
    tags = query(db, "SELECT count(*) * 1.0 / (SELECT count(*) FROM items) FROM item_tags")[0][0]
    pages = dict(query(db, "SELECT status, count(*) FROM article_pages GROUP BY 1"))
    return Poll(latency, mode, run, items, copies, words or 0, tags or 0, pages)


def report(extraction: dict[str, float], polls: list[Poll], args: argparse.Namespace) -> str:
    import trafilatura

    section = Section(SECTION, measured_with("bench_fulltext.py", args.argv))
    section.add(
        f"- machine: {machine(f'trafilatura {trafilatura.__version__}')}",
        f"- extraction: {extraction['pages']:.0f} generated article pages, median "
        f"{extraction['kb']:.0f} KB of HTML and {extraction['words']:.0f} words of story "
        "(navigation, an inline script blob, cookie banner, related stories, comments, footer "
        "around it), one process",
        f"- poll: {args.feeds} feeds × {args.items} items (80% about the topic, with a one-line "
        f"summary; their links lead to pages like the above) on {HOSTS} loopback hosts, "
        "`concurrency = 32`, `workers = 0`, fresh database each run; `auto` fetches the "
        "page of every matching item (all summaries are short)",
    )
    costs = [
        ("`extract_article` (trafilatura + cleaning + language)", ""),
        ("`prepare_items` on the extracted text (match, tags, fingerprint)", "prepare_"),
        ("for comparison: `prepare_items` on the feed's one-line summary", "feed_"),
    ]
    section.table(
        ["per page", "median ms", "p95 ms"],
        [[label, f"{extraction[key + 'median']:.1f}", f"{extraction[key + 'p95']:.1f}"]
         for label, key in costs],
    )  # fmt: skip
    rows = [
        [f"{p.latency * 1000:.0f} ms", f"`{p.mode}`", f"{p.run.seconds:.1f}",
         f"{p.run.cpu_seconds:.1f}", f"{p.run.other_load:.2f}", p.items, p.copies,
         sum(p.pages.values()), f"{p.words:.0f}", f"{p.tags:.1f}"]
        for p in polls
    ]  # fmt: skip
    section.table(
        ["server latency", "`[full_text] mode`", "wall s", "CPU s (all processes)",
         "other load, cores", "items stored", "near-duplicates", "pages fetched",
         "words per item", "tags per item"],
        rows, "rl" + "r" * 8,
    )  # fmt: skip
    by_mode = {(p.latency, p.mode): p for p in polls}
    effects = []
    for latency in dict.fromkeys(p.latency for p in polls):
        off, on = by_mode[latency, "never"].run, by_mode[latency, "auto"].run
        extra, cpu = on.seconds - off.seconds, on.cpu_seconds - off.cpu_seconds
        pages = max(1, sum(by_mode[latency, "auto"].pages.values()))
        effects.append(
            f"- at {latency * 1000:.0f} ms latency, full text adds {extra:.1f} s of wall time "
            f"({on.seconds / off.seconds:.1f}× the poll without it) and "
            f"{cpu:.1f} CPU-s: {cpu / pages * 1000:.0f} ms of CPU per fetched page."
        )
    section.add(*effects)
    section.add(
        "Wall time runs from process start to exit (imports, migration included). CPU is "
        "user + system of the poll and its worker processes. Words and tags are averages over "
        "the stored items (the feed text when full text is off). Other load is CPU the rest of "
        "the machine used meanwhile (the page server included), in cores: a figure much above "
        "0.1 means the run shared the machine and its times are pessimistic."
    )
    return str(section)


def main() -> None:
    parser = arguments(
        __doc__, quick="20 feeds, 40 pages; writes no docs", write="docs/benchmarks.md", seed=10
    )
    parser.add_argument("--feeds", type=int, default=100)
    parser.add_argument("--items", type=int, default=10)
    parser.add_argument("--pages", type=int, default=200, help="pages for the extraction cost")
    parser.add_argument("--latency", type=float, default=None, help="server delay, seconds")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.seed, args.items, args.latency or 0.0)
        return
    if args.quick:
        args.feeds, args.pages, args.no_write = 20, 40, True
    latencies = [0.0, 0.1] if args.latency is None else [args.latency]

    extraction = extraction_cost(args.pages, args.seed)
    print(f"extraction: median {extraction['median']:.1f} ms, p95 {extraction['p95']:.1f} ms")
    polls: list[Poll] = []
    with workdir(None, "bench-fulltext-") as work:
        for latency in latencies:
            command = [sys.executable, __file__, "--serve", "--seed", str(args.seed),
                       "--items", str(args.items), "--latency", str(latency)]  # fmt: skip
            with server_process(command) as (_server, stdout):
                lines = [stdout.readline().split() for _ in range(HOSTS)]
                sites = [(host, int(port)) for host, port in lines]
                for mode in ("never", "auto"):
                    poll = poll_once(work, sites, args.feeds, mode, latency)
                    print(
                        f"latency {latency * 1000:.0f} ms, {mode}: {poll.run.seconds:.1f} s; "
                        f"{poll.summary}"
                    )
                    polls.append(poll)
    publish(SECTION, report(extraction, polls, args), write=not args.no_write)


if __name__ == "__main__":
    main()
