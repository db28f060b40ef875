"""Question answering over news articles with quoted, cited sentences."""

from rag.errors import CollectionError, IndexProblemError, ModelError, QuestionError, RagError
from rag.settings import Settings
from rag.types import Answer, AnswerSentence, Article, Chunk, Citation, Passage

__all__ = [
    "Answer",
    "AnswerSentence",
    "Article",
    "Chunk",
    "Citation",
    "CollectionError",
    "Engine",
    "IndexProblemError",
    "ModelError",
    "Passage",
    "QuestionError",
    "RagError",
    "Settings",
    "ask",
    "open_engine",
]


def __getattr__(name: str):
    # Loaded when first asked for, so that importing a question-time module (rag.engine)
    # does not load the build modules that opening a collection needs.
    if name == "Engine":
        from rag.engine import Engine

        return Engine
    if name in ("open_engine", "ask"):
        from rag import service

        return getattr(service, name)
    raise AttributeError(f"module 'rag' has no attribute {name!r}")
