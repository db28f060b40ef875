"""Compare two main-text extractors, trafilatura and readability-lxml, on news pages made here.

`python -m eval.compare_extractors` (readability-lxml is not a dependency: `pip install
readability-lxml` first). Each page has a known body, title, author and date, wrapped in the
menus, banners, sidebars, comments and footers news sites carry. Reported per extractor: the
share of body sentences kept, the boilerplate phrases that leaked into the text, and the
metadata found.
"""

from __future__ import annotations

import re
from collections.abc import Callable

BODY = [
    "Gunmen on a motorcycle shot dead a prominent security analyst outside his home in Baghdad"
    " on Monday evening, police said.",
    "The analyst had advised the government on the Islamic State and had received threats from"
    " armed groups in recent months.",
    "The prime minister ordered an inquiry and promised that the killers would be brought to"
    " justice.",
]
BOILERPLATE = [
    "Subscribe today",
    "Accept all cookies",
    "Most popular",
    "Weekend recipes",
    "All rights reserved",
    "Sign in to comment",
    "Share on Facebook",
    "Related stories",
    "Advertisement",
]
TITLE, AUTHOR, DATE = "Security analyst shot dead in Baghdad", "Jane Reporter", "2022-11-09"


def _paragraphs() -> str:
    return "".join(f"<p>{p}</p>" for p in BODY)


def pages() -> dict[str, str]:
    """Made-up pages of four common layouts, each with the same article."""
    head = (
        f"<head><title>{TITLE} | The Daily</title><meta name='author' content='{AUTHOR}'>"
        f"<meta property='article:published_time' content='{DATE}T08:00:00Z'></head>"
    )
    nav = "<nav><a href='/'>Home</a> <a href='/world'>World</a> Subscribe today</nav>"
    cookie = "<div id='cookie'>We use cookies. Accept all cookies.</div>"
    aside = (
        "<aside><h3>Most popular</h3><ul><li><a href='/r'>Weekend recipes for a crowd</a>"
        "</li></ul></aside>"
    )
    footer = "<footer>Copyright 2022 The Daily. All rights reserved.</footer>"
    share = "<div class='share'>Share on Facebook</div>"
    return {
        "article tag": f"<html>{head}<body>{nav}{cookie}<article><h1>{TITLE}</h1>"
        f"{_paragraphs()}</article>{aside}{footer}</body></html>",
        "div layout": f"<html>{head}<body>{nav}<div class='main'><div class='story'>"
        f"<h1>{TITLE}</h1><div class='byline'>By {AUTHOR}</div>{share}{_paragraphs()}</div>"
        f"<div class='sidebar'>{aside}</div></div>{footer}</body></html>",
        "with comments": f"<html>{head}<body>{nav}<main><h1>{TITLE}</h1>{_paragraphs()}"
        "<section class='comments'><h3>Comments</h3><p>Sign in to comment.</p>"
        f"<p>Great piece, thanks!</p></section></main>{footer}</body></html>",
        "box inside": f"<html>{head}<body>{cookie}<article><h1>{TITLE}</h1>"
        f"<p>{BODY[0]}</p><div class='related'><h4>Related stories</h4><a href='/x'>Another"
        f" attack in Basra</a></div><div class='ad'>Advertisement</div><p>{BODY[1]}</p>"
        f"<p>{BODY[2]}</p></article>{footer}</body></html>",
    }


def _trafilatura(html: str) -> tuple[str, dict[str, str]]:
    from rag.ingest.pages import read_html

    articles = read_html(html.encode(), "page", [])
    if not articles:
        return "", {}
    a = articles[0]
    return a.text, {"title": a.title, "author": a.author or "", "date": str(a.date or "")}


def _readability(html: str) -> tuple[str, dict[str, str]]:
    import lxml.html
    from readability import Document

    document = Document(html)
    text = lxml.html.fromstring(document.summary()).text_content()
    return text, {"title": document.short_title(), "author": "", "date": ""}


def score(extract: Callable[[str], tuple[str, dict[str, str]]]) -> dict[str, float]:
    """Body sentences kept, boilerplate leaked and metadata right, over all pages."""
    kept = leaked = metadata = 0
    for html in pages().values():
        text, meta = extract(html)
        flat = re.sub(r"\s+", " ", text)
        kept += sum(sentence in flat for sentence in BODY)
        leaked += sum(phrase.lower() in flat.lower() for phrase in BOILERPLATE)
        metadata += sum(
            meta.get(k) == v for k, v in (("title", TITLE), ("author", AUTHOR), ("date", DATE))
        )
    n = len(pages())
    return {
        "body sentences kept": kept / (n * len(BODY)),
        "boilerplate phrases leaked": leaked,
        "metadata found (title, author, date)": metadata / (n * 3),
    }


def main() -> int:
    """Print both extractors' scores."""
    extractors = {"trafilatura": _trafilatura}
    try:
        import readability  # noqa: F401

        extractors["readability-lxml"] = _readability
    except ImportError:
        print("readability-lxml is not installed: pip install readability-lxml")
    for name, extract in extractors.items():
        print(name, score(extract))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
