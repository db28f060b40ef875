"""A collection opened for questions: its index synced or built, then an engine over it."""

from __future__ import annotations

from embeddings import ModelLoadError, load_encoder
from rag.build.updates import open_index
from rag.engine import Engine
from rag.errors import ModelError
from rag.settings import Settings
from rag.types import Answer


def open_engine(settings: Settings, encoder=None) -> Engine:
    """Open the index the settings name, building it first if it is missing or out of date.

    Args:
        settings: See `Settings`.
        encoder: An embedding model; the settings' model is loaded when None.

    Returns:
        A ready engine; `engine.skipped` names what of the collection could not be read.

    Raises:
        ModelError: A model cannot be loaded; the message says the fix.
        IndexProblemError, CollectionError: See `rag.build.updates.open_index`.
    """
    try:
        if encoder is None:
            encoder = load_encoder(settings.model, runtime=settings.encoder_backend)
        # A rebuild that cannot be written leaves the index saved before answering.
        index, update = open_index(settings, encoder, fallback=True)
        engine = Engine(
            index,
            encoder,
            method=settings.retriever,
            answerer=settings.answerer,
            runtime=settings.runtime,
            milvus=settings.milvus,
            skipped=update.skipped,
        )
        if settings.answerer == "reader":
            engine.load_models()  # fail now, not at the first question
    except ModelLoadError as e:
        raise ModelError(str(e)) from e
    return engine


def ask(question: str, *, engine: Engine | None = None, **options) -> Answer:
    """Ask a question of the default collection (or of a given engine).

    Args:
        question: The question.
        engine: An open engine; the default collection's is opened (once) when None.
        **options: Passed to `Engine.ask` (top_k, date_from, date_to, author, method).

    Returns:
        The answer.
    """
    return (engine or _default_engine()).ask(question, **options)


_DEFAULT: list[Engine] = []


def _default_engine() -> Engine:
    if not _DEFAULT:
        _DEFAULT.append(open_engine(Settings()))
    return _DEFAULT[0]
