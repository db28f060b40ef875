"""Load a snapshot's chunks into a Milvus collection, once per content."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from rag.build.snapshot import (
    iter_chunk_batches,
    read_snapshot_manifest,
    shard_files,
    snapshot_digest,
    vector_matrix,
)
from rag.errors import MilvusError
from rag.index.milvus import (
    BM25_B,
    BM25_K1,
    INSERT_BATCH,
    chunk_count,
    collection_name,
    connect,
    pymilvus_module,
)

log = logging.getLogger(__name__)


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
    pymilvus = pymilvus_module()
    from pymilvus import DataType, Function, FunctionType

    manifest = read_snapshot_manifest(directory)
    columns = ("id", "article_id", "terms", "vector")
    # Every shard is checked here, before anything is sent.
    batches = iter_chunk_batches(directory, manifest, columns=columns, batch_size=INSERT_BATCH)
    name = collection_name(snapshot_digest(manifest))
    client = connect(uri)
    count, dimension = manifest["counts"]["chunks"], int(manifest["dimension"])
    if client.has_collection(name):
        if chunk_count(client, name) == count:
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
    if chunk_count(client, name) != count:
        raise MilvusError(f"Milvus holds {chunk_count(client, name)} of {count} chunks of {name}")
    log.info("loaded %d chunks into Milvus collection %s", count, name)
    return name


def _article_numbers(directory: Path, manifest: dict) -> dict[str, int]:
    import pyarrow.parquet as pq

    numbers = {}
    for path in shard_files(directory, manifest, "articles", check=False):
        table = pq.read_table(path, columns=["id", "article_id"])
        numbers.update(zip(table["article_id"].to_pylist(), table["id"].to_pylist(), strict=True))
    return numbers
