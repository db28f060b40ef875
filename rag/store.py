"""The index's articles, chunks and sentences as columns, held in memory or read in place."""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from rag.types import Article, Chunk, Section

ARTICLES_FILE = "articles.arrow"
CHUNKS_FILE = "chunk_spans.npy"
SENTENCES_FILE = "sentence_spans.npy"
CACHED_ARTICLES = 4096


def article_to_json(article: Article) -> dict[str, Any]:
    """An article as JSON-ready data that `article_from_json` reads back unchanged."""
    data = asdict(article)
    data["date"] = article.date.isoformat() if article.date else None
    return data


def article_from_json(data: dict[str, Any]) -> Article:
    """The article `article_to_json` wrote."""
    return Article(
        **{
            **data,
            "date": dt.date.fromisoformat(data["date"]) if data["date"] else None,
            "paragraphs": tuple(tuple(p) for p in data["paragraphs"]),
            "sections": tuple(Section(**s) for s in data["sections"]),
            "byline": tuple(data["byline"]) if data["byline"] else None,
        }
    )


@dataclass(frozen=True, slots=True)
class SentenceRef:
    """A body sentence of an article and the chunk it first appears in."""

    article_id: str
    start: int
    end: int
    chunk_id: int


class _Rows(Sequence):
    """A table of int64 rows that reads as a sequence of records, made when asked for."""

    spans: np.ndarray

    def __len__(self) -> int:
        return len(self.spans)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def __getitem__(self, number):  # type: ignore[override]
        if isinstance(number, slice):
            return [self._record(n) for n in range(*number.indices(len(self)))]
        return self._record(range(len(self))[number])

    def _record(self, number: int):
        raise NotImplementedError


class Sentences(_Rows):
    """Every sentence of an index once, in article order, as rows of (article row, start,
    end, chunk id)."""

    def __init__(self, spans: np.ndarray, article_ids: Sequence[str]) -> None:
        self.spans = spans
        self.article_ids = article_ids

    @classmethod
    def of(cls, refs: Sequence[SentenceRef], article_ids: Sequence[str]) -> Sentences:
        """The table of sentence references, which must be in article order."""
        rows = {a: n for n, a in enumerate(article_ids)}
        # Column-major, so that a column is contiguous: searching one reads a few pages.
        spans = np.asfortranarray(
            np.array(
                [(rows[r.article_id], r.start, r.end, r.chunk_id) for r in refs], dtype=np.int64
            ).reshape(len(refs), 4)
        )
        keys = spans[:, 0] * (1 << 32) + spans[:, 1]
        if len(keys) > 1 and not np.all(keys[1:] > keys[:-1]):
            raise ValueError("sentences must be in article order, each once")
        return cls(spans, article_ids)

    def _record(self, number: int) -> SentenceRef:
        row, start, end, chunk = self.spans[number].tolist()
        return SentenceRef(self.article_ids[row], start, end, chunk)

    def __iter__(self) -> Iterator[SentenceRef]:
        for row, start, end, chunk in self.spans.tolist():
            yield SentenceRef(self.article_ids[row], start, end, chunk)

    @functools.cached_property
    def _rows(self) -> dict[str, int]:
        return {a: n for n, a in enumerate(self.article_ids)}

    def row(self, article_id: str) -> int:
        """The row of an article in the table."""
        return self._rows[article_id]

    def of_article(self, row: int) -> range:
        """The numbers of an article's sentences (by its row), in order."""
        rows = self.spans[:, 0]
        return range(
            int(np.searchsorted(rows, row, "left")), int(np.searchsorted(rows, row, "right"))
        )

    def number(self, row: int, start: int) -> int:
        """The number of the sentence of an article (by its row) that starts at `start`."""
        numbers = self.of_article(row)
        found = numbers.start + int(
            np.searchsorted(self.spans[numbers.start : numbers.stop, 1], start)
        )
        if found >= numbers.stop or self.spans[found, 1] != start:
            raise KeyError((self.article_ids[row], start))
        return found


