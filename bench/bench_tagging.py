"""Measure the cost of the tagging stage per item and print a Markdown table.

    python bench/bench_tagging.py [--items N] [--yake]   (copy the table into docs/benchmarks.md)

Texts are synthetic news items of 300, 500 and 800 words built from a fixed vocabulary
(deterministic), plus the seed articles when ``../shared/corpus/seeds`` exists. Each row
gives the median and 95th percentile of wall-clock time per item, the median CPU time
(steadier on a shared machine) and items per second for one process.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
from collections.abc import Callable, Sequence

from common import arguments, cpu_timed, machine, percentile, seed_articles, table, table_row, timed

from watcher.config import TopicConfig
from watcher.tagging import TaggingOptions, tag_item, warm_up

TOPICS = [
    TopicConfig(
        name="kant-air-base",
        title="Russia's Kant air base in Kyrgyzstan",
        query='"Kant" AND (Kyrgyzstan OR "air base" OR airbase)',
        keywords=("Kant", "Kyrgyzstan", "CSTO", "air defence", "air base", "Japarov", "Bishkek"),
        aliases={"CSTO": ("Collective Security Treaty Organization", "ОДКБ")},
    ),
    TopicConfig(
        name="arctic-shipping",
        title="Shipping on the Northern Sea Route",
        query='"Northern Sea Route" OR icebreaker',
        keywords=("icebreaker", "Northern Sea Route", "Murmansk", "LNG tanker"),
    ),
]

PLACES = [
    "Kyrgyzstan", "Bishkek", "Kant", "Osh", "Moscow", "Kazakhstan", "Astana", "Tajikistan",
    "Dushanbe", "Uzbekistan", "Tashkent", "China", "Beijing", "Central Asia", "Russia",
    "Murmansk", "Norway", "Ukraine", "Armenia", "Yerevan",
]  # fmt: skip
ORGS = [
    "the CSTO", "the Collective Security Treaty Organization", "NATO", "the Kremlin",
    "the Eurasian Economic Union", "the Defence Ministry", "the State Duma", "TASS",
    "the United Nations", "the Regional Water Council", "Reuters",
]  # fmt: skip
PEOPLE = [
    "President Sadyr Japarov", "Vladimir Putin", "the defence minister", "a senior official",
    "Foreign Minister Jeenbek Kulubaev", "an analyst in Almaty", "the base commander",
]  # fmt: skip
NOUNS = [
    "air base", "airbase", "air defence system", "runway", "drone unit", "helicopter squadron",
    "training exercise", "lease agreement", "security pact", "border dispute", "gas pipeline",
    "icebreaker", "supply route", "military budget", "peacekeeping force", "radar station",
    "joint exercise", "arms delivery", "water treaty", "trade corridor",
]  # fmt: skip
VERBS = [
    "said", "announced", "confirmed", "denied", "warned", "signed", "approved", "discussed",
    "planned", "reported", "criticised", "welcomed",
]  # fmt: skip
TEMPLATES = [
    "{person} {verb} that the {noun} near {place} would be expanded next year.",
    "According to {org}, the {noun} in {place} {verb} new funding on Tuesday.",
    "{org} {verb} the {noun}, which officials in {place} described as vital.",
    "The {noun} has been a point of friction between {place} and {place2} since 2012.",
    "Officials in {place} {verb} a plan to modernise the {noun} and the {noun2}.",
    "{person} visited {place} to inspect the {noun}, {org} reported.",
    "Critics in {place2} argue the {noun} gives {org} too much influence over {place}.",
    "The {noun} will host 1,500 troops and 12 aircraft, {person} {verb}.",
    "Read more: {noun} talks stall in {place}.",
    "Analysts expect the {noun} to feature at the next summit of {org} in {place}.",
]


def synthetic_item(rng: random.Random, words: int) -> tuple[str, str]:
    """A (title, text) pair of about ``words`` words, in paragraphs of 3-5 sentences."""
    title = f"{rng.choice(PLACES)} {rng.choice(VERBS)} {rng.choice(NOUNS)} deal"
    sentences: list[str] = []
    count = 0
    while count < words:
        sentence = rng.choice(TEMPLATES).format(
            person=rng.choice(PEOPLE),
            verb=rng.choice(VERBS),
            noun=rng.choice(NOUNS),
            noun2=rng.choice(NOUNS),
            place=rng.choice(PLACES),
            place2=rng.choice(PLACES),
            org=rng.choice(ORGS),
        )
        sentence = sentence[0].upper() + sentence[1:]
        sentences.append(sentence)
        count += len(sentence.split())
    paragraphs = [" ".join(sentences[i : i + 4]) for i in range(0, len(sentences), 4)]
    return title.capitalize(), "\n\n".join(paragraphs)


def measure(
    items: Sequence[tuple[str, str]], repeat: int, call: Callable[[str, str], object]
) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds for each call (every item ``repeat`` times, after one warm-up)."""
    for title, text in items:
        call(title, text)
    walls: list[float] = []
    cpus: list[float] = []
    for _ in range(repeat):
        for title, text in items:
            wall, cpu, _ = cpu_timed(call, title, text)
            walls.append(wall)
            cpus.append(cpu)
    return walls, cpus


