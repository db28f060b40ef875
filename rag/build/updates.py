"""A collection that grows: build, add to and remove from an index, embedding only new text."""

from __future__ import annotations

import difflib
import logging
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from embeddings import encoder_name
from rag.build.changes import Changes, apply_changes
from rag.build.commit import changing, commit, recorded, sweep_if_free
from rag.build.duplicates import Duplicate
from rag.build.indexing import EmbeddingCache, build_index, index_from_snapshot, stale_reasons
from rag.build.pipeline import build_snapshot
from rag.errors import (
    CollectionError,
    IndexMissingError,
    IndexProblemError,
    IndexStaleError,
    StorageError,
)
from rag.index.disk import SCRATCH_PREFIX
from rag.index.store import Index, Progress, load_index, read_manifest, saved_articles
from rag.ingest.articles import Collection
from rag.settings import Settings
from rag.types import Article

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Update:
    """What opening, building or changing an index did."""

    directory: Path
    built: bool
    articles: int
    chunks: int
    added: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    unchanged: int = 0
    skipped: tuple[str, ...] = ()
    duplicates: tuple[Duplicate, ...] = ()
    embedded_chunks: int = 0
    embedded_sentences: int = 0
    seconds: float = 0.0
    # Articles `rag remove` took out of the collection; they stay out when its files are read.
    left_out: tuple[str, ...] = ()
    # The snapshot the index was made from (see `index_in_batch`), if any.
    snapshot: Path | None = None
    # Why the index could not be brought up to date, when the previous one answers instead.
    failed: str | None = None


def current_collection(settings: Settings) -> Collection:
    """The collection the settings name, with the changes recorded in its index directory."""
    return _current(settings)[0]


def _current(settings: Settings) -> tuple[Collection, Changes]:
    base, changes = recorded(settings)
    return apply_changes(base, changes), changes


def open_index(
    settings: Settings, encoder, *, progress: Progress | None = None, fallback: bool = False
) -> tuple[Index, Update]:
    """Load the index of the settings' collection, building it when missing or out of date.

    A build embeds only text that the index it replaces lacks (unless `rebuild="always"`).

    Args:
        settings: Collection, index directory, model, chunking, and the rebuild policy
            (`auto`: rebuild when needed; `never`: raise instead; `always`: rebuild).
        encoder: The embedding model.
        progress: Called as texts are embedded (see `rag.index.store.build_index`).
        fallback: When a needed build cannot be written (`StorageError`), load the index
            saved before instead, its `Update.failed` saying why (for answering: answers
            never wait on a rebuild's success).

    Returns:
        (the index, what was done: `built` is false when the saved index was current).

    Raises:
        IndexMissingError, IndexStaleError: With `rebuild="never"`, when a build is needed.
        IndexCorruptError: A saved file is damaged; the message names it and the fix.
        CollectionError: The collection cannot be read.
        StorageError: A needed build cannot be written (without `fallback`, or with no
            index saved before).
    """
    started = time.perf_counter()
    directory = settings.index_path
    sweep_if_free(directory)
    collection, changes = _current(settings)
    if settings.rebuild != "always" and not _reasons_to_build(settings, collection, encoder.name):
        return _loaded(directory, collection, changes, started)
    try:
        with changing(directory, "build the index"):
            # Another process may have built it, or changed it, while this one waited.
            collection, changes = _current(settings)
            reasons = ["a rebuild was asked for"]
            if settings.rebuild != "always":
                reasons = _reasons_to_build(settings, collection, encoder.name)
                if not reasons:
                    return _loaded(directory, collection, changes, started)
            return _build(
                settings,
                encoder,
                collection,
                changes,
                reasons=reasons,
                reuse=settings.rebuild != "always",
                progress=progress,
                started=started,
            )
    except StorageError as e:
        previous = _previous(directory) if fallback else None
        if previous is None:
            raise
        log.warning(
            "%s Answering from the index saved before, %s.", e, previous.manifest["generation"]
        )
        _, update = _loaded(directory, collection, changes, started, index=previous)
        return previous, replace(update, failed=str(e))


