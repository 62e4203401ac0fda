"""Prepared batches cross from the workers as plain pickles: read back, they are equal."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import write_config
from watcher.config import load_config
from watcher.prepare import PrepareFailure, PrepareJob, run_prepare_job
from watcher.similarity import DEFAULT_SETTINGS
from watcher.workers import plain_dumps

WILD = Path(__file__).parent / "fixtures" / "wild"
FEEDS = sorted(path.name for path in WILD.glob("*.xml"))[:8]


@pytest.mark.parametrize("name", FEEDS)
def test_a_prepared_real_feed_reads_back_equal(name: str, tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, poll="keep_unmatched = true\n"))
    job = PrepareJob(
        body=(WILD / name).read_bytes(),
        headers={"content-type": "application/xml"},
        url=f"https://wild.example/{name}",
        topics=config.topics,
        keep_unmatched=True,
        now=datetime(2026, 12, 2, 12, 0, tzinfo=UTC),
    )
    batch = run_prepare_job(job)
    back = pickle.loads(plain_dumps(batch))
    assert back == batch
    assert back == pickle.loads(pickle.dumps(batch))


def test_a_failure_and_a_dataclass_that_checks_itself_read_back_equal() -> None:
    failure = PrepareFailure("not_a_feed", "an HTML page", "NotAFeed")
    assert pickle.loads(plain_dumps(failure)) == failure
    # DedupeSettings has a __post_init__: it is pickled the default way
    assert pickle.loads(plain_dumps(DEFAULT_SETTINGS)) == DEFAULT_SETTINGS
