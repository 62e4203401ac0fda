"""Evaluate story grouping (dedupe level 3) through the product path, in random arrival orders.

Every document goes through :func:`watcher.prepare.prepare_items` (fingerprint and story
vector, as in the pool workers) and :func:`watcher.ingest.ingest_batch` (the writer) into a
fresh SQLite store, undated (as an import
without dates: every time window admits every pair, so content alone decides), in
batches as an import would send them. Prints, per arrival order and as a summary:
pairwise precision/recall/F1 of "same story" against "same event", B-cubed F1, the share
of same-topic different-event pairs merged (hard negatives), and for a mixed-language set
the F1 over pairs of items in different languages.

Sets:

* ``ecb``: ``../shared/eval/stories/ecbplus-dev.jsonl`` next to the repository (real English news, 44 events
  in 22 topics of two events each; see its README). Skipped when absent.
* ``cross``: ``tests/fixtures/stories/crosslang.jsonl``, invented events written in
  Russian and in English (translations), two events per topic, stored after the same
  English background as ``halves``.
* ``seeds``: ``../shared/corpus/seeds`` in all 120 orders (000/002/003 one story, 001
  and 004 their own).
* ``halves``: one event told half in Russian, half in English, no sentence shared (the
  kind of the held-out cross-language measurement), stored after an English background
  (ECB+ dev when present, else the dedupe fixtures) so that the correction runs. The file is
  ``--halves PATH`` or ``$WATCHER_HALVES``, else ``tests/fixtures/stories/halves.jsonl``
  (invented). Rows are either halves (``id``, ``topic``, ``event``, ``lang``, ``title``,
  ``text``) or parallel documents (``id``, optional ``topic``, ``ru`` and ``en``: the
  aligned sentences) that are split here: the first half of the sentences in Russian, the
  rest in English, each half's first sentence its title. See bench/README.md.

    python bench/eval_stories.py [--sets ecb,cross,seeds,halves] [--orders 5] [--batch 25]
        [--halves PATH] [--poll [--passes N] | --daemon]
        [--set story_threshold=0.3] [--set LEAD_WEIGHT=1]

``--set`` overrides a ``[dedupe]`` setting (:class:`watcher.similarity.DedupeSettings`) or a
constant of :mod:`watcher.story_vectors`.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import random
import statistics
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import (
    ROOT,
    SEED_STORIES,
    SEEDS,
    Tally,
    arguments,
    bcubed,
    dedupe_settings,
    prf,
    seed_articles,
    time_calls,
)

from watcher import late_leads, pass_state, prepare, story_grouping, story_vectors
from watcher.config import TopicConfig
from watcher.corpus import Document, to_item
from watcher.ingest import ingest_batch
from watcher.poll import PASS_PART_ITEMS
from watcher.prepare import prepare_items
from watcher.regroup import cluster_imported, cluster_pending
from watcher.similarity import DEFAULT_SETTINGS, DedupeSettings
from watcher.store import Store
from watcher.store import stories as story_store

SHARED = Path(__file__).resolve().parents[2] / "shared"
ECB = SHARED / "eval" / "stories" / "ecbplus-dev.jsonl"
CROSS = ROOT / "tests" / "fixtures" / "stories" / "crosslang.jsonl"
BACKGROUND = ROOT / "tests" / "fixtures" / "dedupe" / "labelled.jsonl"
HALVES = ROOT / "tests" / "fixtures" / "stories" / "halves.jsonl"
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Doc:
    id: str
    topic: str
    event: str
    title: str
    text: str
    lang: str | None = None


@dataclass(frozen=True, slots=True)
class Scores:
    pairwise: tuple[float, float, float]
    bcubed: tuple[float, float, float]
    hard_merged: float
    """Share of same-topic, different-event pairs put into one story."""
    cross: tuple[float, float, float] | None
    """Pairwise P/R/F1 over pairs of items in different languages (None: one language)."""
    stories: int
    seconds: float
    """Writer time (ingest_batch) for the scored documents."""
    prepare_seconds: float
    """Worker time (prepare_items: fingerprint and story vector) for the scored documents."""
    correct_seconds: float
    """Of the writer time, the story correction's (story_grouping.correct)."""


def _doc(row: dict[str, Any]) -> Doc:
    return Doc(
        str(row["id"]),
        str(row["topic"]),
        str(row["event"]),
        row["title"],
        row["text"],
        row.get("lang"),
    )


