"""Text normalisation for search, slugs, titles, and word tokens with their offsets."""

from __future__ import annotations

import functools
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


# Irregular English verb forms that a suffix stemmer cannot join to their base form.
_IRREGULAR = {
    form: base
    for base, forms in {
        "shoot": "shot",
        "take": "took taken",
        "give": "gave given",
        "go": "went gone",
        "come": "came",
        "see": "saw seen",
        "say": "said",
        "tell": "told",
        "make": "made",
        "find": "found",
        "leave": "left",
        "lead": "led",
        "fight": "fought",
        "buy": "bought",
        "bring": "brought",
        "think": "thought",
        "teach": "taught",
        "catch": "caught",
        "seek": "sought",
        "hold": "held",
        "keep": "kept",
        "send": "sent",
        "spend": "spent",
        "build": "built",
        "lose": "lost",
        "pay": "paid",
        "meet": "met",
        "flee": "fled",
        "hide": "hid hidden",
        "write": "wrote written",
        "rise": "rose risen",
        "drive": "drove driven",
        "know": "knew known",
        "grow": "grew grown",
        "throw": "threw thrown",
        "fly": "flew flown",
        "draw": "drew drawn",
        "begin": "began begun",
        "run": "ran",
        "win": "won",
        "sell": "sold",
        "stand": "stood",
        "understand": "understood",
        "fall": "fell fallen",
        "strike": "struck",
        "steal": "stole stolen",
        "speak": "spoke spoken",
        "break": "broke broken",
        "choose": "chose chosen",
        "freeze": "froze frozen",
        "wake": "woke woken",
        "bear": "bore born borne",
        "swear": "swore sworn",
        "tear": "tore torn",
        "wear": "wore worn",
        "feel": "felt",
        "hear": "heard",
        "sit": "sat",
        "get": "got gotten",
        "eat": "ate eaten",
        "forget": "forgot forgotten",
        "hit": "hit",
        "kill": "slain slew",
        "die": "dead",
        "have": "had",
        "do": "did done",
        "be": "was were been",
    }.items()
    for form in forms.split()
}


def _stemmer():
    try:
        import Stemmer
    except ImportError:  # stemming is an improvement, not a requirement
        return lambda word: word
    return Stemmer.Stemmer("english").stemWord


stem = _stemmer()


def term_groups(text: str, *, keep_stopwords: bool = False) -> list[list[str]]:
    """Turn text into folded, stemmed search terms, grouped by the word they come from.

    A hyphenated word gives its joined form and its parts, so `al-Hashimi` matches `Hashimi`
    and `alhashimi`; the group lets a scorer count such a word once.

    Args:
        text: Any text.
        keep_stopwords: Keep function words.

    Returns:
        One non-empty list of terms per word, in text order.
    """
    return [list(group) for group in _term_groups(text, keep_stopwords)]


@functools.lru_cache(maxsize=1 << 16)
def _term_groups(text: str, keep_stopwords: bool) -> tuple[tuple[str, ...], ...]:
    # Cached: the same candidate sentences come back question after question.
    groups: list[tuple[str, ...]] = []
    for word, _, _ in words(text):
        parts = [p for p in fold(word).split("-") if p]
        found = ["".join(parts)] if len(parts) > 1 else []
        # In a hyphenated name the particle ("al" of al-Hashimi) would match every other name.
        found += [
            p for p in parts if (keep_stopwords or p not in STOPWORDS) and (len(p) > 2 or not found)
        ]
        found = [stem(_IRREGULAR.get(t, t)) for t in found]
        if found:
            groups.append(tuple(found))
    return tuple(groups)


def terms(text: str, *, keep_stopwords: bool = False) -> list[str]:
    """Turn text into folded, stemmed search terms (see `term_groups`).

    Args:
        text: Any text.
        keep_stopwords: Keep function words.

    Returns:
        Terms in text order.
    """
    return [t for group in _term_groups(text, keep_stopwords) for t in group]
