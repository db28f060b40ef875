"""The index in service: loaded in the background, swapped whole when a new one lands."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rag.engine import Engine
from rag.errors import RagError
from rag.examples import example_questions
from rag.index.disk import last_update
from rag.index.store import CURRENT, Index, load_index
from rag.index.tables import bylines
from rag.serialize import plain
from rag.service import open_engine
from rag.settings import Settings
from rag.types import Answer, Article
from web.requests import AskOptions
from web.schemas import HealthOut, ManifestOut

log = logging.getLogger(__name__)
RELOAD_SECONDS = 1.0


@dataclass(frozen=True)
class View:
    """One loaded index and what the pages derive from it; replaced whole when the index
    changes, so that a request sees one index from start to end."""

    engine: Engine
    generation: str
    authors: tuple[str, ...]
    examples: tuple[str, ...] = ()

    @classmethod
    def of(cls, engine: Engine, generation: str, examples: Sequence[str] = ()) -> View:
        """The view of an engine and its articles' authors.

        Args:
            engine: The open engine.
            generation: The index generation it serves.
            examples: Questions to offer as examples.

        Returns:
            The view.
        """
        index = engine.index
        return cls(
            engine,
            generation,
            tuple(sorted({writer for _, writer, _ in bylines(index.articles) if writer})),
            tuple(examples),
        )

    def ask(self, question: str, options: AskOptions) -> Answer:
        """Ask the engine. Questions run side by side in the server's worker threads: the
        engine's caches are thread-safe and ONNX Runtime runs sessions concurrently.

        Args:
            question: The question.
            options: Filters and passage count.

        Returns:
            The answer.

        Raises:
            QuestionError: The core refuses the question.
        """
        return self.engine.ask(
            question,
            top_k=options.top_k,
            date_from=options.date_from,
            date_to=options.date_to,
            author=options.author,
        )


def _generation(directory: Path) -> str:
    try:
        return (directory / CURRENT).read_text(encoding="utf-8").strip()
    except OSError:
        return ""


@dataclass
class AppState:
    """The index in service (or why there is none yet), swapped for a new one when an update
    lands, without a restart and without failing a request."""

    settings: Settings
    questions: list[dict[str, Any]] = field(default_factory=list)
    view: View | None = None
    error: str | None = None
    loading: bool = False
    started: float = field(default_factory=time.monotonic)
    _swap: threading.Lock = field(default_factory=threading.Lock)

    def use(self, engine: Engine, *, examples: bool = True) -> None:
        """Take an engine into service, then find its example questions.

        Args:
            engine: The open engine.
            examples: Find example questions now (else keep the current ones).
        """
        kept = self.view.examples if self.view else ()
        self.view = View.of(engine, engine.index.manifest.get("generation", ""), kept)
        if examples:
            self._find_examples(engine)

    def _find_examples(self, engine: Engine) -> None:
        # Asking the candidate questions takes a second or two: the engine serves meanwhile,
        # and its examples are set if it is still the one in service.
        found = tuple(example_questions(engine, self.questions))
        with self._swap:
            if self.view is not None and self.view.engine is engine:
                self.view = replace(self.view, examples=found)

    def load(self) -> None:
        """Open (or build) the index; meant to run in a background thread."""
        log.info(
            "opening the index in %s (built if missing or out of date)", self.settings.index_path
        )
        try:
            engine = open_engine(self.settings)
            for warning in engine.skipped:
                log.warning(warning)
            self.use(engine)
        except Exception as e:
            log.exception("the index could not be opened")
            self.error = f"The index could not be opened: {e}"
            return
        m = engine.index.manifest
        log.info(
            "index ready after %.1f s: %d articles, %d chunks, %d sentences (%s, built %s)",
            time.monotonic() - self.started,
            len(engine.index.articles),
            m.get("chunks", 0),
            m.get("sentences", 0),
            m.get("model"),
            m.get("created_at"),
        )

    def refresh(self, made: Index | None = None) -> bool:
        """Serve the index's newest generation if it is not the one in service.

        Args:
            made: An index this process has just saved; used as it is, without reading it
                back, when it is still the newest generation.

        Returns:
            Whether the index in service changed.
        """
        with self._swap:
            current = self.view
            if current is None:
                return False
            generation = _generation(self.settings.index_path)
            if not generation or generation == current.generation:
                return False
            if made is not None and made.manifest.get("generation") == generation:
                index = made
            else:
                try:
                    index = load_index(self.settings.index_path)
                except RagError as e:
                    # A generation mid-write or damaged: keep serving the one in service.
                    log.warning("the new index is not used: %s", e)
                    return False
            engine = current.engine.with_index(index)
            self.use(engine, examples=False)
        log.info("now serving %s: %d articles", generation, len(index.articles))
        self._find_examples(engine)
        return True

    def watch(self, stop: threading.Event, every: float = RELOAD_SECONDS) -> None:
        """Look for a new generation of the index every `every` seconds until stopped.

        Args:
            stop: Set to stop looking.
            every: Seconds between looks.
        """
        while not stop.wait(every):
            try:
                self.refresh()
            except Exception:
                log.exception("the new index could not be taken into service")

    @property
    def engine(self) -> Engine | None:
        """The engine in service."""
        return self.view.engine if self.view else None

    @property
    def articles(self) -> dict[str, Article]:
        """The articles of the index in service."""
        return self.view.engine.index.articles if self.view else {}

    @property
    def authors(self) -> tuple[str, ...]:
        """The authors of the articles in service."""
        return self.view.authors if self.view else ()

    @property
    def examples(self) -> tuple[str, ...]:
        """Questions to try."""
        return self.view.examples if self.view else ()

    def health(self) -> HealthOut:
        """Whether questions can be asked, with the index's manifest and generation once it is
        loaded, and the outcome of the last change to it (by this server or another process).

        Returns:
            The health, as `/healthz` gives it.
        """
        update = last_update(self.settings.index_path)
        last = plain(update) if update else None
        if self.view is None:
            status = "failed" if self.error else "loading"
            return HealthOut(ready=False, status=status, error=self.error, last_update=last)
        index = self.view.engine.index
        m = index.manifest
        manifest = ManifestOut(
            model=m.get("model", ""),
            articles=len(index.articles),
            chunks=m.get("chunks", 0),
            sentences=m.get("sentences", 0),
            created_at=m.get("created_at", ""),
        )
        return HealthOut(
            ready=True,
            status="ready",
            manifest=manifest,
            generation=self.view.generation,
            last_update=last,
        )

    def not_ready(self) -> str:
        """Why questions cannot be asked yet.

        Returns:
            The message: the error that stopped the index loading, else how long it has been
            loading.
        """
        if self.error:
            return self.error
        waited = time.monotonic() - self.started
        return (
            f"The index is still loading ({waited:.0f} s so far; building it the first time"
            " takes a little longer). Try again in a few seconds."
        )
