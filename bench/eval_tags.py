"""Evaluate automatic tags against keyphrases annotated by people (500N-KPCrowd).

500N-KPCrowd (Marujo et al., LREC 2012) holds 500 English news articles, each with the
keyphrases that crowd workers picked. It is in the public GitHub repository
``LIAAD/KeywordExtractor-Datasets`` (``datasets/500N-KPCrowd-v1.1.zip``), for research
use only: it is never copied into this repository. Unzip it anywhere and point this script
at the folder that holds ``docsutf8/`` and ``keys/``:

    python bench/eval_tags.py /path/to/500N-KPCrowd-v1.1 [--no-yake]
    WATCHER_KPCROWD=/path/to/500N-KPCrowd-v1.1 python bench/eval_tags.py

Each article is read as ``watcher corpus import`` reads a saved text file
(:func:`watcher.corpus.document_from_text`: the first line is the title) and tagged by
:func:`watcher.tagging.tag_item` with no topics. The predicted list is the item's
keyphrases, then its places, then its organisations (the order ``tag_item`` returns them
in). The reference is the ``yake`` package with its default settings (3-word phrases, its
own deduplication) on the same title and text.

Scoring is stemmed exact matching, as usual for this set: a predicted phrase counts when
its words, lower-cased and Porter-stemmed (``snowballstemmer``), equal those of a gold
keyphrase. Precision at k divides the hits among the first k predictions by k (an item with
fewer than k tags is not favoured), recall at k divides them by the number of gold
keyphrases, and F1 at k is averaged over articles (macro). The clause-fragment share is the
share of the first 10 predicted phrases that start or end on a function word or hold a verb
form (:func:`common.clause_fragment`). CPU per item is the median ``time.process_time`` of one
``tag_item`` call (after one warm-up pass).
"""

from __future__ import annotations

import os
import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from common import arguments, clause_fragment, cpu_timed, machine, stemmed_key, table

from watcher.corpus import document_from_text
from watcher.tagging import tag_item, warm_up

ENVIRONMENT = "WATCHER_KPCROWD"
KS = (5, 10)


@dataclass(frozen=True, slots=True)
class Article:
    title: str
    text: str
    gold: frozenset[str]  # stemmed keys


@dataclass(slots=True)
class Scores:
    name: str
    precision: dict[int, list[float]] = field(default_factory=lambda: {k: [] for k in KS})
    recall: dict[int, list[float]] = field(default_factory=lambda: {k: [] for k in KS})
    strict: list[float] = field(default_factory=list)  # hits in the first 10 / 10
    counts: list[int] = field(default_factory=list)
    phrases: int = 0
    fragments: int = 0
    cpu: list[float] = field(default_factory=list)
    fragment_examples: Counter[str] = field(default_factory=Counter)

    def add(self, article: Article, predicted: list[str]) -> None:
        keys: list[str] = []
        for phrase in predicted:  # a phrase and its variant count once
            key = stemmed_key(phrase)
            if key not in keys:
                keys.append(key)
        self.counts.append(len(keys))
        for k in KS:
            hits = sum(1 for key in keys[:k] if key in article.gold)
            self.precision[k].append(hits / max(len(keys[:k]), 1))
            self.recall[k].append(hits / max(len(article.gold), 1))
            if k == 10:
                self.strict.append(hits / k)
        for phrase in predicted[:10]:
            self.phrases += 1
            if clause_fragment(phrase):
                self.fragments += 1
                self.fragment_examples[phrase] += 1

    def row(self) -> list[str]:
        cells = [self.name]
        precision = {k: statistics.fmean(self.precision[k]) for k in KS}
        recall = {k: statistics.fmean(self.recall[k]) for k in KS}
        cells.extend(f"{precision[k]:.3f}" for k in KS)
        cells.append(f"{statistics.fmean(self.strict):.3f}")
        for k in KS:
            f1 = 2 * precision[k] * recall[k] / (precision[k] + recall[k] or 1.0)
            cells.append(f"{f1:.3f}")
        cells.append(f"{statistics.fmean(self.counts):.1f}")
        cells.append(f"{self.fragments / max(self.phrases, 1):.3f}")
        cells.append(f"{statistics.median(self.cpu) * 1000:.2f}" if self.cpu else "")
        return cells


def load(folder: Path) -> list[Article]:
    docs = folder / "docsutf8"
    keys = folder / "keys"
    if not docs.is_dir() or not keys.is_dir():
        raise SystemExit(f"{folder}: no docsutf8/ and keys/ folders (unzip 500N-KPCrowd-v1.1)")
    articles = []
    for path in sorted(docs.glob("*.txt")):
        key_file = keys / f"{path.stem}.key"
        if not key_file.exists():
            continue
        document = document_from_text(path.read_text(encoding="utf-8"))
        lines = key_file.read_text(encoding="utf-8").splitlines()
        gold = frozenset(stemmed_key(line) for line in lines if line.strip())
        articles.append(Article(document.title, document.text, gold))
    return articles


def watcher_tags(title: str, text: str) -> list[str]:
    tags = tag_item(title, text, [], [], "en")
    return [tag.name for tag in tags]


def yake_tags() -> Callable[[str, str], list[str]]:
    import yake

    extractor = yake.KeywordExtractor(lan="en", top=20)

    def run(title: str, text: str) -> list[str]:
        return [str(phrase).lower() for phrase, _ in extractor.extract_keywords(f"{title}\n{text}")]

    return run


def evaluate(
    name: str, articles: Sequence[Article], call: Callable[[str, str], list[str]]
) -> Scores:
    scores = Scores(name)
    for article in articles[:20]:  # warm-up (caches, first-use builds)
        call(article.title, article.text)
    for article in articles:
        _wall, cpu, predicted = cpu_timed(call, article.title, article.text)
        scores.cpu.append(cpu)
        scores.add(article, predicted)
    return scores


def main(argv: Sequence[str] | None = None) -> int:
    parser = arguments(__doc__)
    parser.add_argument("folder", nargs="?", type=Path, help=f"500N-KPCrowd (or ${ENVIRONMENT})")
    parser.add_argument("--no-yake", action="store_true", help="skip the yake package")
    args = parser.parse_args(argv)
    folder = args.folder or (Path(os.environ[ENVIRONMENT]) if ENVIRONMENT in os.environ else None)
    if folder is None:
        parser.error(f"give the 500N-KPCrowd folder or set ${ENVIRONMENT} (see bench/README.md)")
    articles = load(folder)
    warm_up("en")
    runs = [evaluate("watcher tag_item", articles, watcher_tags)]
    if not args.no_yake:
        runs.append(evaluate("yake package (defaults)", articles, yake_tags()))
    header = ["tagger", "P@5", "P@10", "P@10 of 10", "F1@5", "F1@10", "tags/item",
              "clause fragments", "CPU ms/item"]  # fmt: skip
    lines = [
        *table(header, [run.row() for run in runs]),
        "",
        f"{len(articles)} articles; {machine()}.",
    ]
    print("\n".join(lines))
    for run in runs:
        common = ", ".join(f"{p} ({n})" for p, n in run.fragment_examples.most_common(15))
        print(f"\n{run.name}: clause fragments: {common or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
