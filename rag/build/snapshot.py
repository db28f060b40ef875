"""The engine-neutral snapshot: Parquet shards of articles, chunks and sentences, and a manifest."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from embeddings.files import sha256_file
from rag.errors import IndexCorruptError, IndexMissingError, IndexStaleError
from rag.index.milvus import join_terms
from rag.index.tables import SentenceRef
from rag.types import Article, Chunk, Section

SNAPSHOT_FORMAT = 1
MANIFEST = "manifest.json"
TABLES = ("articles", "chunks", "sentences")
# How the chunks' words were turned into BM25 terms (`rag.text.terms`); an engine that indexes
# the snapshot's `terms` column with a whitespace tokenizer gets the same terms.
LEXICAL = {
    "function": "rag.text.terms",
    "fold": "casefold, accents removed",
    "stemmer": "snowball english (PyStemmer)",
    "stopwords": "removed (rag.text.STOPWORDS)",
    "column": "chunks.terms: the terms joined by spaces, other than word characters as _",
}


def _pa():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as e:  # pragma: no cover - pyarrow comes with the default install
        raise ImportError("snapshots need pyarrow: pip install pyarrow") from e
    return pa, pq


@dataclass(frozen=True)
class Shard:
    """One work unit's output: articles with their chunks, sentences and float16 vectors.

    Ids are local to the shard (0-based); `SnapshotWriter` makes them global.
    """

    articles: list[Article]
    chunks: list[Chunk]
    chunk_vectors: np.ndarray
    sentences: list[SentenceRef]
    sentence_vectors: np.ndarray


@dataclass
class Snapshot:
    """A snapshot read back: everything an index is built from."""

    manifest: dict[str, Any]
    articles: list[Article]
    chunks: list[Chunk]
    chunk_vectors: np.ndarray
    sentences: list[SentenceRef]
    sentence_vectors: np.ndarray


def _vector_type(pa, dimension: int):
    return pa.list_(pa.float16(), dimension)


def _vectors(pa, matrix: np.ndarray, dimension: int):
    flat = pa.array(np.ascontiguousarray(matrix, dtype=np.float16).reshape(-1), pa.float16())
    return pa.FixedSizeListArray.from_arrays(flat, dimension)


def milvus_terms(text: str) -> str:
    """A text's BM25 terms (`rag.text.terms`) as one string (see `join_terms`)."""
    from rag.text import terms

    return join_terms(terms(text))


def snapshot_digest(manifest: dict[str, Any]) -> str:
    """A name for a snapshot's content: the digest of its shards' checksums."""
    return hashlib.sha256("".join(s["sha256"] for s in manifest["shards"]).encode()).hexdigest()


