"""Saved news pages and RSS/Atom feeds become articles, without the page's boilerplate."""

from __future__ import annotations

import datetime as dt

import pytest

from rag.ingest.files import load_collection
from rag.service import open_engine

BOILERPLATE = [
    "Subscribe now",
    "cookies",
    "Most read",
    "autumn soup",
    "All rights reserved",
    "Privacy policy",
    "Sign in to comment",
]

PAGE = """<!doctype html><html><head>
<title>Drone strike kills militia commander near Baghdad | Daily Wire</title>
<meta name="author" content="Jane Reporter">
<meta property="article:published_time" content="2022-11-09T08:00:00Z">
</head><body>
<nav><ul><li><a href="/">Home</a></li><li><a href="/world">World</a></li>
<li>Subscribe now for 1 dollar a week</li></ul></nav>
<div class="cookie-banner">We use cookies to improve your experience.</div>
<article><h1>Drone strike kills militia commander near Baghdad</h1>
<p>A drone strike killed a senior commander of the Kata'ib Hezbollah militia near Baghdad
airport on Tuesday night, Iraqi security officials said.</p>
<p>The commander, Abu Ali al-Basri, was travelling in a convoy of two vehicles when the
missiles hit, according to two officials who spoke on condition of anonymity.</p>
<p>No group claimed responsibility. The militia vowed revenge in a statement on Wednesday.</p>
</article>
<aside><h3>Most read</h3><ul><li><a href="/a">Ten recipes for the perfect autumn soup</a></li>
</ul></aside>
<section class="comments"><p>Sign in to comment.</p></section>
<footer><p>Copyright 2022 Daily Wire. All rights reserved.</p>
<p><a href="/privacy">Privacy policy</a></p></footer>
</body></html>"""

RSS = """<?xml version="1.0" encoding="ISO-8859-1"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"
 xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel><title>Wire</title><link>https://example.org/</link><description>News</description>
<item><title>Rockets hit Erbil airport</title><link>https://example.org/erbil</link>
<pubDate>Tue, 16 Feb 2021 21:00:00 +0000</pubDate><dc:creator>Sam Writer</dc:creator>
<description>Short teaser.</description>
<content:encoded><![CDATA[<p>Several rockets struck Erbil airport on Monday night, killing a
civilian contractor.</p><p>A group called Saraya Awliya al-Dam claimed the attack.
Caf\xe9 owners nearby said the blasts shook windows.</p>]]></content:encoded></item>
<item><title>Militia leader arrested in Basra</title><link>https://example.org/basra</link>
<pubDate>Wed, 17 Feb 2021 09:00:00 +0000</pubDate><author>desk@example.org (Lee Kim)</author>
<description>Police in Basra arrested a militia leader accused of killing protesters.</description>
</item></channel></rss>""".encode("latin-1")

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Desk</title><id>urn:desk</id>
<updated>2021-03-01T10:00:00Z</updated>
<entry><title>Pope visits Mosul</title><id>urn:desk:1</id>
<link href="https://example.org/mosul"/><updated>2021-03-07T10:00:00Z</updated>
<author><name>Ann Lee</name></author>
<content type="html">&lt;p&gt;Pope Francis prayed for the victims of war among the ruins of
Mosul's churches on Sunday.&lt;/p&gt;</content></entry></feed>"""


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "page.html").write_text(PAGE, encoding="utf-8")
    (tmp_path / "wire.rss").write_bytes(RSS)
    (tmp_path / "desk.atom").write_text(ATOM, encoding="utf-8")
    return tmp_path


def test_a_page_gives_its_article_without_menus_banners_or_footers(folder):
    collection = load_collection([folder / "page.html"])
    (article,) = collection.articles
    assert article.title == "Drone strike kills militia commander near Baghdad"
    assert (article.author, article.date) == ("Jane Reporter", dt.date(2022, 11, 9))
    assert article.body.startswith("A drone strike killed a senior commander")
    assert "The militia vowed revenge" in article.body
    for phrase in BOILERPLATE:
        assert phrase.lower() not in article.text.lower(), phrase
    start, end = article.byline
    assert article.text[start:end] == "Author: Jane Reporter | Date: 2022-11-09"


