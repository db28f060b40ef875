"""Sentence boundaries with offsets, from syntok (handles abbreviations and quotes)."""

from __future__ import annotations

import re

from syntok import segmenter


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
    return [(s + offset, e + offset) for s, e in _merge_fragments(text, spans)]


def _merge_fragments(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    # A "sentence" with no letter (a stray quote or dash) joins the one before it.
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and not re.search(r"[^\W\d_]", text[start:end]):
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged
