"""Question checks and the kind of answer a question wants."""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass

from rag.errors import QuestionError
from rag.index.lexicon import Lexicon
from rag.patterns import acronym_of
from rag.text import STOPWORDS, fold, normalize, term_groups, terms, words

MAX_QUESTION_CHARS = 1000
# The most supporting passages one answer lists.
MAX_TOP_K = 50

KINDS = (
    "person",
    "names",
    "date",
    "number",
    "place",
    "why",
    "metadata",
    "definition",
    "factoid",
)
# Words that only say a question wants an acronym spelled out.
_DEFINITION_PHRASES = r"stands? for|stood for|acronym|abbreviation|short for|full name"
_DEFINITION = re.compile(
    rf"(?i)\b({_DEFINITION_PHRASES})\b"
    r"|\bwhat (?:is|are) (?:the )?(?-i:[A-Z]{2,6})\b|\bwhat does \w{2,6} mean\b|^\s*\w{2,6} meaning\b"
)

_DEFINITION_WORDS = re.compile(rf"(?i)\b({_DEFINITION_PHRASES}|mean|means)\b")

_RULES: tuple[tuple[str, str], ...] = (
    (
        "metadata",
        r"\b(who (wrote|authored|penned)|written by|author of|(whose|which) (article|story|post|piece)|byline|when was (the|this|that) (article|story|post|piece|report)|(date|day) of (the|this) (article|story|post|piece)|publish(ed|ing)? (date|on|when)|when (was|were) .* (published|posted|written))\b",
    ),
    (
        "why",
        r"\b(why|what (caused|led to|prompted|motivated)|for what reason|reason for|because of what)\b",
    ),
    (
        "number",
        r"\b(how (many|much|long|old|big|large)|what (number|percentage|proportion|share|amount|size)|number of)\b",
    ),
    (
        "date",
        r"\b(when|what (year|month|day|date|time|century|decade)|which (year|month|day|date|century|decade)"
        r"|since when|how long ago"
        r"|date of (birth|death)|birth ?date|birthday)\b",
    ),
    (
        "place",
        r"\b(where|what (country|city|town|region|province|place|area|location)|which (country|city|town|region|province|place|area|location)|whereabouts)\b",
    ),
    (
        "person",
        r"\b(who|whom|whose|what (man|woman|person|leader|official|spokesman|general|minister)|which (man|woman|person|leader|official|spokesman|general|minister)|name of the (man|woman|person|leader))\b",
    ),
)


def _subordinate_when(text: str, match: re.Match[str]) -> bool:
    # "What happens when the immune system fails?" asks what, not when.
    return match.group() == "when" and bool(
        re.search(r"\b(what|which|who|whom|how|where|why)\b", text[: match.start()])
    )


def check_question(question: str) -> str:
    """Refuse a question that cannot be searched for, with a message that says why.

    Args:
        question: What the reader typed.

    Returns:
        The question with its surrounding whitespace removed.

    Raises:
        QuestionError: Empty, over the length limit, with a control character, or with no
            word to search for.
    """
    question = question.strip() if isinstance(question, str) else ""
    if not question:
        raise QuestionError("The question is empty: type a question about the articles.")
    if len(question) > MAX_QUESTION_CHARS:
        raise QuestionError(
            f"The question is {len(question)} characters long; the limit is"
            f" {MAX_QUESTION_CHARS}. Ask something shorter."
        )
    control = next(
        (c for c in question if unicodedata.category(c) == "Cc" and c not in "\t\n\r"), None
    )
    if control is not None:
        raise QuestionError(
            f"The question holds a control character (U+{ord(control):04X}), which no text"
            " has: remove it and ask again."
        )
    found = words(question)
    if not found:
        raise QuestionError(
            "The question has no words, only punctuation or symbols: ask it in words."
        )
    if all(fold(w) in STOPWORDS for w, _, _ in found):
        raise QuestionError(
            "The question has only common words (like 'what is the'): add what it is about,"
            " such as a name, place or event."
        )
    return question


def question_kind(question: str) -> str:
    """Guess the kind of answer a question wants from its wording.

    Args:
        question: The question.

    Returns:
        One of `KINDS`; `factoid` when nothing more specific fits.
    """
    return _kind(question, normalize(question).casefold(), bool(names_asked(question)))


def _kind(question: str, text: str, names: bool) -> str:
    # `text` is the question normalised and case-folded; `names`: it asks for names.
    if names:
        return "names"
    if _DEFINITION.search(question) and acronym_of(question) and not re.search(_RULES[0][1], text):
        return "definition"
    best: tuple[int, str] | None = None
    for kind, pattern in _RULES:
        match = re.search(pattern, text)
        if match and kind == "metadata":
            return kind
        if match and kind == "date" and _subordinate_when(text, match):
            continue
        if match and (best is None or match.start() < best[0]):
            best = (match.start(), kind)
    return best[1] if best else "factoid"


# What a question asks for more precisely than its kind (see `rag.patterns.DETAILS`).
_DETAILS_ASKED: dict[str, tuple[tuple[str, str], ...]] = {
    "date": (
        ("day", r"\b(what|which) (exact )?(day|date)\b|\bday of the week\b"),
        ("month", r"\b(what|which) month\b"),
        ("year", r"\b(what|which) (year|century|decade)\b"),
    ),
    "number": (
        (
            "money",
            r"\bhow much money\b|\bhow (big|large|much) (is|was|are|were) (the |a |an |their |its "
            r"|his |her )?([\w-]+ )?(reward|bounty|budget|fine|ransom|prize|salary|wage|fee|price"
            r"|cost|debt|deficit|revenue|income|profit|loan|grant|donation|payment|compensation)s?\b"
            r"|\bhow much (does|did|do|will|would|is|was) .*\b(cost|pay|paid|earn|earned|spend"
            r"|spent|charge|charged|worth|raise|raised)\b",
        ),
    ),
}
# Events a question asks about that the answer's sentence must speak of (see
# `rag.patterns.EVENTS`).
_EVENTS_ASKED = (
    ("birth or death", r"\b(born|birth|birthday|birthdate|die|died|death)\b"),
    ("founding", r"\b(founded|founder|founders|founding|co-founded|established)\b"),
)


# "What are the names of the two French academics who...": the words up to the clause.
_NAMES_ASKED = re.compile(
    r"\bnames of (?:the |his |her |their |its )?((?:[\w'-]+ ){0,3}?[\w'-]+?)"
    r"(?= (?:who|that|which|in|of|from|at|on|did|do|was|is|were|are|has|have)\b| \w+ed\b|[?,.;]|$)"
)


def names_asked(question: str) -> set[str]:
    """The terms of what a question asks the names of ("the gunmen" in "What are the names
    of the gunmen who..."); empty when it does not ask for names.

    A singular "the name of the process" is left out: it is as often a common noun.
    """
    return _names(normalize(question).casefold())


def _names(text: str) -> set[str]:
    match = _NAMES_ASKED.search(text)
    return set(terms(match.group(1).split()[-1])) if match else set()


def search_words(question: str, kind: str) -> str:
    """The question without the words that only say what kind of answer it wants: "stand
    for" in "What does PMF stand for?" is not something the answer's sentence holds."""
    if kind != "definition":
        return question
    return _DEFINITION_WORDS.sub(" ", question)


def answer_detail(question: str, kind: str) -> str | None:
    """What a question of a kind asks for more precisely: `day` ("On what date..."),
    `month` or `year` for a date, `money` ("How much money...") for a number; else None."""
    return _detail(normalize(question).casefold(), kind)


def _detail(text: str, kind: str) -> str | None:
    asked = _DETAILS_ASKED.get(kind, ())
    return next((detail for detail, pattern in asked if re.search(pattern, text)), None)


def event_asked(question: str, kind: str) -> str | None:
    """The event a "when" or "who" question asks about, if it is one whose answer must speak
    of it: `birth or death` ("When was she born?") or `founding` ("Who founded it?").

    Other kinds are left out: "Where was she born?" can be answered by "a native of Lyon".
    """
    return _event(normalize(question).casefold(), kind)


def _event(text: str, kind: str) -> str | None:
    if kind not in ("date", "person"):
        return None
    return next((event for event, pattern in _EVENTS_ASKED if re.search(pattern, text)), None)


def counted_terms(question: str) -> set[str]:
    """The terms of what a "how many" question counts: `ballistic missiles` in "How many
    ballistic missiles did Iran fire?"; empty for other questions."""
    return _counted(normalize(question))


