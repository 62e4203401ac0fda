"""Article extraction (watcher.extract) on pages written for these tests; no network."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.articles import BOILERPLATE, KANT_PARAGRAPHS, article_page, paywall_page
from watcher.extract import extract_article

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
URL = "https://ledger.example/news/kant"

RUSSIAN_PARAGRAPHS = (
    "Инженеры из Москвы прибыли на авиабазу Кант под Бишкеком, чтобы осмотреть освещение "
    "взлётной полосы и радиолокационное оборудование.",
    "Представитель министерства обороны не сказал, сколько продлится работа, но отметил, "
    "что её запланировали ещё весной и оплатили из общего бюджета союзников.",
    "Жители города Кант рассказали, что по ночам по главной дороге шли колонны грузовиков "
    "с деталями сборных ангаров.",
)


def test_main_text_comes_without_navigation_banner_sidebar_comments_or_footer() -> None:
    """Only the story's paragraphs are extracted, in order, with author, date and language."""
    page = article_page("Engineers inspect Kant", KANT_PARAGRAPHS)
    result = extract_article(page, URL, now=NOW, content_type="text/html; charset=utf-8")

    assert result.status == "extracted"
    assert result.text.split("\n\n") == list(KANT_PARAGRAPHS)
    assert not any(noise[:30] in result.text for noise in BOILERPLATE)
    assert result.author == "Dana Okoye"
    assert result.published_at == "2026-11-19T07:30:00Z"
    assert result.lang == "en"
    assert not result.paywalled


def test_language_is_detected_from_the_article_text() -> None:
    """A Russian article is ``ru`` whatever the feed declared."""
    page = article_page("Инженеры на авиабазе Кант", RUSSIAN_PARAGRAPHS, lang="ru")
    result = extract_article(page, URL, now=NOW, lang_hint="en")
    assert result.status == "extracted"
    assert result.lang == "ru"
    assert "авиабазу Кант" in result.text


def test_a_publication_date_after_now_is_not_believed() -> None:
    """A page dated after ``now`` (a wrong clock, a typo) is not news from the future: its
    date comes from elsewhere on the page, never later than ``now``."""
    page = article_page("Story", KANT_PARAGRAPHS, published="2026-11-25T09:00:00+00:00")
    published = extract_article(page, URL, now=NOW).published_at
    assert published is not None
    assert published <= "2026-11-20T12:00:00Z"
    assert extract_article(page, URL, now=datetime(2026, 11, 26, tzinfo=UTC)).published_at == (
        "2026-11-25T09:00:00Z"
    )


def test_a_page_with_no_article_text_fails_empty() -> None:
    """A script-only application shell gives failed:empty and no text."""
    shell = b'<html><body><div id="app"></div><script src="/app.js"></script></body></html>'
    result = extract_article(shell, URL, now=NOW)
    assert (result.status, result.text) == ("failed:empty", "")


def test_a_body_that_is_not_html_is_not_parsed() -> None:
    """A PDF or an image behind an article link fails not_html by its content type."""
    result = extract_article(b"%PDF-1.7 ...", URL, now=NOW, content_type="application/pdf")
    assert result.status == "failed:not_html"


def test_a_declared_paywall_is_reported() -> None:
    """schema.org isAccessibleForFree=false marks the extraction as paywalled."""
    page = paywall_page("Locked", "Engineers from Moscow visited the base on Tuesday.")
    result = extract_article(page, URL, now=NOW)
    assert result.paywalled
    assert not extract_article(article_page("Free", KANT_PARAGRAPHS), URL, now=NOW).paywalled
