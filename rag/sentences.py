"""Sentence boundaries with offsets, from syntok (handles abbreviations and quotes)."""

from __future__ import annotations

import re

from syntok import segmenter

# A run of text with no sentence boundary is cut into pieces of at most this many characters
# (at a space), so that the reader, whose window holds about 130 word pieces of a sentence,
# reads all of it: a 40,000-character paragraph without a full stop is not one sentence.
MAX_SENTENCE_CHARS = 600


def split_sentences(text: str, *, offset: int = 0) -> list[tuple[int, int]]:
    """Find the sentences of a paragraph.

    Args:
        text: One paragraph.
        offset: Added to every offset, so they index the enclosing text.

    Returns:
        (start, end) of every sentence; `text[start:end]` is the sentence without surrounding
        whitespace.
    """
    spans: list[tuple[int, int]] = []
    for paragraph in segmenter.analyze(text):
        for sentence in paragraph:
            tokens = [t for t in sentence if t.value]
            if not tokens:
                continue
            start, end = tokens[0].offset, tokens[-1].offset + len(tokens[-1].value)
            if text[start:end].strip():
                spans.append((start, end))
    pieces = [p for span in _merge_fragments(text, spans) for p in _cut(text, *span)]
    return [(s + offset, e + offset) for s, e in pieces]


def _cut(text: str, start: int, end: int) -> list[tuple[int, int]]:
    pieces = []
    while end - start > MAX_SENTENCE_CHARS:
        limit = start + MAX_SENTENCE_CHARS
        space = text.rfind(" ", start + MAX_SENTENCE_CHARS // 2, limit)
        cut = space if space > start else limit
        pieces.append((start, len(text[:cut].rstrip())))
        start = cut + len(text[cut:end]) - len(text[cut:end].lstrip())
    return [*pieces, (start, end)]


def _merge_fragments(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    # A "sentence" with no letter (a stray quote or dash) joins the one before it.
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and not re.search(r"[^\W\d_]", text[start:end]):
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged
