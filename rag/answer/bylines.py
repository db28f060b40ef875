"""Questions about an article itself (who wrote it, when) answered by quoting its byline."""

from __future__ import annotations

import re

from rag.answer.compose import Reply, citation
from rag.types import AnswerSentence, Article


def byline_reply(article: Article, kind_of_field: str) -> Reply:
    """Answer who wrote an article or when it was published, quoting its byline.

    Args:
        article: The article the question is about.
        kind_of_field: `author` or `date`.

    Returns:
        The byline as the answer, or an abstention that says the byline is missing.
    """
    wanted = "author" if kind_of_field == "author" else "publication date"
    if article.byline is None:
        return Reply(
            (),
            0.0,
            False,
            f"The article “{article.title}” has no byline: its {wanted} is not given.",
        )
    if (kind_of_field == "author" and not article.author) or (
        kind_of_field == "date" and not article.date
    ):
        return Reply((), 0.0, False, f"The article “{article.title}” does not give its {wanted}.")
    start, end = article.byline
    line = article.text[start:end]
    wanted = article.author if kind_of_field == "author" else None
    span = None
    if wanted and wanted in line:
        s = line.index(wanted)
        span = (start + s, start + s + len(wanted))
    elif kind_of_field == "date":
        match = re.search(r"Date:\s*(.+?)\s*(?:\||$)", line)
        if match:
            span = (start + match.start(1), start + match.end(1))
    return Reply(
        (
            AnswerSentence(
                line,
                (citation(article, start, end, span),),
                1.0,
                article.text[span[0] : span[1]] if span else None,
            ),
        ),
        0.99,
        True,
    )
