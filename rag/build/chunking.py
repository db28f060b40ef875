"""Sentence-aware chunking: whole sentences, within the model's window, overlapping by one."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from rag.sentences import split_sentences
from rag.settings import ChunkSettings
from rag.types import Article, Chunk

TokenCounter = Callable[[Sequence[str]], list[int]]


def article_sentences(article: Article) -> list[tuple[int, int, int]]:
    """Every body sentence of an article with the paragraph it stands in.

    Args:
        article: The article.

    Returns:
        (start, end, paragraph index) per sentence; offsets index `article.text`.
    """
    out = []
    for number, (start, end) in enumerate(article.paragraphs):
        out += [(s, e, number) for s, e in split_sentences(article.text[start:end], offset=start)]
    return out


def article_key(article: Article) -> str:
    """A digest of what an article's chunks depend on: its text, paragraphs and sections."""
    layout = [article.text, article.paragraphs, [(s.start, s.end) for s in article.sections]]
    return hashlib.sha256(json.dumps(layout).encode()).hexdigest()


def chunk_articles(
    articles: Sequence[Article],
    count_tokens: TokenCounter,
    settings: ChunkSettings,
    *,
    known: Mapping[str, Sequence[Chunk]] | None = None,
) -> list[Chunk]:
    """Cut articles into chunks of whole sentences that never cross a section.

    A chunk takes sentences while their word pieces fit `max_tokens` (a longer sentence stands
    alone and the model truncates it); the next chunk starts with the last
    `overlap_sentences` sentences of the one before.

    Args:
        articles: The articles.
        count_tokens: Word-piece counter of the embedding model.
        settings: Chunk size and overlap.
        known: Chunks made before with the same settings and model, by `article_key`: an
            article found there is not split again.

    Returns:
        Chunks numbered from 0 in article order.
    """
    chunks: list[Chunk] = []
    for article in articles:
        reused = known.get(article_key(article)) if known else None
        if reused is not None:
            chunks += [
                replace(c, id=len(chunks) + i, article_id=article.id) for i, c in enumerate(reused)
            ]
            continue
        sentences = article_sentences(article)
        sizes = count_tokens([article.text[s:e] for s, e, _ in sentences])
        for number, section in enumerate(article.sections):
            members = [
                (span, size)
                for span, size in zip(sentences, sizes, strict=True)
                if section.start <= span[0] < section.end
            ]
            for group in _pack(members, settings):
                start, end = group[0][0], group[-1][1]
                chunks.append(
                    Chunk(
                        id=len(chunks),
                        article_id=article.id,
                        section=number,
                        paragraph=group[0][2],
                        start=start,
                        end=end,
                        text=article.text[start:end],
                        sentences=tuple((s, e) for s, e, _ in group),
                    )
                )
    return chunks


def _pack(
    members: list[tuple[tuple[int, int, int], int]], settings: ChunkSettings
) -> list[list[tuple[int, int, int]]]:
    # Word pieces of a joined chunk are about the sum of its sentences' less their [CLS]/[SEP].
    groups: list[list[tuple[int, int, int]]] = []
    i = 0
    while i < len(members):
        group, budget = [members[i][0]], members[i][1]
        j = i + 1
        while j < len(members) and budget + members[j][1] - 2 <= settings.max_tokens:
            group.append(members[j][0])
            budget += members[j][1] - 2
            j += 1
        groups.append(group)
        if j >= len(members):
            break
        i = max(i + 1, j - settings.overlap_sentences)
    return groups
