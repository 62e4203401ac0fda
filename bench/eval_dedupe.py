"""Evaluate near-duplicate detection and story clustering on the labelled dedupe fixtures.

Runs :func:`watcher.similarity.fingerprint` and :func:`watcher.similarity.decide` over the
items in published order, each against the earlier ones, looking candidates up by shared
keys in memory the way the store does in SQLite (band keys within the duplicate window, story
keys within the story window). Prints pairwise precision/recall/F1 for duplicates and for
stories, B-cubed for stories, timings, and the seed check when the seeds are present.

    python bench/eval_dedupe.py [--set story_threshold=0.2 ...] [--errors]
"""

from __future__ import annotations

import dataclasses
import json
import random
import statistics
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from common import (
    ROOT,
    SEED_STORIES,
    SEEDS,
    arguments,
    bcubed,
    dedupe_settings,
    pairwise,
    seed_articles,
    timed,
)

from watcher.similarity import (
    Candidate,
    Decision,
    DedupeSettings,
    Fingerprint,
    decide,
    fingerprint,
)

FIXTURES = ROOT / "tests" / "fixtures" / "dedupe" / "labelled.jsonl"
NOW = datetime(2023, 10, 13, 12, 0, tzinfo=UTC)


@dataclasses.dataclass
class Stored:
    item_id: int
    label: dict[str, Any]
    fp: Fingerprint
    at: datetime
    duplicate_of: int | None
    story_id: int
    decision: Decision


def _when(value: str | None, now: datetime) -> datetime:
    if not value:
        return now
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def run(
    items: Sequence[dict[str, Any]], settings: DedupeSettings, *, now: datetime = NOW
) -> tuple[list[Stored], dict[str, float]]:
    """Process ``items`` in order; return what each became and timing/candidate statistics."""
    stored: list[Stored] = []
    index: dict[int, list[int]] = defaultdict(list)  # key -> positions in ``stored``
    fp_times: list[float] = []
    decide_times: list[float] = []
    candidate_counts: list[int] = []
    for label in items:
        seconds, fp = timed(
            fingerprint, label["title"], label["text"], label.get("published"), settings
        )
        fp_times.append(seconds)
        at = _when(fp.published_at, now)
        found = set()
        for keys, window in (
            (fp.band_keys, settings.duplicate_window),
            (fp.story_keys, settings.story_window),
        ):
            hits = {pos for key in keys for pos in index.get(key, ())}
            found |= {pos for pos in hits if _close(stored[pos].at, at, window)}
        candidates = [
            Candidate(
                item_id=stored[pos].item_id,
                fingerprint=stored[pos].fp,
                duplicate_of=stored[pos].duplicate_of,
                story_id=stored[pos].story_id,
                published_at=stored[pos].at.isoformat(),
            )
            for pos in sorted(found)
        ]
        candidate_counts.append(len(candidates))
        seconds, decision = timed(decide, fp, candidates, settings, now)
        decide_times.append(seconds)
        item_id = len(stored) + 1
        story = decision.story_id if decision.story_id is not None else item_id
        stored.append(Stored(item_id, label, fp, at, decision.duplicate_of, story, decision))
        for key in fp.index_keys():
            index[key].append(len(stored) - 1)
    stats = {
        "fingerprint_ms_median": 1000 * statistics.median(fp_times),
        "fingerprint_ms_max": 1000 * max(fp_times),
        "decide_ms_median": 1000 * statistics.median(decide_times),
        "decide_ms_max": 1000 * max(decide_times),
        "candidates_mean": statistics.fmean(candidate_counts),
        "candidates_max": float(max(candidate_counts)),
    }
    return stored, stats


def _close(a: datetime, b: datetime, window: float | None) -> bool:
    return window is None or abs((a - b).total_seconds()) <= window


def groups(stored: Sequence[Stored]) -> tuple[list[int], list[int]]:
    """Predicted near-duplicate group and story per item."""
    dup = [s.duplicate_of if s.duplicate_of is not None else s.item_id for s in stored]
    return dup, [s.story_id for s in stored]


def load_fixtures(path: Path = FIXTURES) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    rows.sort(key=lambda row: (row["published"], row["id"]))
    return rows


def report(
    name: str, stored: Sequence[Stored], stats: dict[str, float] | None
) -> dict[str, tuple[float, float, float]]:
    dup_pred, story_pred = groups(stored)
    dup_true = [s.label["dup_group"] for s in stored]
    story_true = [s.label["story"] for s in stored]
    result = {
        "duplicates_pairwise": pairwise(dup_true, dup_pred),
        "stories_pairwise": pairwise(story_true, story_pred),
        "stories_bcubed": bcubed(story_true, story_pred),
    }
    print(
        f"\n{name}: {len(stored)} items, {len(set(dup_true))} near-duplicate groups, "
        f"{len(set(story_true))} stories"
    )
    for key, (p, r, f) in result.items():
        print(f"  {key:22s} precision {p:.3f}  recall {r:.3f}  F1 {f:.3f}")
    if stats:
        print(
            "  fingerprint {fingerprint_ms_median:.3f} ms median ({fingerprint_ms_max:.2f} max), "
            "decide {decide_ms_median:.3f} ms median ({decide_ms_max:.2f} max), "
            "candidates {candidates_mean:.1f} mean / {candidates_max:.0f} max".format(**stats)
        )
    return result


