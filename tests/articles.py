"""Article pages as news sites serve them: the story wrapped in navigation, a cookie banner,
a sidebar, reader comments and a footer. Written for these tests (none of it is copied)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

NAVIGATION = "Front page World Politics Sport Weather Subscribe Log in"
COOKIE_BANNER = (
    "This site stores small files on your device to measure traffic. "
    "Choose Accept to agree or Settings to pick what is stored."
)
SIDEBAR = "Most read this week: a ferry timetable changes and a bakery wins a regional prize."
COMMENT = "Reader comment: I drove past that place years ago and nothing was happening there."
FOOTER = "Copyright Northern Ledger Media. Contact the newsroom. Privacy notice. Careers."
BOILERPLATE = (NAVIGATION, COOKIE_BANNER, SIDEBAR, COMMENT, FOOTER)

KANT_PARAGRAPHS = (
    "Engineers from Moscow arrived at the Kant air base outside Bishkek this week to inspect "
    "the runway lighting, according to two people familiar with the visit.",
    "The delegation also reviewed radar equipment that Kyrgyzstan hopes to fold into the joint "
    "air defence system it shares with its partners in the CSTO.",
    "A spokesman for the defence ministry in Bishkek declined to say how long the engineers "
    "would stay, but said the work was planned last spring and paid for from the alliance "
    "budget.",
    "Local residents in the town of Kant said convoys of lorries had been moving along the "
    "main road at night, carrying what looked like prefabricated hangars.",
    "Analysts in Almaty said the upgrade would let the base handle heavier transport aircraft "
    "and serve as a staging point for exercises in the Issyk-Kul region next summer.",
)


def article_page(
    headline: str,
    paragraphs: Sequence[str],
    *,
    author: str = "Dana Okoye",
    published: str = "2026-11-19T07:30:00+00:00",
    lang: str = "en",
    paywall: bool = False,
) -> bytes:
    """A whole HTML page around one story; ``paywall`` marks it as for subscribers only."""
    body = "".join(f"<p>{escape(paragraph)}</p>" for paragraph in paragraphs)
    json_ld = (
        '<script type="application/ld+json">{"@type": "NewsArticle", '
        f'"isAccessibleForFree": {"false" if paywall else "true"}}}</script>'
    )
    links = "".join(f'<li><a href="/{word.lower()}">{word}</a></li>' for word in NAVIGATION.split())
    return f"""<!DOCTYPE html>
<html lang="{lang}"><head><meta charset="utf-8">
<title>{escape(headline)} | Northern Ledger</title>
<meta name="author" content="{escape(author)}">
<meta property="article:published_time" content="{published}">
{json_ld}
</head><body>
<header><div class="logo">Northern Ledger</div><nav class="main-nav"><ul>{links}</ul></nav></header>
<div id="cookie-consent" class="cookie-banner"><p>{escape(COOKIE_BANNER)}</p>
<button>Accept</button><button>Settings</button></div>
<main><article class="story">
<h1>{escape(headline)}</h1>
<p class="byline">By <span class="author">{escape(author)}</span>,
<time datetime="{published}">19 November 2026</time></p>
<div class="story-body">{body}</div>
</article>
<section id="comments" class="comments"><h2>Comments</h2><div class="comment"><p>{escape(COMMENT)}</p></div></section>
</main>
<aside class="sidebar"><h2>Most read</h2><p>{escape(SIDEBAR)}</p></aside>
<footer class="site-footer"><p>{escape(FOOTER)}</p></footer>
</body></html>""".encode()


def paywall_page(headline: str, teaser: str) -> bytes:
    """A subscribers-only page: a teaser sentence, then a prompt to subscribe."""
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>{escape(headline)}</title>
<script type="application/ld+json">{{"@type": "NewsArticle", "isAccessibleForFree": false}}</script>
</head><body><nav><a href="/">Front page</a></nav>
<article><h1>{escape(headline)}</h1><p>{escape(teaser)}</p>
<div class="paywall"><p>Subscribe to keep reading.</p></div></article>
<footer><p>{escape(FOOTER)}</p></footer></body></html>""".encode()