class SnapshotWriter:
    """Writes shards in order, giving rows global ids, then the manifest; atomically: the
    snapshot appears under its name only when complete."""

    def __init__(self, directory: Path, *, dimension: int) -> None:
        self.directory = Path(directory)
        self.dimension = dimension
        self._pa, self._pq = _pa()
        self._staging = self.directory.with_name(f".{self.directory.name}.{uuid.uuid4().hex[:6]}")
        self._staging.mkdir(parents=True)
        self._shards: list[dict[str, Any]] = []
        self._counts = dict.fromkeys(TABLES, 0)

    def add(self, shard: Shard) -> None:
        """Write one shard's three tables."""
        pa = self._pa
        number = len(self._shards) // len(TABLES)
        first_chunk, first_sentence = self._counts["chunks"], self._counts["sentences"]
        if shard.chunk_vectors.shape != (len(shard.chunks), self.dimension) or (
            shard.sentence_vectors.shape != (len(shard.sentences), self.dimension)
        ):
            raise ValueError("a shard's vectors do not match its chunks and sentences")
        articles = pa.table(
            {
                "id": pa.array(
                    range(self._counts["articles"], self._counts["articles"] + len(shard.articles)),
                    pa.int64(),
                ),
                "article_id": [a.id for a in shard.articles],
                "title": [a.title for a in shard.articles],
                "text": [a.text for a in shard.articles],
                "date": pa.array([a.date for a in shard.articles], pa.date32()),
                "author": [a.author for a in shard.articles],
                "url": [a.url for a in shard.articles],
                "source": [a.source for a in shard.articles],
                "layout": [
                    json.dumps(
                        {
                            "body_end": a.body_end,
                            "paragraphs": a.paragraphs,
                            "sections": [asdict(s) for s in a.sections],
                            "caption": a.caption,
                            "byline": a.byline,
                        }
                    )
                    for a in shard.articles
                ],
            }
        )
        chunks = pa.table(
            {
                "id": pa.array([first_chunk + c.id for c in shard.chunks], pa.int64()),
                "article_id": [c.article_id for c in shard.chunks],
                "section": pa.array([c.section for c in shard.chunks], pa.int32()),
                "paragraph": pa.array([c.paragraph for c in shard.chunks], pa.int32()),
                "start": pa.array([c.start for c in shard.chunks], pa.int32()),
                "end": pa.array([c.end for c in shard.chunks], pa.int32()),
                "text": [c.text for c in shard.chunks],
                "terms": [milvus_terms(c.text) for c in shard.chunks],
                "sentences": pa.array(
                    [[list(s) for s in c.sentences] for c in shard.chunks],
                    pa.list_(pa.list_(pa.int32(), 2)),
                ),
                "vector": _vectors(pa, shard.chunk_vectors, self.dimension),
            }
        )
        sentences = pa.table(
            {
                "id": pa.array(
                    range(first_sentence, first_sentence + len(shard.sentences)), pa.int64()
                ),
                "article_id": [s.article_id for s in shard.sentences],
                "start": pa.array([s.start for s in shard.sentences], pa.int32()),
                "end": pa.array([s.end for s in shard.sentences], pa.int32()),
                "chunk_id": pa.array(
                    [first_chunk + s.chunk_id for s in shard.sentences], pa.int64()
                ),
                "vector": _vectors(pa, shard.sentence_vectors, self.dimension),
            }
        )
        for name, table in zip(TABLES, (articles, chunks, sentences), strict=True):
            file = f"{name}-{number:05d}.parquet"
            self._pq.write_table(table, self._staging / file, compression="zstd")
            self._shards.append(
                {
                    "table": name,
                    "file": file,
                    "rows": table.num_rows,
                    "first_id": self._counts[name],
                    "sha256": sha256_file(self._staging / file),
                }
            )
            self._counts[name] += table.num_rows

    def finish(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Write the manifest and move the snapshot into place (replacing an older one).

        Args:
            manifest: What the builder knows: model, revision, chunking, collection, build.

        Returns:
            The whole manifest as written (with counts, shards and format).
        """
        full = {
            "format": "rag-snapshot",
            "format_version": SNAPSHOT_FORMAT,
            **manifest,
            "dimension": self.dimension,
            "vectors": {"dtype": "float16", "normalized": True, "metric": "inner product"},
            "lexical": LEXICAL,
            "counts": dict(self._counts),
            "shards": self._shards,
        }
        (self._staging / MANIFEST).write_text(json.dumps(full, indent=2), encoding="utf-8")
        for path in self._staging.iterdir():
            with path.open("rb") as f:
                os.fsync(f.fileno())
        old = None
        if self.directory.exists():
            old = self.directory.with_name(f".{self.directory.name}.old.{uuid.uuid4().hex[:6]}")
            os.replace(self.directory, old)
        os.replace(self._staging, self.directory)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return full

    def abort(self) -> None:
        """Remove what was written."""
        shutil.rmtree(self._staging, ignore_errors=True)


def read_snapshot_manifest(directory: Path) -> dict[str, Any]:
    """Read and check a snapshot's manifest.

    Raises:
        IndexMissingError: There is no snapshot there.
        IndexCorruptError: The manifest is unreadable.
        IndexStaleError: It is of another format version.
    """
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise IndexMissingError(
            f"No snapshot in {directory}: write one with: rag snapshot {directory}"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise IndexCorruptError(f"Snapshot manifest {path} is unreadable ({e})") from e
    if manifest.get("format") != "rag-snapshot" or (
        manifest.get("format_version") != SNAPSHOT_FORMAT
    ):
        raise IndexStaleError(
            f"{directory} holds snapshot format {manifest.get('format_version')}; this version"
            f" reads {SNAPSHOT_FORMAT}. Write it again with: rag snapshot {directory}"
        )
    return manifest


def shard_files(
    directory: Path, manifest: dict[str, Any], table: str, *, check: bool = True
) -> list[Path]:
    """The Parquet files of one table, in id order, each checked against its SHA-256.

    Args:
        directory: The snapshot.
        manifest: Its manifest (`read_snapshot_manifest`).
        table: `articles`, `chunks` or `sentences`.
        check: Verify checksums.

    Raises:
        IndexCorruptError: A file is missing or altered.
    """
    files = []
    for shard in manifest["shards"]:
        if shard["table"] != table:
            continue
        path = Path(directory) / shard["file"]
        if not path.is_file():
            raise IndexCorruptError(f"Snapshot file {path} is missing; write the snapshot again")
        if check and sha256_file(path) != shard["sha256"]:
            raise IndexCorruptError(
                f"Snapshot file {path} is altered (checksum differs); write the snapshot again"
            )
        files.append(path)
    return files


def vector_matrix(column, dimension: int) -> np.ndarray:
    """A Parquet vector column (a chunked or plain array) as a float16 matrix."""
    if hasattr(column, "combine_chunks"):
        column = column.combine_chunks()
    values = column.flatten().to_numpy(zero_copy_only=False)
    return np.asarray(values, dtype=np.float16).reshape(-1, dimension)


def read_snapshot(directory: Path) -> Snapshot:
    """Read a whole snapshot, checking every shard first.

    Args:
        directory: The snapshot directory.

    Returns:
        The snapshot, vectors as float16.

    Raises:
        IndexMissingError, IndexCorruptError, IndexStaleError: As the messages say.
    """
    pa, pq = _pa()
    manifest = read_snapshot_manifest(directory)
    dimension = int(manifest["dimension"])
    tables = {}
    try:
        for name in TABLES:
            files = shard_files(directory, manifest, name)
            tables[name] = pa.concat_tables([pq.read_table(f) for f in files]) if files else None
    except (OSError, pa.ArrowException) as e:
        raise IndexCorruptError(f"Snapshot in {directory} cannot be read ({e})") from e
    articles = _articles(tables["articles"])
    chunk_table, sentence_table = tables["chunks"], tables["sentences"]
    chunks, sentences = [], []
    chunk_vectors = np.zeros((0, dimension), np.float16)
    sentence_vectors = np.zeros((0, dimension), np.float16)
    if chunk_table is not None:
        rows = chunk_table.drop_columns(["vector", "terms"]).to_pylist()
        chunks = [
            Chunk(**{**r, "sentences": tuple(tuple(s) for s in r["sentences"])}) for r in rows
        ]
        chunk_vectors = vector_matrix(chunk_table["vector"], dimension)
    if sentence_table is not None:
        sentences = [
            SentenceRef(**r) for r in sentence_table.drop_columns(["vector", "id"]).to_pylist()
        ]
        sentence_vectors = vector_matrix(sentence_table["vector"], dimension)
    counts = manifest["counts"]
    if (
        len(articles) != counts["articles"]
        or len(chunks) != counts["chunks"]
        or len(sentences) != counts["sentences"]
        or any(c.id != n for n, c in enumerate(chunks))
    ):
        raise IndexCorruptError(f"Snapshot in {directory} is inconsistent; write it again")
    return Snapshot(manifest, articles, chunks, chunk_vectors, sentences, sentence_vectors)


def _articles(table) -> list[Article]:
    if table is None:
        return []
    out = []
    for row in table.drop_columns(["id"]).to_pylist():
        layout = json.loads(row.pop("layout"))
        out.append(
            Article(
                id=row["article_id"],
                title=row["title"],
                text=row["text"],
                body_end=layout["body_end"],
                paragraphs=tuple(tuple(p) for p in layout["paragraphs"]),
                sections=tuple(Section(**s) for s in layout["sections"]),
                author=row["author"],
                date=row["date"],
                caption=layout["caption"],
                url=row["url"],
                byline=tuple(layout["byline"]) if layout["byline"] else None,
                source=row["source"],
            )
        )
    return out


def iter_chunk_batches(
    directory: Path, manifest: dict[str, Any], *, columns: Iterable[str], batch_size: int = 4096
) -> Iterator:
    """Stream the chunk rows of a snapshot, shard by shard (for loading another engine).

    Every shard is checked before this returns, so that nothing is streamed from a damaged
    snapshot.

    Returns:
        An iterator of pyarrow RecordBatches with the columns asked for.
    """
    _, pq = _pa()
    files = shard_files(directory, manifest, "chunks")
    return (
        batch
        for path in files
        for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_size, columns=list(columns))
    )


def created_now() -> str:
    """The time stamp a manifest carries."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
