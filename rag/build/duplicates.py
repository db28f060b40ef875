"""Near-duplicate articles (one story saved twice, or syndicated with small edits)."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from rag.types import Article

SHINGLE_WORDS = 5
# Two articles are one story when this share of the shorter one's five-word runs is in the
# other: an exact copy scores 1, a copy with a word changed every 50 words about 0.9, a
# summary of a story found in the story itself 1. Unrelated reports of one event share
# names and phrases, well under half of their runs.
MIN_CONTAINMENT = 0.6
MIN_SHINGLES = 8
# A run found in this many articles is boilerplate (a sign-off, a disclaimer), not a story.
MAX_SHARED_BY = 50
# Two sentences of near-duplicate articles are one when they share this share of words.
SENTENCE_JACCARD = 0.8

_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Duplicate:
    """Two articles that tell one story: `first` comes first in the collection."""

    first: str
    second: str
    similarity: float


def _words(text: str) -> list[str]:
    return [w.casefold() for w in _WORD.findall(text)]


def _shingles(text: str) -> set[int]:
    words = _words(text)
    return {
        hash(tuple(words[i : i + SHINGLE_WORDS]))
        for i in range(max(len(words) - SHINGLE_WORDS + 1, 0))
    }


def near_duplicates(articles: Sequence[Article]) -> list[Duplicate]:
    """Find the pairs of articles that tell the same story.

    Args:
        articles: The collection's articles, in order.

    Returns:
        One entry per pair, in collection order, with the share of the shorter body's
        five-word runs found in the other.
    """
    shingles = [_shingles(a.body) for a in articles]
    postings: dict[int, list[int]] = defaultdict(list)
    for number, found in enumerate(shingles):
        for shingle in found:
            postings[shingle].append(number)
    shared: Counter[tuple[int, int]] = Counter()
    for holders in postings.values():
        if 1 < len(holders) <= MAX_SHARED_BY:
            for i, a in enumerate(holders):
                for b in holders[i + 1 :]:
                    shared[(a, b)] += 1
    pairs = []
    for (a, b), count in sorted(shared.items()):
        smaller = min(len(shingles[a]), len(shingles[b]))
        if smaller >= MIN_SHINGLES and count / smaller >= MIN_CONTAINMENT:
            pairs.append(Duplicate(articles[a].id, articles[b].id, round(count / smaller, 3)))
    return pairs


def twin_sentences(
    duplicates: Sequence[Duplicate], sentences: Sequence[tuple[str, str]]
) -> list[tuple[int, ...]]:
    """Group the sentences that near-duplicate articles share, exactly or with small edits.

    Args:
        duplicates: The near-duplicate pairs.
        sentences: Every sentence of the index as (article id, text), by number.

    Returns:
        Groups of two or more sentence numbers, each in its own article, sorted.
    """
    if not duplicates:
        return []
    wanted = {d.first for d in duplicates} | {d.second for d in duplicates}
    by_article: dict[str, list[tuple[int, set[str]]]] = defaultdict(list)
    for number, (article_id, text) in enumerate(sentences):
        if article_id in wanted and (words := set(_words(text))):
            by_article[article_id].append((number, words))
    parent: dict[int, int] = {}

    def root(n: int) -> int:
        while parent.get(n, n) != n:
            n = parent[n]
        return n

    for pair in duplicates:
        for number, words in by_article[pair.first]:
            best, score = None, 0.0
            for other, other_words in by_article[pair.second]:
                jaccard = len(words & other_words) / len(words | other_words)
                if jaccard > score:
                    best, score = other, jaccard
            if best is not None and score >= SENTENCE_JACCARD:
                parent[root(best)] = root(number)
    groups: dict[int, list[int]] = defaultdict(list)
    for number in parent.keys() | set(parent.values()):
        groups[root(number)].append(number)
    found = []
    for members in groups.values():
        # One sentence per article: a story that repeats itself keeps its first telling.
        per_article: dict[str, int] = {}
        for n in sorted(members):
            per_article.setdefault(sentences[n][0], n)
        if len(per_article) > 1:
            found.append(tuple(sorted(per_article.values())))
    return sorted(found)
