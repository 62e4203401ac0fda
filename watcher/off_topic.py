"""The key under which a feed's off-topic entries are remembered (table ``off_topic_entries``).

Entries that match no topic are never stored, so the feed's sightings cannot say they were
seen, and a feed about everything (a wire service, a national daily) repeats dozens of them
in every fetch. Each fetch replaces the feed's rows with the digests
(:func:`watcher.prepare.entry_digest`) of the entries it dropped for matching no topic; the
next fetch drops an unchanged one again before reading its text. The rows are keyed by the
topics they were matched against, so a change of topics makes them count for nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from watcher.config import TopicConfig


def topics_key(topics: Sequence[TopicConfig]) -> str:
    """A short digest of what a topic match depends on: each topic's name and query."""
    queries = [[topic.name, topic.query] for topic in topics]
    text = json.dumps(queries, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
