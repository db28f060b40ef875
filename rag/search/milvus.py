"""The Milvus backend: dense search and BM25 on a Milvus server, fused by reciprocal rank."""

from __future__ import annotations

import logging
from collections.abc import Collection as Set

import numpy as np

from rag.errors import MilvusError
from rag.index.milvus import chunk_count, collection_name, connect, join_terms
from rag.index.store import Index
from rag.search.retrieval import CANDIDATES, RRF_K
from rag.settings import Method

log = logging.getLogger(__name__)


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
        if not self.client.has_collection(self.name) or chunk_count(self.client, self.name) != len(
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
        """See `rag.search.retrieval.Backend.search`."""
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
