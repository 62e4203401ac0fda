"""What each feed's last fetch dropped for matching no topic, kept for the next fetch.

Such entries are never stored, so the feed's sightings cannot say they were seen; a feed
about everything (a wire service, a national daily) repeats dozens of them in every fetch.
Remembered here, an unchanged one is dropped again before its text is read
(:func:`watcher.prepare.prepare_feed`). The memory lasts as long as the process (a
daemon's poller) and holds one fetch per feed; a change of topics makes it forget.
"""

from __future__ import annotations

from collections.abc import Sequence

from watcher.config import TopicConfig

_Queries = tuple[tuple[str, str], ...]


def _queries(topics: Sequence[TopicConfig]) -> _Queries:
    """What a topic match depends on."""
    return tuple((topic.name, topic.query) for topic in topics)


class OffTopicMemory:
    def __init__(self) -> None:
        self._by_feed: dict[int, tuple[_Queries, frozenset[str]]] = {}

    def recall(self, feed_id: int, topics: Sequence[TopicConfig]) -> frozenset[str]:
        """The entry digests the feed's last fetch dropped, if matched against ``topics``."""
        found = self._by_feed.get(feed_id)
        if found is None or found[0] != _queries(topics):
            return frozenset()
        return found[1]

    def remember(self, feed_id: int, topics: Sequence[TopicConfig], digests: Sequence[str]) -> None:
        if digests:
            self._by_feed[feed_id] = (_queries(topics), frozenset(digests))
        else:
            self._by_feed.pop(feed_id, None)
