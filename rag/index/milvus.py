"""The chunks of a snapshot in a Milvus collection: the client, the collection's name, BM25 terms."""

from __future__ import annotations

from rag.errors import MilvusError

INSERT_BATCH = 512
BM25_K1, BM25_B = 1.5, 0.75


def pymilvus_module():
    """The pymilvus package, or an error that says how to install it."""
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
    pymilvus = pymilvus_module()
    try:
        return pymilvus.MilvusClient(uri=uri, timeout=10)
    except pymilvus.exceptions.MilvusException as e:
        raise MilvusError(
            f"No Milvus server answers at {uri} ({e.message}). Start one, for example:"
            " python -m milvus_lite server --host 127.0.0.1 --port 19530 --data-dir DIR"
        ) from e


def chunk_count(client, name: str) -> int:
    """How many chunks a Milvus collection holds."""
    return int(client.get_collection_stats(name)["row_count"])


def join_terms(terms: list[str]) -> str:
    """BM25 terms as one string that a whitespace or `\\w+` tokenizer splits back into them."""
    return " ".join("".join(c if c.isalnum() else "_" for c in t) for t in terms)
