"""The Milvus backend: dense search and BM25 on a Milvus server, fused by reciprocal rank."""

from __future__ import annotations

import logging
from collections.abc import Collection as Set
from pathlib import Path

import numpy as np

from rag.errors import MilvusError
from rag.index import Index
from rag.retrieval import CANDIDATES, RRF_K, Method
from rag.snapshot import (
    iter_chunk_batches,
    join_terms,
    read_snapshot_manifest,
    shard_files,
    snapshot_digest,
    vector_matrix,
)

INSERT_BATCH = 512
BM25_K1, BM25_B = 1.5, 0.75

log = logging.getLogger(__name__)


def _pymilvus():
    try:
        import pymilvus
    except ImportError as e:
        raise MilvusError("The Milvus backend needs pymilvus: pip install -e '.[milvus]'") from e
    return pymilvus


def collection_name(digest: str) -> str:
    """The Milvus collection a snapshot is loaded into, named by its content (its
    `snapshot_digest`): a snapshot is loaded once, and an index finds its own."""
    return f"rag_{digest[:20]}"


def connect(uri: str):
    """A client of the Milvus server at `uri` (`http://HOST:PORT`).

    Raises:
        MilvusError: pymilvus is missing or the server does not answer.
    """
    pymilvus = _pymilvus()
    try:
        return pymilvus.MilvusClient(uri=uri, timeout=10)
    except pymilvus.exceptions.MilvusException as e:
        raise MilvusError(
            f"No Milvus server answers at {uri} ({e.message}). Start one, for example:"
            " python -m milvus_lite server --host 127.0.0.1 --port 19530 --data-dir DIR"
        ) from e


def load_snapshot(uri: str, directory: Path) -> str:
    """Load a snapshot's chunks into Milvus (once: a collection of the same content is kept).

    The chunk rows are streamed from the Parquet shards in batches: the vectors, the article
    number for filters, and the BM25 terms, which Milvus turns into sparse vectors itself.

    Args:
        uri: The Milvus server.
        directory: The snapshot.

    Returns:
        The collection's name.
    """
    pymilvus = _pymilvus()
    from pymilvus import DataType, Function, FunctionType

    manifest = read_snapshot_manifest(directory)
    columns = ("id", "article_id", "terms", "vector")
    # Every shard is checked here, before anything is sent.
    batches = iter_chunk_batches(directory, manifest, columns=columns, batch_size=INSERT_BATCH)
    name = collection_name(snapshot_digest(manifest))
    client = connect(uri)
    count, dimension = manifest["counts"]["chunks"], int(manifest["dimension"])
    if client.has_collection(name):
        if _rows(client, name) == count:
            client.load_collection(name)
            return name
        client.drop_collection(name)
    schema = pymilvus.MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("article", DataType.INT64)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
    schema.add_field(
        "terms",
        DataType.VARCHAR,
        max_length=65535,
        enable_analyzer=True,
        analyzer_params={"tokenizer": "standard"},
    )
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(
        Function(
            name="bm25",
            function_type=FunctionType.BM25,
            input_field_names=["terms"],
            output_field_names=["sparse"],
        )
    )
    indexes = client.prepare_index_params()
    indexes.add_index(field_name="vector", index_type="FLAT", metric_type="IP")
    # bm25s's k1 and b, which the in-process backend uses (Milvus's own default k1 is 1.2).
    indexes.add_index(
        field_name="sparse",
        index_type="SPARSE_INVERTED_INDEX",
        metric_type="BM25",
        params={"bm25_k1": BM25_K1, "bm25_b": BM25_B},
    )
    client.create_collection(name, schema=schema, index_params=indexes)
    articles = _article_numbers(directory, manifest)
    for batch in batches:
        vectors = vector_matrix(batch.column("vector"), dimension).astype(np.float32)
        client.insert(
            name,
            [
                {"id": i, "article": articles[a], "vector": v.tolist(), "terms": t or "_"}
                for i, a, t, v in zip(
                    batch.column("id").to_pylist(),
                    batch.column("article_id").to_pylist(),
                    batch.column("terms").to_pylist(),
                    vectors,
                    strict=True,
                )
            ],
        )
    client.flush(name)
    client.load_collection(name)
    if _rows(client, name) != count:
        raise MilvusError(f"Milvus holds {_rows(client, name)} of {count} chunks of {name}")
    log.info("loaded %d chunks into Milvus collection %s", count, name)
    return name


