"""The record of what `rag add` and `rag remove` changed in a collection: the articles added
and the ids removed, kept in the index directory and applied to the collection its files make."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

from rag.errors import IndexProblemError
from rag.index.tables import article_from_json, article_to_json
from rag.ingest.articles import Collection
from rag.types import Article

# Kept in the index directory, beside the generations: what `rag add` and `rag remove`
# changed in the collection its files make.
CHANGES_FILE = "changes.json"


@dataclass(frozen=True)
class Changes:
    """Articles added to a collection (new ones, or new versions of its own), and the ids of
    articles removed from it."""

    added: tuple[Article, ...] = ()
    removed: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.removed)


def read_changes(directory: Path) -> Changes:
    """The changes recorded in an index directory; none when there is no record.

    Raises:
        IndexProblemError: The record is unreadable; the message names it.
    """
    path = directory / CHANGES_FILE
    if not path.is_file():
        return Changes()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Changes(tuple(article_from_json(a) for a in data["added"]), tuple(data["removed"]))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise IndexProblemError(
            f"The record of added and removed articles, {path}, cannot be read ({e}). Move it"
            " away to start again from the collection's files."
        ) from e


def write_changes(directory: Path, changes: Changes) -> None:
    """Record the changes atomically (a new file, then a rename)."""
    directory.mkdir(parents=True, exist_ok=True)
    data = {"added": [article_to_json(a) for a in changes.added], "removed": list(changes.removed)}
    temporary = directory / f".{CHANGES_FILE}.{uuid.uuid4().hex[:6]}"
    with temporary.open("w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, directory / CHANGES_FILE)


def apply_changes(collection: Collection, changes: Changes) -> Collection:
    """The collection with the changes made: additions replace articles of the same id or
    are appended, removed ids are left out.

    Args:
        collection: The collection its files make.
        changes: What was added and removed since.

    Returns:
        The collection; its fingerprint covers the changes too.
    """
    if not changes:
        return collection
    added = {a.id: a for a in changes.added}
    removed = set(changes.removed)
    articles = [added.pop(a.id, a) for a in collection.articles if a.id not in removed]
    articles += [a for a in added.values() if a.id not in removed]
    digest = hashlib.sha256(collection.fingerprint.encode())
    for article in changes.added:
        digest.update(json.dumps(article_to_json(article), sort_keys=True).encode())
    digest.update(json.dumps(sorted(removed)).encode())
    return replace(collection, articles=tuple(articles), fingerprint=digest.hexdigest()[:32])
