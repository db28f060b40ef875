"""The index directory's housekeeping: failed writes said in one line, leftovers swept, the last update kept."""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import json
import logging
import os
import shutil
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from rag.errors import StorageError

log = logging.getLogger(__name__)

# The one-line pointer to the generation in service: switching it commits a change.
CURRENT = "CURRENT"
# The outcome of the last change to an index (`rag add`, `rag remove`, a build), kept beside
# it so that a server in another process can say what happened.
LAST_UPDATE_FILE = "last-update.json"
# The folder a build that streams writes its vectors to before they go into a generation.
SCRATCH_PREFIX = ".build."
MB = 2**20


@dataclass(frozen=True)
class LastUpdate:
    """What the last change to an index did."""

    ok: bool
    action: str
    at: str
    message: str
    generation: str = ""


def storage_error(
    error: OSError, directory: Path, needed: int | None = None
) -> StorageError | None:
    """The product error for an operating system's refusal to write an index.

    Args:
        error: The error the write raised.
        directory: The index directory being written.
        needed: About how many bytes the write needs, when known.

    Returns:
        A `StorageError` that says in one line what failed and what to do, or None for an
        error of another kind (left to surface as it is).
    """
    where = error.filename or directory
    # numpy's `tofile` says a short write without an errno: the disk filled up under it.
    short = error.errno is None and "requested and" in str(error) and "written" in str(error)
    if error.errno in (errno.ENOSPC, errno.EDQUOT) or short:
        free = free_bytes(directory)
        amount = f"needs about {_mb(needed)} MB, " if needed else ""
        return StorageError(
            f"The index in {directory} could not be written: the disk is full ({amount}"
            f"{_mb(free)} MB free). Free some space there, or give another place with"
            " --index DIR, then run the command again; the previous index still answers."
        )
    if error.errno in (errno.EACCES, errno.EPERM):
        return StorageError(
            f"The index in {directory} could not be written: permission denied on {where}."
            " Run as a user who may write there, or give another place with --index DIR;"
            " the previous index still answers."
        )
    if error.errno == errno.EROFS:
        return StorageError(
            f"The index in {directory} could not be written: the file system is read-only."
            " Give a writable place with --index DIR; the previous index still answers."
        )
    return None


def leftovers(directory: Path) -> list[Path]:
    """What writes that did not finish left in an index directory: generation folders that
    `CURRENT` does not name, and half-written pointers and records.

    Args:
        directory: The index directory.

    Returns:
        Their paths; none of a generation's when `CURRENT` is unreadable (it cannot tell a
        leftover from the index).
    """
    pointer = directory / CURRENT
    try:
        current = pointer.read_text(encoding="utf-8").strip() if pointer.exists() else ""
    except (OSError, UnicodeDecodeError):
        current = None
    found = []
    for path in sorted(directory.glob("gen-*")):
        if current is not None and path.name != current:
            found.append(path)
    for path in sorted(directory.glob(".*.*")):
        if path.name.startswith(
            (f".{CURRENT}.", ".changes.json.", f".{LAST_UPDATE_FILE}.", SCRATCH_PREFIX)
        ):
            found.append(path)
    return found


def sweep(directory: Path) -> list[str]:
    """Remove the leftovers of writes that did not finish (see `leftovers`), with a log line
    each. Call it only while holding the directory's build lock: another writer's new
    generation is not a leftover.

    Args:
        directory: The index directory.

    Returns:
        The names removed.
    """
    removed = []
    for path in leftovers(directory):
        if path.is_dir():  # a generation, or a build's scratch folder
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        log.warning("removed %s from %s, left by a write that did not finish", path.name, directory)
        removed.append(path.name)
    return removed


def free_bytes(directory: Path) -> int:
    """The bytes free for this user on the disk of a directory (or its nearest parent)."""
    path = directory
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def _mb(size: int) -> str:
    return f"{size / MB:.1f}"


def record_update(directory: Path, outcome: LastUpdate) -> None:
    """Keep the outcome of a change beside the index (a new file, then a rename). A record
    that cannot be written is logged, not raised: the change itself is done or undone.

    Args:
        directory: The index directory.
        outcome: What the change did.
    """
    temporary = directory / f".{LAST_UPDATE_FILE}.{uuid.uuid4().hex[:6]}"
    try:
        temporary.write_text(json.dumps(asdict(outcome)), encoding="utf-8")
        os.replace(temporary, directory / LAST_UPDATE_FILE)
    except OSError as e:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        log.warning("the outcome of the last update could not be recorded in %s: %s", directory, e)


def last_update(directory: Path) -> LastUpdate | None:
    """The outcome of the last change to an index; None when none is recorded (or readable)."""
    try:
        data = json.loads((directory / LAST_UPDATE_FILE).read_text(encoding="utf-8"))
        return LastUpdate(**data)
    except (OSError, ValueError, TypeError):
        return None


def now() -> str:
    """The time, for a record: ISO 8601 in UTC, to the second."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