def test_feeds_give_one_article_per_entry_with_link_date_and_summaries_marked(folder):
    collection = load_collection([folder / "wire.rss", folder / "desk.atom"])
    by_title = {a.title: a for a in collection.articles}
    assert set(by_title) == {
        "Rockets hit Erbil airport",
        "Militia leader arrested in Basra",
        "Pope visits Mosul",
    }
    erbil = by_title["Rockets hit Erbil airport"]
    assert erbil.url == "https://example.org/erbil"
    assert (erbil.author, erbil.date) == ("Sam Writer", dt.date(2021, 2, 16))
    assert erbil.body.count("\n\n") == 1 and "Café owners" in erbil.body  # Latin-1 read
    assert "teaser" not in erbil.text  # the full content wins over the summary
    basra = by_title["Militia leader arrested in Basra"]
    assert basra.body.startswith("Police in Basra arrested")
    assert basra.text.endswith("Date: 2021-02-17 | Summary from the feed")
    assert basra.author == "Lee Kim"  # RSS's "address (name)"
    mosul = by_title["Pope visits Mosul"]
    assert (mosul.author, mosul.date, mosul.url) == (
        "Ann Lee",
        dt.date(2021, 3, 7),
        "https://example.org/mosul",
    )
    assert len({a.id for a in collection.articles}) == 3


def test_pages_and_feeds_without_articles_are_skipped_and_named(tmp_path):
    (tmp_path / "empty.html").write_text(
        "<html><head><title>Menu</title></head><body><nav><a href=/>Home</a></nav>"
        "<footer>All rights reserved</footer></body></html>"
    )
    (tmp_path / "untitled.html").write_text(
        "<html><body><article><p>" + "A paragraph of real news text. " * 5 + "</p></article>"
        "</body></html>"
    )
    (tmp_path / "notes.xml").write_text("<?xml version='1.0'?><notes><n>hi</n></notes>")
    (tmp_path / "good.txt").write_text("Good title\n\nGood body.", encoding="utf-8")
    collection = load_collection([tmp_path])
    assert [a.title for a in collection.articles] == ["Good title"]
    warnings = "\n".join(collection.warnings)
    assert "empty.html: skipped, no article text found" in warnings
    assert "untitled.html: skipped, the page has no title" in warnings
    assert "notes.xml: skipped, not a feed with entries" in warnings


@pytest.mark.model
def test_a_page_added_to_the_shipped_articles_is_answered_without_boilerplate(
    folder, tmp_path, real_encoder
):
    from rag.settings import DEFAULT_COLLECTION, Settings

    settings = Settings(
        collection=(DEFAULT_COLLECTION, folder / "page.html", folder / "wire.rss"),
        index_dir=tmp_path / "index",
    )
    engine = open_engine(settings, real_encoder)
    answer = engine.ask("What struck Erbil airport on Monday night?")
    assert answer.answered and "rockets" in answer.sentences[0].text
    cited = answer.sentences[0].citations[0]
    assert cited.article_id.startswith("rockets-hit-erbil-airport")
    assert engine.index.articles[cited.article_id].url == "https://example.org/erbil"
    answer = engine.ask("Which militia commander was killed near Baghdad airport?")
    assert answer.answered and "senior commander" in answer.sentences[0].text
    assert answer.sentences[0].citations[0].article_id.startswith("drone-strike-kills")
    quoted = " ".join(s.text for s in answer.sentences) + " ".join(
        p.chunk.text for p in answer.passages
    )
    for phrase in BOILERPLATE:
        assert phrase.lower() not in quoted.lower(), phrase


def test_four_page_layouts_keep_the_whole_story_and_no_boilerplate():
    from eval.compare_extractors import _trafilatura, score

    assert score(_trafilatura) == {
        "body sentences kept": 1.0,
        "boilerplate phrases leaked": 0,
        "metadata found (title, author, date)": 1.0,
    }