def index_in_batch(
    settings: Settings,
    *,
    ray: str | None = None,
    snapshot: Path | None = None,
    milvus: str | None = None,
    progress: Progress | None = None,
) -> tuple[Index, Update]:
    """Build the settings' index through a snapshot (see `rag.build.pipeline`): embedded on a Ray
    cluster, or read from a snapshot written before.

    Args:
        settings: The collection and its index.
        ray: `auto` or a cluster's address to embed on Ray; None to embed in this process
            (or, with `snapshot`, to read that snapshot as it is).
        snapshot: The snapshot's folder; by default `DIR/snapshot`, written anew.
        milvus: A Milvus server to load the snapshot's chunks into (see `rag.search.milvus`).
        progress: Called as shards are done.

    Returns:
        (the index, what was done).

    Raises:
        IndexStaleError: The snapshot given was made from another collection, model or
            chunking.
    """
    started = time.perf_counter()
    directory = settings.index_path
    with changing(directory, "build the index"):
        collection, changes = _current(settings)
        target = snapshot or directory / "snapshot"
        made = snapshot is None or ray is not None
        if made:
            build_snapshot(
                collection,
                target,
                model=settings.model,
                chunking=settings.chunking,
                runtime=settings.encoder_backend,
                ray=ray,
                progress=progress,
            )
        index = index_from_snapshot(target, embedded=made)
        model = encoder_name(settings.model, settings.encoder_backend)
        reasons = stale_reasons(index.manifest, collection, model, settings.chunking)
        if reasons:
            raise IndexStaleError(
                f"The snapshot in {target} does not fit: {'; '.join(reasons)}. Write it again"
                f" from this collection with: rag snapshot {target}"
            )
        if milvus is not None:
            from rag.build.milvus import load_snapshot

            load_snapshot(milvus, target)
        before = saved_articles(directory)
        commit(index, directory, changes, "build the index")
        update = _summary(
            index,
            collection,
            directory=directory,
            before=before,
            skipped=(),
            left_out=changes.removed,
            started=started,
        )
        return index, replace(update, snapshot=target)


def add_articles(
    settings: Settings,
    encoder,
    articles: Sequence[Article],
    *,
    skipped: Sequence[str] = (),
    progress: Progress | None = None,
) -> tuple[Index, Update]:
    """Add articles to the settings' collection, or update the ones of the same id (or the
    same url), then bring the index up to date, embedding only their text.

    Args:
        settings: The collection and its index.
        encoder: The embedding model.
        articles: The articles to add.
        skipped: What could not be read of the sources, reported with the update.
        progress: Called as texts are embedded.

    Returns:
        (the new index, what was done).

    Raises:
        CollectionError: Two of the articles share an id.
    """
    started = time.perf_counter()
    seen: dict[str, Article] = {}
    for article in articles:
        if article.id in seen:
            raise CollectionError(
                f"Two articles to add have the id {article.id!r}: {seen[article.id].title!r} in"
                f" {seen[article.id].source} and {article.title!r} in {article.source}."
            )
        seen[article.id] = article
    directory = settings.index_path
    action = f"add {len(articles)} articles"
    with changing(directory, action):
        base, changes = recorded(settings)
        before = apply_changes(base, changes)
        new_urls = {a.url for a in articles if a.url}
        kept = [
            a
            for a in changes.added
            if a.id not in seen and not (a.url and a.url in new_urls and _from_address(a))
        ]
        changes = Changes((*kept, *articles), tuple(i for i in changes.removed if i not in seen))
        return _build(
            settings,
            encoder,
            apply_changes(base, changes),
            changes,
            reasons=[f"{len(articles)} articles added"],
            reuse=True,
            progress=progress,
            started=started,
            skipped=skipped,
            before=before,
            action=action,
        )


def remove_articles(
    settings: Settings, encoder, ids: Sequence[str], *, progress: Progress | None = None
) -> tuple[Index, Update]:
    """Remove articles from the settings' collection and bring the index up to date.

    Args:
        settings: The collection and its index.
        encoder: The embedding model.
        ids: The ids of the articles to remove.
        progress: Called as texts are embedded (none are, unless the index was stale).

    Returns:
        (the new index, what was done).

    Raises:
        CollectionError: An id is not in the collection; the message offers close ones.
    """
    started = time.perf_counter()
    directory = settings.index_path
    action = f"remove {len(ids)} articles"
    with changing(directory, action):
        base, changes = recorded(settings)
        before = apply_changes(base, changes)
        present = {a.id for a in before.articles}
        unknown = [i for i in ids if i not in present]
        if unknown:
            close = difflib.get_close_matches(unknown[0], sorted(present), n=3)
            raise CollectionError(
                f"No article with the id {unknown[0]!r} in the collection"
                + (f"; did you mean {', '.join(map(repr, close))}?" if close else ".")
                + " `rag list` shows the ids."
            )
        in_files = {a.id for a in base.articles}
        changes = Changes(
            tuple(a for a in changes.added if a.id not in ids),
            (*changes.removed, *(i for i in dict.fromkeys(ids) if i in in_files)),
        )
        collection = apply_changes(base, changes)
        if not collection.articles:
            raise CollectionError(
                "Removing these articles would leave the collection empty; keep one at least."
            )
        return _build(
            settings,
            encoder,
            collection,
            changes,
            reasons=[f"{len(ids)} articles removed"],
            reuse=True,
            progress=progress,
            started=started,
            before=before,
            action=action,
        )


