"""The index's articles, chunks and sentences as columns, and vector rows read from disk by row."""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import threading
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
READ_BYTES = 1 << 30
# Articles a read brings in: about 200 KB of news.
ARTICLE_BATCH = 32
ARTICLE_COLUMNS = ("id", "text", "record", "author", "date")


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


def read_npy_header(path: Path) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """An .npy file's header: (shape, Fortran order, dtype, where its data starts).

    Raises:
        ValueError: The file is not an .npy file.
    """
    with path.open("rb") as f:
        try:
            version = np.lib.format.read_magic(f)
            read_header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, fortran, dtype = read_header(f)
        except (ValueError, SyntaxError) as e:
            raise ValueError(f"{path} is not a .npy file ({e})") from e
        return shape, fortran, np.dtype(dtype), f.tell()


class RowFile:
    """The rows of a `.npy` file (a matrix, or a vector of values), read from disk when asked
    for.

    Rows are read with `pread`, not mapped: a mapped file grows the process's resident memory
    by the pages around every row touched (the kernel maps 64 KB around each), and rows asked
    for at random touch the whole file in time.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        shape, fortran, dtype, self.offset = read_npy_header(path)
        if len(shape) not in (1, 2) or fortran:
            raise ValueError(f"{path} does not hold a row-major matrix or a vector")
        self.shape: tuple[int, ...] = shape
        self.dtype = np.dtype(dtype)
        self.ndim = len(shape)
        self._row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * self.dtype.itemsize
        if path.stat().st_size != self.offset + shape[0] * self._row_bytes:
            raise ValueError(f"{path} is not as long as its header says")
        self._fd = os.open(path, os.O_RDONLY)

    def __del__(self) -> None:
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)

    def __len__(self) -> int:
        return self.shape[0]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return np.asarray(self[0 : len(self)], dtype=dtype)

    def __getitem__(self, rows) -> np.ndarray:
        if isinstance(rows, slice):
            start, stop, step = rows.indices(len(self))
            if step != 1:
                return self[np.arange(start, stop, step)]
            return self._read(start, max(stop - start, 0))
        if np.ndim(rows) == 0:
            return self._read(range(len(self))[rows], 1)[0]
        wanted = np.asarray(rows, dtype=np.int64).reshape(-1)
        if len(wanted) and (wanted.min() < -len(self) or wanted.max() >= len(self)):
            raise IndexError(f"row out of range for {len(self)} rows")
        wanted = np.where(wanted < 0, wanted + len(self), wanted)
        unique, where = np.unique(wanted, return_inverse=True)
        out = np.empty((len(unique), *self.shape[1:]), self.dtype)
        # One read per run of neighbouring rows.
        breaks = np.flatnonzero(np.diff(unique) != 1) + 1
        for run_start, run in zip(
            np.concatenate([[0], breaks]), np.split(unique, breaks), strict=True
        ):
            if len(run):
                out[run_start : run_start + len(run)] = self._read(int(run[0]), len(run))
        return out[where]

    def _read(self, first: int, count: int) -> np.ndarray:
        size = count * self._row_bytes
        data = np.empty(size, np.uint8)
        view, done = memoryview(data), 0
        # One read returns at most about 2 GB.
        while done < size:
            read = os.preadv(
                self._fd,
                [view[done : done + READ_BYTES]],
                self.offset + first * self._row_bytes + done,
            )
            if read == 0:
                raise OSError(f"{self.path} is shorter than its header says")
            done += read
        return data.view(self.dtype).reshape(count, *self.shape[1:])


class _Rows(Sequence):
    """A table of integer rows that reads as a sequence of records, made when asked for."""

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
    """Every sentence of an index once, in article order, as int32 rows of (article row,
    start, end, chunk id): 16 bytes a sentence, held in memory."""

    def __init__(
        self,
        spans: np.ndarray,
        article_ids: Sequence[str],
        rows: Mapping[str, int] | None = None,
    ) -> None:
        """Wrap a table; `rows` maps each article id to its row, when already at hand."""
        self.spans = spans
        self.article_ids = article_ids
        self._rows = rows if rows is not None else {a: n for n, a in enumerate(article_ids)}

    @classmethod
    def of(cls, refs: Sequence[SentenceRef], article_ids: Sequence[str]) -> Sentences:
        """The table of sentence references, which must be in article order."""
        rows = {a: n for n, a in enumerate(article_ids)}
        # Column-major, so that a column is contiguous and searched without a copy.
        spans = np.asfortranarray(
            np.array(
                [(rows[r.article_id], r.start, r.end, r.chunk_id) for r in refs], dtype=np.int32
            ).reshape(len(refs), 4)
        )
        keys = _keys(spans[:, 0], spans[:, 1])
        if len(keys) > 1 and not np.all(keys[1:] > keys[:-1]):
            raise ValueError("sentences must be in article order, each once")
        return cls(spans, article_ids, rows)

    def _record(self, number: int) -> SentenceRef:
        row, start, end, chunk = self.spans[number].tolist()
        return SentenceRef(self.article_ids[row], start, end, chunk)

    def __iter__(self) -> Iterator[SentenceRef]:
        for row, start, end, chunk in self.spans.tolist():
            yield SentenceRef(self.article_ids[row], start, end, chunk)

    def row(self, article_id: str) -> int:
        """The row of an article in the table."""
        return self._rows[article_id]

    def of_article(self, row: int) -> range:
        """The numbers of an article's sentences (by its row), in order."""
        rows = self.spans[:, 0]
        # A key of the column's own type: a Python int would have numpy convert the column.
        key = rows.dtype.type(row)
        return range(
            int(np.searchsorted(rows, key, "left")), int(np.searchsorted(rows, key, "right"))
        )

    def numbers(self, rows: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """The numbers of the sentences that start at `starts` in the articles of `rows`.

        Raises:
            KeyError: Some article has no sentence starting there.
        """
        rows, starts = np.asarray(rows), np.asarray(starts)
        keys = _keys(self.spans[:, 0], self.spans[:, 1])
        wanted = _keys(rows, starts)
        found = np.searchsorted(keys, wanted)
        held = np.zeros(len(wanted), dtype=bool)
        inside = found < len(keys)
        held[inside] = keys[found[inside]] == wanted[inside]
        if not held.all():
            at = int(np.argmin(held))
            raise KeyError((self.article_ids[int(rows[at])], int(starts[at])))
        return found

    def number(self, row: int, start: int) -> int:
        """The number of the sentence of an article (by its row) that starts at `start`."""
        return int(self.numbers(np.array([row]), np.array([start]))[0])


def _keys(rows: np.ndarray, starts: np.ndarray) -> np.ndarray:
    # (article row, start) as one sortable int64.
    return rows.astype(np.int64) * (1 << 32) + starts


class Chunks(_Rows):
    """The chunks of an index as int32 rows of (article row, section, paragraph, start, end,
    first sentence, sentence count); a chunk's text is its article's, read when asked for."""

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
        spans = np.zeros((len(chunks), 7), dtype=np.int32, order="F")
        for n, chunk in enumerate(chunks):
            if chunk.id != n:
                raise ValueError(f"chunk {n} is numbered {chunk.id}; chunks are numbered from 0")
            spans[n] = (
                sentences.row(chunk.article_id),
                chunk.section,
                chunk.paragraph,
                chunk.start,
                chunk.end,
                0,
                len(chunk.sentences),
            )
        # Each chunk's first sentence, found for all of them in one search.
        firsts = [c.sentences[0][0] if c.sentences else -1 for c in chunks]
        held = spans[:, 6] > 0
        spans[held, 5] = sentences.numbers(spans[held, 0], np.array(firsts)[held])
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
    """Articles read from an Arrow file (see `write_articles`) by id, a small batch of them at
    a time; their ids, authors and dates are held in memory."""

    def __init__(self, path: Path) -> None:
        # Articles are read a batch at a time by this reader: a batch's ids, authors and dates
        # are small beside its texts.
        self._texts = pa.ipc.open_file(pa.OSFile(str(path)))
        fields = {name: self._texts.schema.get_field_index(name) for name in ARTICLE_COLUMNS}
        if -1 in fields.values():
            raise ValueError(f"{path} lacks some of the columns {', '.join(ARTICLE_COLUMNS)}")
        self._text_column, self._record_column = fields["text"], fields["record"]
        # Ids, authors and dates are read batch by batch through a map, which touches their
        # pages only (`read_all`, or a file reader, would allocate the whole file).
        facts = pa.ipc.open_file(
            pa.memory_map(str(path)),
            options=pa.ipc.IpcReadOptions(
                included_fields=[fields["id"], fields["author"], fields["date"]]
            ),
        )
        self._lock = threading.Lock()
        self.ids: list[str] = []
        self.authors: list[str | None] = []
        self.dates: list[dt.date | None] = []
        sizes = [0]
        for number in range(facts.num_record_batches):
            batch = facts.get_batch(number)
            self.ids += batch.column(0).to_pylist()
            self.authors += batch.column(1).to_pylist()
            self.dates += batch.column(2).to_pylist()
            sizes.append(batch.num_rows)
        self._batch_starts = np.cumsum(sizes)
        self.rows = {a: n for n, a in enumerate(self.ids)}
        if len(self.rows) != len(self.ids):
            raise ValueError(f"article ids repeat in {path}")
        self._read = functools.lru_cache(maxsize=CACHED_ARTICLES)(self._article)
        self._path = path
        self._titles: list[str] | None = None

    @property
    def titles(self) -> list[str]:
        """Every article's title, in order; read once, from the records alone (no text)."""
        if self._titles is None:
            records = pa.ipc.open_file(
                pa.memory_map(str(self._path)),
                options=pa.ipc.IpcReadOptions(
                    included_fields=[self._texts.schema.get_field_index("record")]
                ),
            )
            titles: list[str] = []
            for number in range(records.num_record_batches):
                column = records.get_batch(number).column(0).to_pylist()
                titles += [json.loads(record)["title"] for record in column]
            self._titles = titles
        return self._titles

    def _article(self, row: int) -> Article:
        batch = int(np.searchsorted(self._batch_starts, row, "right")) - 1
        with self._lock:
            found = self._texts.get_batch(batch)
        at = row - int(self._batch_starts[batch])
        record = json.loads(found.column(self._record_column)[at].as_py())
        return article_from_json({**record, "text": found.column(self._text_column)[at].as_py()})

    def __getitem__(self, article_id: str) -> Article:
        return self._read(self.rows[article_id])

    def __contains__(self, article_id: object) -> bool:
        return article_id in self.rows

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids)

    def __len__(self) -> int:
        return len(self.ids)


