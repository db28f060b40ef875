"""Question answering over news articles with quoted, cited sentences."""

from rag.engine import Engine, ask
from rag.errors import CollectionError, IndexProblemError, QuestionError, RagError
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
    "Passage",
    "QuestionError",
    "RagError",
    "Settings",
    "ask",
]