def load_jsonl(path: Path) -> list[Doc]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [_doc(json.loads(line)) for line in lines if line.strip()]


def _half(doc_id: str, topic: str, event: str, lang: str, sentences: Sequence[str]) -> Doc:
    first, *rest = [sentence.strip() for sentence in sentences if sentence.strip()]
    return Doc(f"{doc_id}-{lang}", topic, event, first, " ".join(rest), lang)


def load_halves(path: Path) -> list[Doc]:
    """Halves rows as they are; parallel documents split: the first half of the sentences
    in Russian, the second half in English (they share the event, not a sentence)."""
    docs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        if "ru" not in row:
            docs.append(_doc(row))
            continue
        ru, en = row["ru"], row["en"]
        if len(ru) != len(en) or len(ru) < 4:
            continue  # not aligned sentence by sentence, or too short to halve
        cut = len(ru) // 2
        doc_id, topic = str(row["id"]), str(row.get("topic", row["id"]))
        docs.append(_half(doc_id, topic, doc_id, "ru", ru[:cut]))
        docs.append(_half(doc_id, topic, doc_id, "en", en[cut:]))
    return docs


def load_background(path: Path = BACKGROUND) -> list[Doc]:
    """Other news stored before a set (undated, not scored): document frequencies need a
    corpus (``MIN_DOCUMENTS``), as a store in use has one."""
    docs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        docs.append(Doc(f"bg-{row['id']}", "bg", f"bg-{row['story']}", row["title"], row["text"]))
    return docs


SPENT = Tally()
"""Seconds spent on the documents :func:`group` scored last: "worker" (prepare_items),
"writer" (ingest_batch and the clustering at the end) and, of the writer's, "correction"
(story_grouping.correct, timed wherever it runs)."""
time_calls([(story_grouping, "correct", "correction")], SPENT.add)

EVAL_TOPIC = TopicConfig(name="eval", title="Eval", query="zzzevalnothing")
"""As a pass or the daemon stores them: a topic that matches nothing (every document is
kept all the same), so leads are encoded as there, only once the story window holds both
scripts."""
PASS_SINCE = "2000-01-01T00:00:00Z"
"""Every eval document is first seen inside the story window of its pass."""


MODES = ("import", "poll", "daemon")
"""How the documents are stored: as ``watcher corpus import`` does (no feed, undated items
pass every window, one clustering of the import at its end); as ``watcher poll`` passes do
(feed items first seen now, the corrections held, one clustering of each pass's items at its
end); as ``watcher run``'s refreshes do (each batch corrected or clustered as it is stored),
scored as they leave the stories: what an instant alert announces, before the daemon's story
job tidies them."""