def _from_address(article: Article) -> bool:
    # An article read from a web address (a page, or a feed entry), not from a file: adding
    # the address again replaces it even when its title, and so its id, has changed.
    return "://" in article.source


def _loaded(
    directory: Path,
    collection: Collection,
    changes: Changes,
    started: float,
    index: Index | None = None,
) -> tuple[Index, Update]:
    index = index or load_index(directory)
    return index, Update(
        directory=directory,
        built=False,
        articles=len(index.articles),
        chunks=len(index.chunks),
        unchanged=len(index.articles),
        skipped=collection.warnings,
        duplicates=tuple(Duplicate(**d) for d in index.manifest.get("duplicates", [])),
        seconds=time.perf_counter() - started,
        left_out=changes.removed,
    )


def _previous(directory: Path) -> Index | None:
    try:
        return load_index(directory)
    except IndexProblemError:
        return None


def _build(
    settings: Settings,
    encoder,
    collection: Collection,
    changes: Changes,
    *,
    reasons: Sequence[str],
    reuse: bool,
    progress: Progress | None,
    started: float,
    skipped: Sequence[str] = (),
    before: Collection | None = None,
    action: str = "build the index",
) -> tuple[Index, Update]:
    # Build, and commit with its changes under the caller's lock; say what changed from the
    # collection before (by default, the articles of the index replaced).
    directory = settings.index_path
    log.info("building the index in %s (%s)", directory, "; ".join(reasons))
    previous = _previous(directory)
    cache = None
    if (
        reuse
        and previous is not None
        and previous.manifest.get("model") == encoder.name
        and previous.manifest.get("dimension") == encoder.dimension
    ):
        cache = EmbeddingCache.from_index(previous, settings=settings.chunking)
    # A build past `PIECES_LIMIT` chunks writes its vectors as it goes: beside the index, on
    # its disk (a full disk is then said as for the index), swept if the build dies.
    scratch = directory / f"{SCRATCH_PREFIX}{uuid.uuid4().hex[:6]}"
    try:
        index = build_index(
            collection,
            encoder,
            settings.chunking,
            cache=cache,
            progress=progress,
            scratch=scratch,
        )
        commit(index, directory, changes, action)
        if scratch.exists():
            # Served from the generation's files, not from copies about to be removed.
            index = load_index(directory)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if before is not None:
        before_articles = {a.id: a for a in before.articles}
    else:
        before_articles = previous.articles if previous is not None else {}
    return index, _summary(
        index,
        collection,
        directory=directory,
        before=before_articles,
        skipped=skipped,
        left_out=changes.removed,
        started=started,
    )


def _summary(
    index: Index,
    collection: Collection,
    *,
    directory: Path,
    before: dict[str, Article],
    skipped: Sequence[str],
    left_out: tuple[str, ...],
    started: float,
) -> Update:
    # What a build changed from the articles before.
    added = tuple(i for i in index.articles if i not in before)
    updated = tuple(
        i for i, a in index.articles.items() if i in before and _content(before[i]) != _content(a)
    )
    removed = tuple(i for i in before if i not in index.articles)
    embedded = index.manifest["embedded"]
    return Update(
        directory=directory,
        built=True,
        articles=len(index.articles),
        chunks=len(index.chunks),
        added=added,
        updated=updated,
        removed=removed,
        unchanged=len(index.articles) - len(added) - len(updated),
        skipped=(*collection.warnings, *skipped),
        duplicates=tuple(Duplicate(**d) for d in index.manifest["duplicates"]),
        embedded_chunks=embedded["chunks"],
        embedded_sentences=embedded["sentences"],
        seconds=time.perf_counter() - started,
        left_out=left_out,
    )


def _content(article: Article) -> tuple:
    return (article.title, article.text, article.author, article.date, article.url)


def _reasons_to_build(settings: Settings, collection: Collection, model: str) -> list[str]:
    # Why the saved index cannot serve this collection; raises with `rebuild="never"`.
    directory = settings.index_path
    try:
        _, manifest = read_manifest(directory)
        reasons = stale_reasons(manifest, collection, model, settings.chunking)
    except IndexMissingError:
        if settings.rebuild == "never":
            raise
        return [f"no index in {directory} yet"]
    except IndexStaleError as e:
        if settings.rebuild == "never":
            raise
        return [str(e)]
    if reasons and settings.rebuild == "never":
        raise IndexStaleError(
            f"The index in {directory} is out of date: {'; '.join(reasons)}. Rebuild it with:"
            f" rag index --index {directory}"
        )
    return reasons
