"""Batch indexing: a collection to a snapshot, in one process or on a Ray cluster."""

from __future__ import annotations

import json
import logging
import pickle
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from rag.build.chunking import chunk_articles
from rag.build.indexing import collection_record, sentence_refs
from rag.build.snapshot import Shard, SnapshotWriter, created_now
from rag.errors import ClusterError, CollectionError
from rag.index.tables import article_from_json, article_to_json
from rag.ingest.articles import Collection
from rag.settings import ChunkSettings
from rag.types import Article

# Articles per unit of work (and per Parquet shard): a function of the collection's size alone,
# never of the workers, so that every runner cuts the same shards. At least 8, so that each
# model call gets full batches; at most 512, so that a shard's vectors stay small; in
# between, about 64 shards in all, so that even a small collection is shared by workers.
MIN_SHARD_ARTICLES, MAX_SHARD_ARTICLES, SHARDS = 8, 512, 64
# Texts per model call. Fixed, and the same for every runner: a text's vector depends on the
# batch it is padded in, so the same batches give the same vectors on one process or many.
BATCH_SIZE = 64

log = logging.getLogger(__name__)


def shard_size(articles: int) -> int:
    """Articles per shard for a collection of this many articles."""
    return min(MAX_SHARD_ARTICLES, max(MIN_SHARD_ARTICLES, -(-articles // SHARDS)))


def shards_of(articles: Sequence[Article], size: int) -> list[list[Article]]:
    """Cut the articles, in collection order, into units of work of `size` articles."""
    return [list(articles[i : i + size]) for i in range(0, len(articles), size)]


class ShardEmbedder:
    """Chunks and embeds shards of articles; one per process, or per Ray actor, so that the
    model is loaded once per worker.

    Args:
        model: The embedding model's name.
        chunking: `ChunkSettings` as a dict.
        runtime: Where the model runs (see `embeddings.load_encoder`).
        threads: The model's threads (a Ray worker owns one CPU).
        encoder: An encoder already loaded (one process); loaded from `model` when None.
    """

    def __init__(
        self,
        model: str,
        chunking: dict[str, Any],
        *,
        runtime: str = "onnx",
        threads: int | None = None,
        encoder=None,
    ) -> None:
        if encoder is None:
            from embeddings import load_encoder

            encoder = load_encoder(model, runtime=runtime, threads=threads)
        self.encoder = encoder
        self.settings = ChunkSettings(**chunking)

    def embed(self, articles: Sequence[Article]) -> Shard:
        """Chunk a shard's articles and embed its chunks and sentences.

        Returns:
            The shard, ids local to it, vectors as float16.
        """
        chunks = chunk_articles(articles, self.encoder.count_tokens, self.settings)
        sentences = sentence_refs(chunks)
        text = {a.id: a.text for a in articles}
        dimension = int(self.encoder.dimension)
        return Shard(
            list(articles),
            chunks,
            self._encode([c.text for c in chunks], dimension),
            sentences,
            self._encode([text[s.article_id][s.start : s.end] for s in sentences], dimension),
        )

    def _encode(self, texts: list[str], dimension: int) -> np.ndarray:
        if not texts:
            return np.zeros((0, dimension), np.float16)
        vectors = self.encoder.encode(texts, batch_size=BATCH_SIZE)
        return np.asarray(vectors, dtype=np.float32).astype(np.float16)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Ray Data's batch interface: rows of (shard number, articles as JSON) in, rows of
        (shard number, pickled `Shard`) out."""
        out = [
            pickle.dumps(self.embed([article_from_json(a) for a in json.loads(payload)]))
            for payload in batch["articles"]
        ]
        node = _node_id()
        return {
            "shard": np.asarray(batch["shard"]),
            "data": np.array(out, dtype=object),
            "node": np.array([node] * len(out), dtype=object),
        }


def _node_id() -> str:
    import ray

    return ray.get_runtime_context().get_node_id()


def build_snapshot(
    collection: Collection,
    directory: Path,
    *,
    model: str,
    chunking: ChunkSettings,
    runtime: str = "onnx",
    ray: str | None = None,
    encoder=None,
    shard_articles: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Chunk and embed a collection into a snapshot (see `rag.build.snapshot`).

    The same `ShardEmbedder` does the work either way: in this process, or in an actor per
    CPU of a Ray cluster through Ray Data's `map_batches`.

    Args:
        collection: The articles.
        directory: Where the snapshot goes; replaced atomically when complete.
        model: The embedding model's name.
        chunking: Chunking settings.
        runtime: Where the model runs (see `embeddings.load_encoder`).
        ray: None to work in this process; `auto` or a cluster's address (`HOST:PORT`) to
            work on Ray.
        encoder: A loaded encoder for in-process work (loaded when None).
        shard_articles: Articles per unit of work and per Parquet file (see `shard_size`).
        progress: Called as `progress("shards", done, total)`.

    Returns:
        The snapshot's manifest, as written.

    Raises:
        ClusterError: Ray is not installed, or the cluster cannot be reached or fails.
    """
    from embeddings import encoder_name
    from embeddings.encoder import model_revision

    started = time.perf_counter()
    shard_articles = shard_articles or shard_size(len(collection.articles))
    shards = shards_of(collection.articles, shard_articles)
    chunk_settings = asdict(chunking)
    if ray is None:
        embedder = ShardEmbedder(model, chunk_settings, runtime=runtime, encoder=encoder)
        results: Iterator[Shard] = (embedder.embed(s) for s in shards)
        workers = 1
    else:
        nodes: set[str] = set()
        results, workers = _on_ray(shards, ray, model, chunk_settings, runtime, nodes)
    writer = None
    try:
        for done, shard in enumerate(results, start=1):
            if writer is None:
                writer = SnapshotWriter(directory, dimension=shard.chunk_vectors.shape[1])
            writer.add(shard)
            if progress:
                progress("shards", done, len(shards))
        if writer is None:
            raise CollectionError("The collection has no articles: there is nothing to snapshot.")
        manifest = {
            "model": encoder_name(model, runtime),
            "model_revision": model_revision(model),
            "chunking": chunk_settings,
            "collection": collection_record(collection),
            "build": {
                "runner": "ray" if ray else "process",
                "workers": workers,
                "nodes": len(nodes) if ray else 1,
                "shard_articles": shard_articles,
                "batch_size": BATCH_SIZE,
                "seconds": round(time.perf_counter() - started, 2),
                "created_at": created_now(),
            },
        }
        manifest = writer.finish(manifest)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        if ray is not None:
            _shutdown_ray()
    return manifest


def _import_ray():
    try:
        import ray
    except ImportError as e:
        raise ClusterError(
            "Building on Ray needs Ray: pip install -e '.[ray]' (or leave out --ray to build"
            " in this process)."
        ) from e
    return ray


def _check_reachable(address: str) -> None:
    # ray.init retries an address where nothing listens for minutes; a closed port is known
    # at once.
    host, _, port = address.rpartition(":")
    if address == "auto" or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=5).close()
    except OSError as e:
        raise ClusterError(
            f"No Ray cluster answers at {address} ({e.strerror or e}). Start one with: ray start"
            " --head, then pass the address it prints (HOST:PORT), or auto on one of its nodes."
        ) from e


def _on_ray(
    shards: list[list[Article]],
    address: str,
    model: str,
    chunking: dict,
    runtime: str,
    nodes: set[str],
) -> tuple[Iterator[Shard], int]:
    ray = _import_ray()
    _check_reachable(address)
    try:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise ClusterError(
            f"Cannot reach a Ray cluster at {address!r} ({e}). Start one with: ray start --head,"
            " and pass its address (HOST:PORT) or auto."
        ) from e
    cpus = max(int(ray.cluster_resources().get("CPU", 1)), 1)
    workers = min(cpus, len(shards)) or 1
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False
    # Start when every worker has its model loaded, so that the first one up does not take
    # all the shards of a small collection.
    context.wait_for_min_actors_s = 600
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    items = [
        {"shard": n, "articles": json.dumps([article_to_json(a) for a in shard])}
        for n, shard in enumerate(shards)
    ]

    class Embedder(ShardEmbedder):
        # The settings travel with the class, so that an actor restarted after a failure
        # needs nothing from the object store.
        def __init__(self) -> None:
            super().__init__(model, chunking, runtime=runtime, threads=1)

    dataset = ray.data.from_items(items, override_num_blocks=max(len(items), 1)).map_batches(
        Embedder,
        batch_size=1,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=workers, max_tasks_in_flight_per_actor=1),
        num_cpus=1,
    )

    def results() -> Iterator[Shard]:
        expected = 0
        try:
            for row in dataset.iter_rows():
                if int(row["shard"]) != expected:
                    raise ClusterError(f"Ray returned shard {row['shard']}, not {expected}")
                expected += 1
                nodes.add(row["node"])
                yield pickle.loads(row["data"])
        except ray.exceptions.RayError as e:
            raise ClusterError(f"The Ray build failed: {e}") from e

    return results(), workers


def _shutdown_ray() -> None:
    try:
        import ray
    except ImportError:
        return
    if ray.is_initialized():
        ray.shutdown()