def group(
    docs: Sequence[Doc],
    *,
    batch: int,
    background: Sequence[Doc] = (),
    settings: DedupeSettings = DEFAULT_SETTINGS,
    mode: str = "import",
    passes: int = 1,
) -> dict[str, int]:
    """Store ``background`` then ``docs`` in this order into a fresh store as ``mode`` does
    (one of :data:`MODES`; ``poll`` over ``passes`` passes); each document's story id.
    :data:`SPENT` holds the seconds ``docs`` took."""
    seen_at = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
    feeds = mode != "import"
    with tempfile.TemporaryDirectory() as folder:
        store = Store.open(Path(folder) / "eval.db")
        feed_id = None
        if feeds:
            store.add_feed("http://127.0.0.1/eval.xml", now=seen_at)
            feed_id = int(store.db.execute("SELECT id FROM feeds").fetchone()[0])
        pass_size = math.ceil(len(docs) / passes)

        def tidy() -> None:  # the leads the window lacks, then the pending clustering
            while waiting := late_leads.pending(store, since=PASS_SINCE):
                with store.transaction():
                    leads = story_vectors.lead_vectors(late_leads.documents(waiting))
                    applied = late_leads.apply(store, waiting, leads, settings, now=seen_at)
                if not applied.items:
                    break
            size = PASS_PART_ITEMS
            cluster_pending(store, settings, now=seen_at, size=size, members=size // 2)

        def end_pass() -> None:  # as a pass ends (Poller.poll: tidy_stories, cluster_pending)
            pass_state.hold_corrections(store, held=False)
            pass_state.defer_matching(store, deferred=False)
            tidy()
            pass_state.hold_corrections(store, held=True)
            pass_state.defer_matching(store, deferred=True)

        def end_import(stored: list[int]) -> None:  # as `watcher corpus import` ends
            pass_state.hold_corrections(store, held=False)
            cluster_imported(store, stored, settings, now=seen_at)

        def prepare(pending: list[Any]) -> list[Any]:
            if not feeds:  # an import: every lead
                return prepare_items(pending, (), keep_unmatched=True)[0]
            # a topic is configured: leads once both scripts are in
            seen = story_store.scripts_seen(store, since=PASS_SINCE)
            return prepare_items(pending, (EVAL_TOPIC,), keep_unmatched=True, scripts_seen=seen)[0]

        try:
            items = {}
            for part, scored in ((background, False), (docs, True)):
                SPENT.clear()
                stored: list[int] = []
                # a pass, and an import, hold the corrections until their end
                pass_state.hold_corrections(store, held=mode != "daemon")
                pass_state.defer_matching(store, deferred=mode == "poll")
                for start in range(0, len(part), batch):
                    new_pass = start and start // pass_size != (start - batch) // pass_size
                    if mode == "poll" and scored and new_pass:
                        end_pass()
                    pending = []
                    for doc in part[start : start + batch]:
                        document = Document(doc.title, doc.text, external_id=doc.id, lang=doc.lang)
                        item = to_item(document, NOW)
                        assert item is not None
                        if scored:
                            items[doc.id] = item
                        pending.append(item)
                    prepared = SPENT.timed("worker", prepare, pending)
                    outcome = SPENT.timed(
                        "writer", ingest_batch, store, prepared, feed_id=feed_id, now=seen_at,
                        settings=settings,
                    )  # fmt: skip
                    stored.extend(outcome.new_item_ids)
                if mode == "poll":
                    SPENT.timed("writer", end_pass)
                elif mode == "import":  # the daemon's refreshes leave the stories as they are
                    SPENT.timed("writer", end_import, stored)
            story_of = dict(store.db.execute("SELECT id, story_id FROM items").fetchall())
            result = {}
            for doc_id, item in items.items():
                found = store.find_exact(item, None)  # the same text twice: one item
                assert found is not None
                result[doc_id] = story_store.resolve_story(store, story_of[found[0]])
            return result
        finally:
            store.close()


def score(docs: Sequence[Doc], story: dict[str, int], spent: Tally) -> Scores:
    """The scores of ``story`` (each document's story) against the events, and the seconds
    ``spent`` storing them."""
    tp = fp = fn = 0
    ctp = cfp = cfn = 0
    hard = hard_merged = 0
    languages = {doc.lang for doc in docs}
    for a, b in itertools.combinations(docs, 2):
        truth, merged = a.event == b.event, story[a.id] == story[b.id]
        tp += truth and merged
        fp += merged and not truth
        fn += truth and not merged
        if a.lang != b.lang:
            ctp += truth and merged
            cfp += merged and not truth
            cfn += truth and not merged
        if a.topic == b.topic and not truth:
            hard += 1
            hard_merged += merged
    predicted = [story[doc.id] for doc in docs]
    return Scores(
        pairwise=prf(tp, fp, fn),
        bcubed=bcubed([doc.event for doc in docs], predicted),
        hard_merged=hard_merged / hard if hard else 0.0,
        cross=prf(ctp, cfp, cfn) if len(languages) > 1 else None,
        stories=len(set(predicted)),
        seconds=spent["writer"],
        prepare_seconds=spent.get("worker", 0.0),
        correct_seconds=spent.get("correction", 0.0),
    )


def _line(label: str, s: Scores) -> str:
    p, r, f = s.pairwise
    text = (
        f"  {label:10s} pairwise P {p:.3f} R {r:.3f} F1 {f:.3f} | B3 F1 {s.bcubed[2]:.3f}"
        f" | hard neg. merged {100 * s.hard_merged:5.1f}% | {s.stories} stories"
    )
    if s.cross is not None:
        text += f" | cross-language P {s.cross[0]:.3f} R {s.cross[1]:.3f} F1 {s.cross[2]:.3f}"
    return text + (
        f" | writer {s.seconds:.1f} s (correction {s.correct_seconds:.1f} s),"
        f" workers {s.prepare_seconds:.1f} s"
    )


def evaluate(
    name: str, docs: Sequence[Doc], orders: int, batch: int, **storing: Any
) -> list[Scores]:
    """Scores of ``docs`` stored in ``orders`` random orders by :func:`group` (``storing``:
    its keyword arguments)."""
    events = len({doc.event for doc in docs})
    print(f"\n{name}: {len(docs)} documents, {events} events, {orders} arrival orders")
    results = []
    for seed in range(orders):
        shuffled = list(docs)
        random.Random(seed).shuffle(shuffled)
        results.append(score(docs, group(shuffled, batch=batch, **storing), SPENT))
        print(_line(f"order {seed}", results[-1]))
    f1s = [s.pairwise[2] for s in results]

    def per_item(seconds: Iterable[float]) -> str:
        return f"{1000 * statistics.fmean(seconds) / len(docs):.2f}"

    print(
        f"  summary    pairwise F1 min {min(f1s):.3f} mean {statistics.fmean(f1s):.3f}"
        f" | B3 F1 mean {statistics.fmean(s.bcubed[2] for s in results):.3f}"
        f" | hard neg. merged max {100 * max(s.hard_merged for s in results):.1f}%"
        f" | ms per item: writer {per_item(s.seconds for s in results)}"
        f" (correction {per_item(s.correct_seconds for s in results)})"
        f", workers {per_item(s.prepare_seconds for s in results)}"
        + (
            f" | cross-language F1 min {min(s.cross[2] for s in results if s.cross):.3f}"
            if results[0].cross is not None
            else ""
        )
    )
    return results


def seed_orders(batch: int, **storing: Any) -> int:
    """How many of the 120 arrival orders of the seeds give exactly the expected stories."""
    docs = [
        Doc(number, "seeds", SEED_STORIES[number], title, text)
        for number, title, text in seed_articles()
    ]
    right = 0
    for order in itertools.permutations(docs):
        story = group(order, batch=batch, **storing)
        right += all(
            (story[a.id] == story[b.id]) == (a.event == b.event)
            for a, b in itertools.combinations(docs, 2)
        )
    print(f"\nseeds: exact in {right} of 120 arrival orders")
    return right


def main(argv: Sequence[str] | None = None) -> int:
    parser = arguments(__doc__)
    parser.add_argument("--sets", default="ecb,cross,seeds")
    parser.add_argument("--orders", type=int, default=5)
    parser.add_argument("--batch", type=int, default=25)
    parser.add_argument(
        "--halves",
        type=Path,
        default=Path(os.environ.get("WATCHER_HALVES") or HALVES),
        help="the halves set (default $WATCHER_HALVES, else the invented fixture)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a [dedupe] setting (story_threshold=0.3) or a constant of "
        "watcher.story_vectors (LEAD_WEIGHT=1)",
    )
    parser.add_argument(
        "--poll",
        action="store_true",
        help="store the documents as `watcher poll` does instead of as `watcher corpus import`",
    )
    parser.add_argument(
        "--daemon", action="store_true", help="store the documents as `watcher run` does"
    )
    parser.add_argument(
        "--passes", type=int, default=1, help="with --poll: over this many passes in a row"
    )
    args = parser.parse_args(argv)
    storing = {
        "settings": dedupe_settings(args.set, story_vectors, story_grouping, prepare),
        "mode": "poll" if args.poll else "daemon" if args.daemon else "import",
        "passes": max(1, args.passes),
    }
    sets = set(args.sets.split(","))
    if "ecb" in sets:
        if ECB.is_file():
            evaluate("ECB+ dev", load_jsonl(ECB), args.orders, args.batch, **storing)
        else:
            print(f"\nECB+ dev: {ECB} not found, skipped")
    # the cross-language sets follow a store in use: with ECB+ dev, 486 English documents,
    # enough for the correction (CORRECTION_MIN_DOCUMENTS); else the 141 dedupe fixtures
    english = load_jsonl(ECB) if ECB.is_file() else load_background()
    background = [dataclasses.replace(doc, id=f"bg-{doc.id}") for doc in english]
    after = f"after {len(english)} English documents"
    if "cross" in sets:
        name = f"cross-language translations (RU/EN), {after}"
        evaluate(name, load_jsonl(CROSS), args.orders, args.batch, background=background, **storing)
    if "halves" in sets:
        name = f"RU/EN halves ({args.halves.name}), {after}"
        docs = load_halves(args.halves)
        evaluate(name, docs, args.orders, args.batch, background=background, **storing)
    if "seeds" in sets:
        if SEEDS.is_dir():
            seed_orders(args.batch, **storing)
        else:
            print(f"\nseeds: {SEEDS} not found, skipped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
