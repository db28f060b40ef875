"""Questions to try: known questions that the collection answers well."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rag.engine import Engine
from rag.errors import QuestionError
from rag.serialize import newest_first
from rag.text import squash

EXAMPLES = 3
EXAMPLES_PER_ARTICLE = 2
EXAMPLES_ASKED = 24
EXAMPLE_CONFIDENCE = 0.6

log = logging.getLogger(__name__)


def example_questions(
    engine: Engine, candidates: Sequence[dict[str, Any]], *, count: int = EXAMPLES
) -> list[str]:
    """Questions the collection answers well, to offer as examples: known questions (a Q&A
    set's) about its articles, newest articles first, each asked, and kept when answered
    confidently from the article it is about; one per article.

    Args:
        engine: The open engine.
        candidates: Q&A records with `question` and the gold article titles in `articles`.
        count: How many to return.

    Returns:
        Up to `count` questions.
    """
    titles = {squash(a.title): a for a in engine.index.articles.values()}
    by_article: dict[str, list[str]] = {}
    for record in candidates:
        question = record["question"].strip()
        if not (question[:1].isupper() and question.endswith("?")):
            continue  # a question typed in haste reads poorly as an example
        for title in record.get("articles", ()):
            if squash(title) in titles:
                by_article.setdefault(titles[squash(title)].id, []).append(record["question"])
    chosen: list[str] = []
    asked = 0
    for article in newest_first(engine.index.articles.values()):
        for question in by_article.get(article.id, [])[:EXAMPLES_PER_ARTICLE]:
            if len(chosen) >= count or asked >= EXAMPLES_ASKED:
                return chosen
            asked += 1
            try:
                answer = engine.ask(question)
            except QuestionError:
                continue
            first = answer.sentences[0].citations[0] if answer.sentences else None
            if (
                answer.answered
                and answer.confidence >= EXAMPLE_CONFIDENCE
                and first is not None
                and first.article_id == article.id
            ):
                chosen.append(question)
                break
    return chosen


def read_questions(path: Path | None) -> list[dict[str, Any]]:
    """The Q&A records of a JSON Lines file; none when there is no file or it is unreadable."""
    if path is None:
        return []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        records = [json.loads(line) for line in lines if line.strip()]
    except (OSError, ValueError) as e:
        log.warning("example questions not read from %s: %s", path, e)
        return []
    return [r for r in records if isinstance(r, dict) and isinstance(r.get("question"), str)]