def _rows(client, name: str) -> int:
    return int(client.get_collection_stats(name)["row_count"])


def _article_numbers(directory: Path, manifest: dict) -> dict[str, int]:
    import pyarrow.parquet as pq

    numbers = {}
    for path in shard_files(directory, manifest, "articles", check=False):
        table = pq.read_table(path, columns=["id", "article_id"])
        numbers.update(zip(table["article_id"].to_pylist(), table["id"].to_pylist(), strict=True))
    return numbers


class MilvusBackend:
    """Chunk search on a Milvus server, for an index built from the snapshot it holds.

    Args:
        uri: The server.
        index: The index (built from the snapshot loaded with `load_snapshot`).
        candidates: Length of each list fused in a hybrid search.

    Raises:
        MilvusError: The server lacks this index's snapshot, or holds another count of chunks.
    """

    def __init__(self, uri: str, index: Index, *, candidates: int = CANDIDATES) -> None:
        snapshot = index.manifest.get("snapshot")
        if not snapshot or "digest" not in snapshot:
            raise MilvusError(
                "This index was not built from a snapshot, so Milvus cannot hold it: load it"
                f" with: rag index --milvus {uri}"
            )
        self.uri = uri
        self.client = connect(uri)
        self.name = collection_name(snapshot["digest"])
        if not self.client.has_collection(self.name) or _rows(self.client, self.name) != len(
            index.chunks
        ):
            raise MilvusError(
                f"The Milvus server at {uri} does not hold this index's chunks ({self.name});"
                f" load them with: rag index --milvus {uri}"
            )
        self.client.load_collection(self.name)
        self.index = index
        self.numbers = {a: n for n, a in enumerate(index.articles)}
        self.candidates = min(candidates, len(index.chunks))

    def search(
        self,
        vector: np.ndarray,
        terms: list[str],
        *,
        k: int,
        method: Method,
        articles: Set[str] | None,
    ) -> list[tuple[int, float]]:
        """See `rag.retrieval.Backend.search`."""
        from pymilvus.exceptions import MilvusException

        try:
            return self._search(vector, terms, k=k, method=method, articles=articles)
        except MilvusException as e:
            raise MilvusError(
                f"The Milvus server at {self.uri} could not search ({e.message}); is it"
                " running? Start it, or serve without --milvus."
            ) from e

    def _search(
        self, vector, terms, *, k: int, method: Method, articles
    ) -> list[tuple[int, float]]:
        from pymilvus import AnnSearchRequest, RRFRanker

        expr = ""
        if articles is not None:
            if not articles:
                return []
            expr = f"article in [{', '.join(str(self.numbers[a]) for a in sorted(articles))}]"
        text = join_terms(terms)
        dense = {"data": [vector.astype(np.float32).tolist()], "anns_field": "vector"}
        lexical = {"data": [text], "anns_field": "sparse"}
        if method == "hybrid":
            requests = [
                AnnSearchRequest(
                    **dense, param={"metric_type": "IP"}, limit=self.candidates, expr=expr
                ),
            ]
            if text:
                requests.append(
                    AnnSearchRequest(
                        **lexical, param={"metric_type": "BM25"}, limit=self.candidates, expr=expr
                    )
                )
            hits = self.client.hybrid_search(
                self.name, requests, RRFRanker(RRF_K), limit=k, output_fields=["id"]
            )
        elif method == "dense" or not text:
            if method != "dense":
                return []
            hits = self.client.search(
                self.name, **dense, limit=k, filter=expr, output_fields=["id"]
            )
        else:
            hits = self.client.search(
                self.name, **lexical, limit=k, filter=expr, output_fields=["id"]
            )
        found = [(int(hit["id"]), float(hit["distance"])) for hit in hits[0]]
        if method == "bm25":
            # BM25 scores are positive; milvus-lite reports them negated, Milvus as they are.
            found = [(i, abs(score)) for i, score in found]
        return found
