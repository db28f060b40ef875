"""Text normalisation for search, slugs, titles, and word tokens with their offsets."""

from __future__ import annotations

import re
import unicodedata

# One character for one, so offsets in normalised text are offsets in the original.
_SEARCH_TABLE = str.maketrans(
    {
        "\u00a0": " ",
        "\u2007": " ",
        "\u202f": " ",
        "\u2009": " ",
        "\u200a": " ",
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u02bc": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u2033": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u2010": "-",
        "\u2011": "-",
        "\u2212": "-",
    }
)

_WORD = re.compile(r"\d+(?:[.,]\d+)*|[^\W_]+(?:['\-][^\W_]+)*", re.UNICODE)

STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "me",
        "more",
        "most",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
        "did",
        "does",
        "tell",
        "say",
        "said",
        "says",
        "whats",
        "what's",
        "who's",
        "whos",
        "get",
        "got",
        "also",
        "many",
        "much",
        "-",
    ]
)


def normalize(text: str) -> str:
    """Map typographic characters to plain ones, one for one, keeping every offset.

    Args:
        text: Text as written.

    Returns:
        A string of the same length with straight quotes, plain spaces and hyphens.
    """
    return text.translate(_SEARCH_TABLE)


def squash(text: str) -> str:
    """Collapse every run of Unicode whitespace (non-breaking spaces too) to one space."""
    return " ".join(text.split())


def slugify(text: str) -> str:
    """Make a stable, URL-safe id from a title.

    Args:
        text: A title.

    Returns:
        Lower-case ASCII words joined by hyphens, apostrophes dropped.
    """
    ascii_text = unicodedata.normalize("NFKD", normalize(text)).encode("ascii", "ignore").decode()
    ascii_text = ascii_text.replace("'", "").lower()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-") or "article"


def fold(word: str) -> str:
    """Fold a word for matching: lower case, no accents, no possessive, no apostrophes,
    no thousands separators."""
    word = unicodedata.normalize("NFKD", normalize(word).casefold())
    if word.endswith("'s"):
        word = word[:-2]
    if word[:1].isdigit():
        word = word.replace(",", "")
    return "".join(c for c in word if not unicodedata.combining(c) and c != "'")


def words(text: str) -> list[tuple[str, int, int]]:
    """Split text into words with their offsets; hyphenated and apostrophe words stay whole.

    Args:
        text: Any text.

    Returns:
        (word as written, start, end) for every word.
    """
    return [(m.group(), m.start(), m.end()) for m in _WORD.finditer(normalize(text))]


def _stemmer():
    try:
        import Stemmer
    except ImportError:  # stemming is an improvement, not a requirement
        return lambda word: word
    return Stemmer.Stemmer("english").stemWord


stem = _stemmer()


def terms(text: str, *, keep_stopwords: bool = False, stemmed: bool = True) -> list[str]:
    """Turn text into folded search terms.

    A hyphenated word gives its parts and its joined form, so `al-Hashimi` matches `Hashimi`
    and `alhashimi`.

    Args:
        text: Any text.
        keep_stopwords: Keep function words (for phrase-like matching).
        stemmed: Reduce each term to its stem (`attacks` and `attacked` to `attack`).

    Returns:
        Folded terms in text order.
    """
    out: list[str] = []
    for word, _, _ in words(text):
        folded = fold(word)
        parts = [p for p in folded.split("-") if p]
        found = ["".join(parts)] if len(parts) > 1 else []
        found += [p for p in parts if keep_stopwords or p not in STOPWORDS]
        out += [stem(t) for t in found] if stemmed else found
    return out
