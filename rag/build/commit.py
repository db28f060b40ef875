"""A change committed: the index and its record of changes switched in together, failures kept."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

from rag.build.changes import (
    CHANGES_FILE,
    Changes,
    ChangesDamagedError,
    changes_bytes,
    changes_in_index,
    read_changes,
    write_changes,
)
from rag.build.indexing import build_lock
from rag.errors import IndexBusyError, RagError
from rag.index.disk import LastUpdate, leftovers, now, record_update, storage_error, sweep
from rag.index.store import Index, save_index, saved_articles
from rag.ingest.articles import Collection
from rag.ingest.files import load_collection
from rag.settings import Settings

log = logging.getLogger(__name__)


def recorded(settings: Settings) -> tuple[Collection, Changes]:
    """The collection the settings' files make, and the changes committed with its index. A
    damaged record is recovered from the index's own articles: no added article is lost.

    Args:
        settings: The collection and its index.

    Returns:
        (the collection of the files, the changes).

    Raises:
        ChangesDamagedError: The record is damaged and the index cannot be read either.
    """
    base = load_collection(settings.collection)
    directory = settings.index_path
    try:
        return base, read_changes(directory)
    except ChangesDamagedError as e:
        articles = saved_articles(directory)
        if not articles:
            raise ChangesDamagedError(
                f"The record of added and removed articles in {directory} cannot be read ({e}),"
                " and the index holds no readable articles to recover it from. Restore the"
                f" directory from a backup, or rebuild it with: rag index --index {directory}"
                " (articles added with rag add are then to be added again)."
            ) from e
        changes = changes_in_index(base, articles)
        log.warning(
            "the record of added and removed articles in %s is damaged (%s); recovered it from"
            " the index: %d added, %d removed",
            directory,
            e,
            len(changes.added),
            len(changes.removed),
        )
        return base, changes


@contextlib.contextmanager
def changing(directory: Path, action: str) -> Iterator[None]:
    """Hold the index directory's build lock for a change, after sweeping what crashed writes
    left. A failure is kept as the last update's outcome (see `rag.index.disk.last_update`),
    and an operating system's refusal to write becomes a `StorageError`.

    Args:
        directory: The index directory.
        action: What the change does, in a few words ("add 3 articles").

    Raises:
        StorageError: The disk is full, or the directory read-only or not writable.
    """
    try:
        with build_lock(directory):
            sweep(directory)
            yield
    except OSError as e:
        error = storage_error(e, directory)
        if error is None:
            raise
        _failed(directory, action, error)
        raise error from e
    except RagError as e:
        _failed(directory, action, e)
        raise


def _failed(directory: Path, action: str, error: RagError) -> None:
    if directory.is_dir():
        record_update(directory, LastUpdate(False, action, now(), str(error)))


def commit(index: Index, directory: Path, changes: Changes, action: str) -> Path:
    """Save an index with the record of changes it was built from: the switch of `CURRENT`
    commits both. A copy of the record is then kept beside the generations.

    Args:
        index: The index built.
        directory: The index directory (its build lock held).
        changes: The changes the index holds.
        action: What the change did, for the record of the last update.

    Returns:
        The new generation's folder.

    Raises:
        StorageError: The generation could not be written; the previous one stays current.
    """
    generation = save_index(index, directory, records={CHANGES_FILE: changes_bytes(changes)})
    try:
        write_changes(directory, changes)
    except OSError as e:
        # Committed all the same: the generation holds the record.
        log.warning("the copy of the record in %s could not be written: %s", directory, e)
    record_update(directory, LastUpdate(True, action, now(), "done", generation.name))
    return generation


def sweep_if_free(directory: Path) -> None:
    """Sweep what crashed writes left, when no other process holds the build lock (that one
    sweeps as it starts); a directory that cannot be locked is left as it is."""
    if not directory.is_dir() or not leftovers(directory):
        return
    with contextlib.suppress(IndexBusyError, OSError), build_lock(directory, wait_seconds=0):
        sweep(directory)
