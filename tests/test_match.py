"""Topic matching with SQLite FTS5 boolean queries."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from watcher.config import TopicConfig
from watcher.errors import QueryError
from watcher.match import TopicMatcher, validate_query

DOCUMENTS = {
    "base": ("Air bases in Central Asia", "Moscow keeps aircraft at Kant near Bishkek."),
    "philosopher": ("Immanuel Kant", "A lecture on the Critique of Pure Reason."),
    "cyrillic": ("Авиабаза Кант получит новые самолёты", "Киргизия и Россия договорились."),
    "shouting": ("KANT AIRBASE", "KYRGYZSTAN EXPANDS RUNWAY"),
    "budget": ("Kyrgyz parliament", "Deputies vote on the budget for the coming year."),
    "diacritics": ("Café politique", "Une résumé of the day"),
}


def matching(query: str) -> set[str]:
    """The names of the DOCUMENTS that ``query`` matches."""
    names = list(DOCUMENTS)
    matcher = TopicMatcher([("topic", query)])
    try:
        results = matcher.match([DOCUMENTS[name] for name in names])
    finally:
        matcher.close()
    return {name for name, topics in zip(names, results, strict=True) if topics}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Kant AND Bishkek", {"base"}),
        ("Kant AND (Bishkek OR Kyrgyzstan)", {"base", "shouting"}),
        ("Bishkek OR budget", {"base", "budget"}),
        ("Kant NOT Critique", {"base", "shouting"}),
        ('"pure reason"', {"philosopher"}),
        ('"reason pure"', set()),
        ("Kyrgyz*", {"shouting", "budget"}),
        ("kant", {"base", "philosopher", "shouting"}),
        ("Кант AND Киргизия", {"cyrillic"}),
        ("кант", {"cyrillic"}),
        ("Авиабаз*", {"cyrillic"}),
        ("cafe AND resume", {"diacritics"}),
        ("title:Kant", {"philosopher", "shouting"}),
        ("NEAR(Kant Bishkek, 2)", {"base"}),
    ],
)
def test_boolean_queries(query: str, expected: set[str]) -> None:
    """AND, OR, NOT, phrases, prefixes, Cyrillic, case and diacritics behave as in FTS5."""
    assert matching(query) == expected


def test_plural_is_stemmed() -> None:
    """The phrase "air base" matches a text that says "air bases"."""
    assert matching('"air base"') == {"base"}


def test_each_document_gets_every_topic_it_matches() -> None:
    """Several topics are checked per document, in the order they were configured."""
    topics = [
        TopicConfig(name="kant", title="Kant", query="Kant"),
        TopicConfig(name="kyrgyz", title="Kyrgyz", query="Kyrgyz* OR Bishkek"),
    ]
    matcher = TopicMatcher.for_topics(topics)
    documents = [DOCUMENTS["base"], DOCUMENTS["budget"], DOCUMENTS["diacritics"]]
    assert matcher.match(documents) == [("kant", "kyrgyz"), ("kyrgyz",), ()]
    # the scratch index is emptied between batches: nothing carries over
    assert matcher.match([DOCUMENTS["philosopher"]]) == [("kant",)]
    assert matcher.match([DOCUMENTS["budget"]]) == [("kyrgyz",)]  # row 0 held "Kant" before
    assert matcher.match([]) == []
    matcher.close()


def test_no_topics_match_nothing() -> None:
    """Without topics every document matches none."""
    assert TopicMatcher([]).match([DOCUMENTS["base"]]) == [()]


@pytest.mark.parametrize(
    "query", ['"air base', "Kant AND", "(Kant OR Bishkek", "NOT Kant", "C++", "", "   "]
)
def test_invalid_query_raises_query_error(query: str) -> None:
    """A query FTS5 cannot parse raises QueryError carrying the query and a reason."""
    with pytest.raises(QueryError) as caught:
        validate_query(query)
    assert caught.value.query == query
    assert caught.value.reason


def test_valid_query_passes_validation() -> None:
    """The shipped kind of topic query is accepted."""
    validate_query('(Kant OR Кант*) AND (Kyrgyz* OR "air base" OR airbase)')


def test_hyphenated_word_outside_quotes_gets_a_hint() -> None:
    """FTS5's "no such column" for Issyk-Kul comes with advice to quote the word."""
    with pytest.raises(QueryError, match="quote hyphenated words"):
        validate_query("Issyk-Kul AND Kant")
    validate_query('"Issyk-Kul" AND Kant')


def test_one_matcher_can_be_shared_between_threads() -> None:
    """A cached matcher used from several threads at once gives each caller its own answers."""
    matcher = TopicMatcher([("kant", "Kant"), ("budget", "budget")])
    batches = {
        "kant": [DOCUMENTS["base"], DOCUMENTS["philosopher"]] * 50,
        "budget": [DOCUMENTS["budget"]] * 100,
    }
    expected = {"kant": [("kant",)] * 100, "budget": [("budget",)] * 100}
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [(name, pool.submit(matcher.match, batches[name])) for name in list(batches) * 10]
        for name, future in futures:
            assert future.result() == expected[name]
    matcher.close()