class Chunks(_Rows):
    """The chunks of an index as rows of (article row, section, paragraph, start, end, first
    sentence, sentence count); a chunk's text is its article's, read when asked for."""

    def __init__(
        self,
        spans: np.ndarray,
        articles: Mapping[str, Article],
        sentences: Sentences,
    ) -> None:
        self.spans = spans
        self.articles = articles
        self.sentences = sentences

    @classmethod
    def of(
        cls, chunks: Sequence[Chunk], articles: Mapping[str, Article], sentences: Sentences
    ) -> Chunks:
        """The table of chunks numbered from 0, whose sentences are all in `sentences`."""
        spans = np.zeros((len(chunks), 7), dtype=np.int64, order="F")
        for n, chunk in enumerate(chunks):
            if chunk.id != n:
                raise ValueError(f"chunk {n} is numbered {chunk.id}; chunks are numbered from 0")
            row = sentences.row(chunk.article_id)
            first = sentences.number(row, chunk.sentences[0][0]) if chunk.sentences else 0
            spans[n] = (
                row,
                chunk.section,
                chunk.paragraph,
                chunk.start,
                chunk.end,
                first,
                len(chunk.sentences),
            )
        return cls(spans, articles, sentences)

    def _record(self, number: int) -> Chunk:
        row, section, paragraph, start, end, first, count = self.spans[number].tolist()
        article = self.articles[self.sentences.article_ids[row]]
        return Chunk(
            id=number,
            article_id=article.id,
            section=section,
            paragraph=paragraph,
            start=start,
            end=end,
            text=article.text[start:end],
            sentences=tuple(
                (int(s), int(e)) for s, e in self.sentences.spans[first : first + count, 1:3]
            ),
        )

    @property
    def article_rows(self) -> np.ndarray:
        """The article row of every chunk."""
        return self.spans[:, 0]

    def sentence_numbers(self, number: int) -> range:
        """The numbers of a chunk's sentences, in order."""
        first, count = self.spans[number, 5:7].tolist()
        return range(first, first + count)


class ArticleTable(Mapping[str, Article]):
    """Articles read in place from an Arrow file (see `write_articles`), by id."""

    def __init__(self, table: pa.Table) -> None:
        self.table = table
        self.ids: list[str] = table.column("id").to_pylist()
        self.rows = {a: n for n, a in enumerate(self.ids)}
        if len(self.rows) != len(self.ids):
            raise ValueError("article ids repeat")
        self._read = functools.lru_cache(maxsize=CACHED_ARTICLES)(self._article)

    def _article(self, row: int) -> Article:
        record = json.loads(self.table.column("record")[row].as_py())
        return article_from_json({**record, "text": self.table.column("text")[row].as_py()})

    def __getitem__(self, article_id: str) -> Article:
        return self._read(self.rows[article_id])

    def __contains__(self, article_id: object) -> bool:
        return article_id in self.rows

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids)

    def __len__(self) -> int:
        return len(self.ids)


def bylines(articles: Mapping[str, Article]) -> Iterator[tuple[str, str | None, dt.date | None]]:
    """(id, author, date) of every article, in order: from two columns of a table, without
    reading each article.

    Args:
        articles: An index's articles.
    """
    if isinstance(articles, ArticleTable):
        yield from zip(
            articles.ids,
            articles.table.column("author").to_pylist(),
            articles.table.column("date").to_pylist(),
            strict=True,
        )
    else:
        for article in articles.values():
            yield article.id, article.author, article.date


def write_articles(articles: Mapping[str, Article], path: Path) -> None:
    """Write articles, in order, to an Arrow file that `read_articles` maps in place."""
    records = []
    for article in articles.values():
        data = article_to_json(article)
        del data["text"]
        records.append(json.dumps(data, ensure_ascii=False))
    table = pa.table(
        {
            "id": pa.array(list(articles), pa.string()),
            "text": pa.array([a.text for a in articles.values()], pa.large_string()),
            "record": pa.array(records, pa.large_string()),
            # Read on their own by `bylines`, for filters over every article.
            "author": pa.array([a.author for a in articles.values()], pa.string()),
            "date": pa.array([a.date for a in articles.values()], pa.date32()),
        }
    )
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


def read_articles(path: Path) -> ArticleTable:
    """The articles `write_articles` wrote, memory-mapped."""
    # The table's columns point into the map, which stays open as long as they do.
    return ArticleTable(pa.ipc.open_file(pa.memory_map(str(path), "r")).read_all())
