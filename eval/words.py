"""The content words of a text, as training compares questions and sentences."""

from __future__ import annotations

import re

_WORD = re.compile(r"\w+")


_STOP = set(
    [
        "a",
        "an",
        "the",
        "of",
        "in",
        "on",
        "at",
        "to",
        "for",
        "by",
        "with",
        "from",
        "and",
        "or",
        "is",
        "was",
        "were",
        "are",
        "be",
        "been",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "why",
        "how",
        "did",
        "do",
        "does",
        "that",
        "this",
        "it",
        "its",
        "as",
    ]
)


def content_words(text: str) -> set[str]:
    """The lower-cased words of a text, without the commonest function words."""
    return {w for w in _WORD.findall(text.casefold()) if w not in _STOP}
