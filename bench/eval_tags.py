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
form (:func:`clause_fragment`). CPU per item is the median ``time.process_time`` of one
``tag_item`` call (after one warm-up pass).
"""

from __future__ import annotations

import os
import re
import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import arguments, cpu_timed, machine, table

from watcher.corpus import document_from_text
from watcher.tagging import tag_item, warm_up

ENVIRONMENT = "WATCHER_KPCROWD"
KS = (5, 10)


_PORTER: Any = None


def stemmed_key(phrase: str) -> str:
    """A phrase as stemmed exact matching compares it: lower-case words (letters and
    digits), each Porter-stemmed (``snowballstemmer``), joined by single spaces."""
    global _PORTER
    if _PORTER is None:
        import snowballstemmer  # only the keyphrase evaluations need it

        _PORTER = snowballstemmer.stemmer("porter")
    words = re.findall(r"[^\W_]+", phrase.lower().replace("’", "'").replace("'s", ""))
    return " ".join(_PORTER.stemWords(words))


def _wordset(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Verb forms that make a phrase a clause rather than a name of a thing: auxiliaries and
# modals, and the inflected forms of verbs common in news headlines. Kept apart from
# watcher.tagging's own rules so that the measure does not simply restate them.
# Words that a noun phrase neither starts nor ends with: articles, pronouns, prepositions,
# conjunctions, and adverbs or adjectives that need a word after them.
_FUNCTION_WORDS = _wordset(
    """a an the this that these those my your his her its our their it he she they we you i
    me him them us of in on at by for from to with without into onto about above below over
    under after before since during between among against through until upon via as than
    and or but nor if then so yet because while although though when where which who whom
    whose what why how not no also very just only even still already more most less least
    additional further such other another each every some any all both either neither
    several many much few own same s"""
)
_AUXILIARIES = _wordset(
    """is are was were be been being am has have had having do does did will would shall
    should can could may might must won't can't isn't aren't wasn't weren't doesn't didn't
    hasn't haven't"""
)
# verbs that are not also common nouns: their -s form is a verb wherever it stands
_VERBS = _wordset(
    """accept add admit agree allow announce appear approve argue ask become begin believe
    bring buy confirm consider continue decide declare defend deny describe die earn expect
    find give go grow include join keep kill leave lift lose make meet predict prepare
    propose receive reject remain require reveal say see seek sell send soar spend
    strengthen suffer suggest take tell threaten try urge warn withdraw"""
)
# verbs that are also nouns ("talks", "plans"): a verb only inside a phrase
_VERB_NOUNS = _wordset(
    """back ban boost call charge claim cost cut drop end face fall fear file fire force
    gain halt help hit hold hope host increase launch lead mark move need offer order pass
    pay plan play post promise push raise reach release report rise rule run set show sign
    slam spark split start station stay step stop strike support talk top turn vote want
    win"""
)
_IRREGULAR_PAST = _wordset(
    """became began bought brought came fell gave got grew held kept led lost made met paid
    ran rose said sent sold spent stood struck took tried won wrote"""
)


def _verb_base(word: str) -> str | None:
    """The base of an -s or -ed form of a listed verb ("proposes" -> "propose")."""
    for ending, restore in (
        ("ies", "y"),
        ("es", ""),
        ("s", ""),
        ("ied", "y"),
        ("ed", ""),
        ("d", ""),
    ):
        if word.endswith(ending) and len(word) > len(ending) + 2:
            base = word[: len(word) - len(ending)] + restore
            if base in _VERBS or base in _VERB_NOUNS:
                return base
    return None


def clause_fragment(phrase: str) -> bool:
    """Whether a keyphrase is a piece of a clause rather than a noun phrase: it starts or
    ends on a function word ("russia will station additional"), holds an auxiliary or modal, or
    holds an inflected verb: a past form or an -s form after the first word ("fda proposes
    calorie counts", "move strengthens"). A rule, not a parser: an -s form that is also a
    plural noun ("talks", "plans") counts only inside the phrase, not as its last word, and
    a first word is taken as an adjective ("proposed rule")."""
    words = phrase.lower().replace("’", "'").split()
    if not words:
        return False
    if words[0] in _FUNCTION_WORDS or words[-1] in _FUNCTION_WORDS:
        return True
    if any(word in _AUXILIARIES or word in _IRREGULAR_PAST for word in words[1:]):
        return True
    last = len(words) - 1
    for index, word in enumerate(words[1:], start=1):
        base = _verb_base(word)
        if base is None:
            continue
        if word.endswith("d") or index < last or base in _VERBS:
            return True
    return False


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