def _counted(normalized: str) -> set[str]:
    match = re.search(r"(?i)\b(?:how (?:many|much)|number of)\s+([\w' -]+)", normalized)
    if not match:
        return set()
    found: list[str] = []
    for word in match.group(1).split():
        if fold(word) in STOPWORDS or len(found) == 3:
            break
        found.append(word)
    return set(terms(" ".join(found)))


# Words that say a question is about an article itself rather than what it reports.
_ABOUT_ARTICLES = frozenset(
    terms("article story piece post report wrote written author publish published date when who")
)
Group = frozenset[str]


@dataclass(frozen=True)
class Query:
    """A question analysed once: every step of answering reads what it needs from here.

    Attributes:
        text: The question as typed, without surrounding whitespace.
        normalized: The text with quotes, dashes and spaces normalised (`rag.text.normalize`).
        kind: The kind of answer wanted (see `question_kind`).
        search_text: The words an answer's sentence may hold (see `search_words`).
        terms: The question's search terms, spelled as the collection spells them (BM25).
        groups: One entry per word of `search_text`: the collection's spellings of its terms
            and their weight, the rarest term's idf (see `analyse`).
        byline_field: For a question about an article itself, `author` or `date`.
        about_terms: The terms that name what such a question is about (not "article"...).
        event: The event a "when" or "who" question asks about (see `event_asked`).
        detail: What a date or number question asks for precisely (see `answer_detail`).
        acronym: The acronym a definition question asks about.
        counted: The terms of what a "how many" question counts.
        named: The terms of what a "names of" question names.
    """

    text: str
    normalized: str
    kind: str
    search_text: str
    terms: tuple[str, ...] = ()
    groups: tuple[tuple[Group, float], ...] = ()
    byline_field: str | None = None
    about_terms: frozenset[str] = frozenset()
    event: str | None = None
    detail: str | None = None
    acronym: str | None = None
    counted: frozenset[str] = frozenset()
    named: frozenset[str] = frozenset()


def analyse(question: str, lexicon: Lexicon) -> Query:
    """Check a question and work out, once, what it asks for and how the collection spells it.

    Args:
        question: What the reader typed.
        lexicon: The collection's terms (`Index.lexicon`), which its words are resolved to.

    Returns:
        The analysed question.

    Raises:
        QuestionError: See `check_question`.
    """
    text = check_question(question)
    normalized = normalize(text)
    folded = normalized.casefold()
    named = _names(folded)
    kind = _kind(text, folded, bool(named))
    search_text = search_words(text, kind)
    question_terms = terms(text)
    byline_field = None
    if kind == "metadata":
        byline_field = "date" if re.search(r"(?i)\b(when|date|day|published)\b", text) else "author"
        if re.search(r"(?i)\b(who|author|wrote|written)\b", text):
            byline_field = "author"
    return Query(
        text=text,
        normalized=normalized,
        kind=kind,
        search_text=search_text,
        terms=tuple(t for term in question_terms for t in lexicon.resolve(term)),
        groups=_groups(search_text, lexicon),
        byline_field=byline_field,
        about_terms=frozenset(question_terms) - _ABOUT_ARTICLES,
        event=_event(folded, kind),
        detail=_detail(folded, kind),
        acronym=acronym_of(text) if kind == "definition" else None,
        counted=frozenset(_counted(normalized)) if kind == "number" else frozenset(),
        named=frozenset(named) if kind == "names" else frozenset(),
    )


def _groups(search_text: str, lexicon: Lexicon) -> tuple[tuple[Group, float], ...]:
    # One entry per question word: the collection's spellings of its terms, weighted by the
    # rarest of them. A word the collection lacks (no close spelling either) keeps the weight
    # of the rarest term: a question about something the articles never mention should not
    # look covered.
    rarest = math.log(1 + (lexicon.documents + 0.5) / 0.5)
    groups: dict[Group, float] = {}
    for word_terms in term_groups(search_text):
        resolved = frozenset(t for term in word_terms for t in lexicon.resolve(term))
        if resolved:
            groups[resolved] = max(lexicon.idf(t) for t in resolved)
        else:
            groups[frozenset({"?" + word_terms[0]})] = rarest
    return tuple(groups.items())