HEADER = ["items", "words/item", "n", "median ms", "p95 ms", "median CPU ms", "items/s"]


def row(label: str, words: int, count: int, walls: list[float], cpus: list[float]) -> list[str]:
    """The cells of one row of :data:`HEADER`, printed to stderr as soon as measured."""
    walls_ms = [w * 1000 for w in walls]
    median, p95 = statistics.median(walls_ms), percentile(walls_ms, 95)
    cpu = statistics.median(c * 1000 for c in cpus)
    cells = [label, str(words), str(count), f"{median:.2f}", f"{p95:.2f}", f"{cpu:.2f}"]
    cells.append(f"{len(walls) / sum(walls):.0f}")
    print(table_row(cells), file=sys.stderr, flush=True)
    return cells


def main(argv: Sequence[str] | None = None) -> int:
    parser = arguments(__doc__)
    parser.add_argument("--items", type=int, default=40, help="synthetic items per size")
    parser.add_argument("--repeat", type=int, default=5, help="passes over each item set")
    parser.add_argument("--yake", action="store_true", help="also time the yake-package engine")
    args = parser.parse_args(argv)

    cold, _ = timed(warm_up, "en")

    def fast(title: str, text: str) -> object:
        return tag_item(title, text, TOPICS, ["kant-air-base"], "en")

    yake_options = TaggingOptions(keyphrase_engine="yake")

    def with_yake(title: str, text: str) -> object:
        return tag_item(title, text, TOPICS, ["kant-air-base"], "en", options=yake_options)

    rng = random.Random(20231012)
    sets = [
        (f"synthetic {words} words", words, [synthetic_item(rng, words) for _ in range(args.items)])
        for words in (300, 500, 800)
    ]
    seeds = [(title, text) for _number, title, text in seed_articles()]
    if seeds:
        mean_words = round(statistics.mean(len(f"{t} {x}".split()) for t, x in seeds))
        sets.append(("seed articles (5)", mean_words, seeds))

    rows = []
    for label, words, items in sets:
        walls, cpus = measure(items, args.repeat, fast)
        rows.append(row(label, words, len(items), walls, cpus))
    if args.yake:
        for label, words, items in sets:
            walls, cpus = measure(items[:10], 1, with_yake)
            rows.append(row(f"{label}, yake package engine", words, len(items[:10]), walls, cpus))

    averages = os.getloadavg()
    load = ", ".join(f"{value:.2f}" for value in averages)
    notes = [
        "",
        f"One process; {machine()}; load average at the end {load}.",
        f"First-use cost (gazetteer and organisation index, stopwords): {cold:.2f} s "
        "once per process; `warm_up()` pays it up front.",
        "Topics: 2 (11 keywords, 2 aliases); all tag kinds on; default options.",
    ]
    if averages[0] > 0.5 * (os.cpu_count() or 1):
        notes.append(
            "Other jobs were running on the machine: wall-clock figures include waiting for "
            "a core, and the CPU column is the steadier one."
        )
    print("\n".join(table(HEADER, rows) + notes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