def errors(stored: Sequence[Stored]) -> None:
    """Print every item whose duplicate or story decision disagrees with its label."""
    first_of_group: dict[str, int] = {}
    first_of_story: dict[str, int] = {}
    by_id = {s.item_id: s for s in stored}
    for s in stored:
        dup_label, story_label = s.label["dup_group"], s.label["story"]
        want_dup = first_of_group.get(dup_label)
        got_dup = s.duplicate_of
        if story_label in first_of_story:
            story_ok = s.story_id != s.item_id and by_id[s.story_id].label["story"] == story_label
        else:
            story_ok = s.story_id == s.item_id
        dup_ok = (want_dup is None and got_dup is None) or (
            want_dup is not None
            and got_dup is not None
            and by_id[got_dup].label["dup_group"] == dup_label
        )
        if not (dup_ok and story_ok):
            print(
                f"  {s.label['id']:34s} dup {'ok ' if dup_ok else 'BAD'} story "
                f"{'ok ' if story_ok else 'BAD'} -> {s.decision.reason}"
            )
        first_of_group.setdefault(dup_label, s.item_id)
        first_of_story.setdefault(story_label, s.item_id)


def signals(stored: Sequence[Stored]) -> None:
    """How often each signal fired and how often it was right (against the labels)."""
    by_id = {s.item_id: s for s in stored}
    tally: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for s in stored:
        decision = s.decision
        if decision.signal == "none" or decision.matched_item is None:
            continue
        matched = by_id[decision.matched_item].label
        if decision.duplicate_of is not None:
            right = matched["dup_group"] == s.label["dup_group"]
        else:
            right = matched["story"] == s.label["story"]
        tally[f"{decision.signal} ({decision.confidence})"][0] += 1
        tally[f"{decision.signal} ({decision.confidence})"][1] += right
    print(
        "  decisions by signal: "
        + ", ".join(
            f"{name} {right}/{fired} right" for name, (fired, right) in sorted(tally.items())
        )
    )


def sweep(rows: Sequence[dict[str, Any]], settings: DedupeSettings) -> dict[str, float]:
    """Share of synthetic edits of the original articles still found as near-duplicates.

    Word changes replace a share of words by unseen ones; cuts keep the first part of the text;
    growth appends paragraphs of other articles. ``lsh`` is the share of edited copies that
    share at least one band key with the original (the store could find them at all).
    """
    originals = [row for row in rows if row["kind"] == "original"]
    filler = [p for row in originals for p in row["text"].split("\n\n")]
    rng = random.Random(7)
    results: dict[str, float] = {}
    edits: list[tuple[str, Any]] = [
        (f"words changed {int(100 * r)}%", r) for r in (0.02, 0.05, 0.08, 0.10, 0.15)
    ]
    edits += [(f"cut to first {int(100 * k)}%", ("cut", k)) for k in (0.8, 0.6, 0.4)]
    edits += [(f"grown by {int(100 * g)}%", ("grow", g)) for g in (0.25, 0.5, 1.0)]
    for name, edit in edits:
        found = lsh = 0
        for row in originals:
            words = row["text"].split(" ")
            if isinstance(edit, float):
                changed = [f"zq{rng.randrange(10**6)}" if rng.random() < edit else w for w in words]
                text = " ".join(changed)
            elif edit[0] == "cut":
                text = " ".join(words[: max(1, int(len(words) * edit[1]))])
            else:
                extra: list[str] = []
                while len(" ".join(extra).split()) < len(words) * edit[1]:
                    extra.append(rng.choice(filler))
                text = row["text"] + "\n\n" + "\n\n".join(extra)
            orig = fingerprint(row["title"], row["text"], row["published"], settings)
            copy = fingerprint("Another headline", text, row["published"], settings)
            lsh += bool(set(orig.band_keys) & set(copy.band_keys))
            decision = decide(copy, [Candidate(1, orig, None, 1, orig.published_at)], settings, NOW)
            found += decision.duplicate_of == 1
        results[name] = found / len(originals)
        print(
            f"  {name:22s} found as duplicate {found}/{len(originals)}, "
            f"share a band key {lsh}/{len(originals)}"
        )
    return results


def seed_check(settings: DedupeSettings) -> None:
    if not SEEDS.is_dir():
        print(f"\nseeds: {SEEDS} not found, skipped")
        return
    rows = [
        {"id": number, "title": title, "text": text, "published": None, "dup_group": number,
         "story": SEED_STORIES.get(number, number), "kind": "seed"}
        for number, title, text in seed_articles()
    ]  # fmt: skip
    stored, _ = run(rows, settings, now=NOW)
    report("seeds (no dates: content only, all within the story window)", stored, None)
    for s in stored:
        print(
            f"  seed {s.label['id']}: story of seed "
            f"{stored[s.story_id - 1].label['id']}, duplicate_of "
            f"{None if s.duplicate_of is None else stored[s.duplicate_of - 1].label['id']}"
            f" - {s.decision.reason}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = arguments(__doc__)
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="a [dedupe] setting"
    )
    parser.add_argument("--errors", action="store_true", help="list wrong decisions")
    args = parser.parse_args(argv)
    settings = dedupe_settings(args.set)
    rows = load_fixtures()
    stored, stats = run(rows, settings, now=NOW + timedelta(days=3650))
    report("fixtures", stored, stats)
    signals(stored)
    if args.errors:
        errors(stored)
    print("\nsynthetic edits of the originals, compared with the original:")
    sweep(rows, settings)
    seed_check(settings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