def bylines(articles: Mapping[str, Article]) -> Iterator[tuple[str, str | None, dt.date | None]]:
    """(id, author, date) of every article, in order, without reading each article.

    Args:
        articles: An index's articles.
    """
    if isinstance(articles, ArticleTable):
        yield from zip(articles.ids, articles.authors, articles.dates, strict=True)
    else:
        for article in articles.values():
            yield article.id, article.author, article.date


def titles(articles: Mapping[str, Article]) -> Iterator[tuple[str, str]]:
    """(id, title) of every article, in order, without reading each article's text.

    Args:
        articles: An index's articles.
    """
    if isinstance(articles, ArticleTable):
        yield from zip(articles.ids, articles.titles, strict=True)
    else:
        for article in articles.values():
            yield article.id, article.title


def write_articles(articles: Mapping[str, Article], path: Path) -> None:
    """Write articles, in order, to an Arrow file that `read_articles` reads by batch."""
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
            # Read on their own when the file is opened, for filters over every article.
            "author": pa.array([a.author for a in articles.values()], pa.string()),
            "date": pa.array([a.date for a in articles.values()], pa.date32()),
        }
    )
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=ARTICLE_BATCH)


def read_articles(path: Path) -> ArticleTable:
    """The articles `write_articles` wrote.

    Raises:
        ValueError, OSError, pyarrow.ArrowException: The file cannot be read as one.
    """
    return ArticleTable(path)
