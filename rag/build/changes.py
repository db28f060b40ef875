"""The record of what `rag add` and `rag remove` changed in a collection: the articles added
and the ids removed, kept in the index directory and applied to the collection its files make."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from embeddings.files import sha256_file
from rag.errors import IndexProblemError
from rag.index.store import read_manifest
from rag.index.tables import article_from_json, article_to_json
from rag.ingest.articles import Collection
from rag.types import Article

log = logging.getLogger(__name__)

# Kept in each generation, and a copy beside them: what `rag add` and `rag remove`
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


class ChangesDamagedError(IndexProblemError):
    """No readable record of the changes matches the one the index was committed with."""


def read_changes(directory: Path) -> Changes:
    """The changes committed with the index in service: the record kept in its generation
    (switched in with it), else the copy kept beside it when that one matches the
    generation's checksum, or for an index made before generations kept the record.

    Args:
        directory: The index directory.

    Returns:
        The changes; none when nothing is recorded.

    Raises:
        ChangesDamagedError: No readable copy fits; the message names them
            (`rag.build.updates` then recovers the changes from the index's articles).
    """
    kept = directory / CHANGES_FILE
    try:
        generation, manifest = read_manifest(directory)
        expected = manifest.get("records", {}).get(CHANGES_FILE)
    except IndexProblemError:
        generation, expected = None, None
    if generation is None or expected is None:
        # No generation, or one from before the record was kept in it: the copy beside.
        return _parse(kept) if kept.is_file() else Changes()
    problems = []
    for path in (generation / CHANGES_FILE, kept):
        try:
            if path.is_file() and sha256_file(path) == expected["sha256"]:
                if path == kept:
                    log.warning(
                        "the record in %s is damaged; recovered it from %s", generation, kept
                    )
                return _parse(path)
            problems.append(f"{path} is missing or differs from the record committed")
        except (OSError, ChangesDamagedError) as e:
            problems.append(str(e))
    raise ChangesDamagedError("; ".join(problems))


def _parse(path: Path) -> Changes:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Changes(tuple(article_from_json(a) for a in data["added"]), tuple(data["removed"]))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ChangesDamagedError(f"{path} cannot be read ({e})") from e


def changes_bytes(changes: Changes) -> bytes:
    """The record of changes as it is written (JSON in UTF-8)."""
    data = {"added": [article_to_json(a) for a in changes.added], "removed": list(changes.removed)}
    return json.dumps(data, ensure_ascii=False).encode("utf-8")


def write_changes(directory: Path, changes: Changes) -> None:
    """Keep a copy of the committed changes beside the index, atomically (a new file, then a
    rename); the generation's own record is written by `save_index`."""
    directory.mkdir(parents=True, exist_ok=True)
    temporary = directory / f".{CHANGES_FILE}.{uuid.uuid4().hex[:6]}"
    try:
        with temporary.open("wb") as f:
            f.write(changes_bytes(changes))
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, directory / CHANGES_FILE)
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)


def changes_in_index(collection: Collection, articles: Mapping[str, Article]) -> Changes:
    """The changes that make a collection's files into the articles of an index: its articles
    that the files lack or hold otherwise, and the files' articles it lacks.

    Args:
        collection: The collection its files make.
        articles: The articles of the index, by id (at least one).

    Returns:
        The changes.
    """
    files = {a.id: a for a in collection.articles}
    added = tuple(a for i, a in articles.items() if files.get(i) != a)
    return Changes(added, tuple(i for i in files if i not in articles))


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
