"""Candidate short answers inside a sentence: dates, numbers, names and places."""

from __future__ import annotations

import re
from collections.abc import Iterable

from rag.text import normalize, terms, words

_MONTH = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
    r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"
)
_DAY = r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
_NUMBER_WORD = (
    r"(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|"
    r"fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|"
    r"eighty|ninety|hundred|a hundred|a dozen|dozens|hundreds|thousands|a thousand|"
    r"several|half|a third|a quarter|once|twice|none|many times)"
)
_ORDINAL = (
    r"(?:\d{1,2}(?:st|nd|rd|th)|first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|"
    r"tenth|eleventh|twelfth|thirteenth|fourteenth|fifteenth|sixteenth|seventeenth|"
    r"eighteenth|nineteenth|twentieth|twenty-first)"
)
_QUANTIFIER = (
    r"(?:(?:about|around|over|more than|less than|fewer than|at least|up to|nearly|almost|"
    r"some|roughly|approximately|an estimated|as many as|just over|just under)\s+)?"
)

_MONTH_RE = re.compile(_MONTH)
# The doer in a passive clause: "shot dead by two gunmen on a motorcycle".
_AGENT = re.compile(
    r"\b(?:[a-z]+ed|shot|killed|led|held|run|made|taken|seen|done|founded|written) (?:\w+ )?by "
    r"((?:(?:the|a|an|two|three|four|five|several|some|its|his|their) )?"
    r"(?!(?:the|a|an)\b)[\w'-]+(?: (?!(?:on|in|at|with|as|after|for|from|to|during|while|and)\b)[\w'-]+){0,3})"
)

PATTERNS: dict[str, re.Pattern[str]] = {
    "date": re.compile(
        rf"\b(?:{_DAY},?\s+)?(?:\d{{1,2}}\s+{_MONTH}(?:,?\s+\d{{4}})?|{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?"
        rf"|(?:early|late|mid)[- ]?(?:{_MONTH}|\d{{4}})(?:\s+\d{{4}})?|{_MONTH}\s+\d{{4}}"
        rf"|(?i:in|since|until|by|of|from|during)\s+(?:{_MONTH}|\d{{4}})(?:\s+\d{{4}})?"
        rf"|(?:last|this|next|on)\s+(?:{_DAY}|week|month|year|weekend|night|morning)"
        rf"|{_DAY}|(?:1\d|20)\d{{2}}(?:s|\s?[–-]\s?(?:1\d|20)?\d{{2}})?"
        rf"|(?:the\s+)?(?i:{_ORDINAL})\s+century|(?:yesterday|today|last year|this year)"
        r"|(?:around\s+|about\s+|~)?(?:\d[\d,.]*|a)\s+(?:(?:million|billion|thousand)\s+)?years\s+ago"
        r"|~?\d[\d,]*\s*(?:BP|BCE?|AD|CE)|\d{1,2}:\d{2}(?:\s?[ap]\.?m\.?)?)\b"
    ),
    "number": re.compile(
        rf"(?<![\w$.,])(?i:{_QUANTIFIER})(?:[$€£¥]\s?)?(?:\d{{1,3}}(?:,\d{{3}})+|\d+(?:\.\d+)?|(?i:{_NUMBER_WORD}))\b"
        r"(?:\s*(?:per cent|percent|%|million|billion|thousand|hundred))?"
        r"(?:\s+(?!(?:was|has|is|as|its|his|this|thus|us|does|yes|less|plus)\b)[a-z]+s\b)?"
    ),
    # "for over a year", "two weeks", "until 1990": lengths of time answer "how long".
    "duration": re.compile(
        rf"\b(?i:{_QUANTIFIER})(?:an?|\d+(?:\.\d+)?|(?i:{_NUMBER_WORD}))(?:\s+(?:and a half|more))?"
        r"\s+(?:years?|months?|weeks?|days?|hours?|minutes?|decades?|centuries)\b"
        rf"|\b(?:well\s+)?(?:until|till|into|through)\s+(?:the\s+)?(?:(?i:{_ORDINAL})\s+century"
        r"|(?:1\d|20)\d{2}s?)\b"
    ),
}

_CAPITALISED = re.compile(
    r"\b(?:(?:al|el|bin|ibn|abu|de|van|von|der)-?\s?)?[A-Z][\w'\-]*(?:"
    r"\s+(?:(?:al|el|bin|ibn|Abu|de|van|von|der|of|the)[\s-])?[A-Z][\w'\-]*)*"
)
_PLACE_CUE = re.compile(
    r"\b(?:in|at|from|near|to|outside|inside|across|throughout|into|of)\s+(?:(?:the|northern|southern|eastern|western|north|south|east|west|central|and)\s+)*$"
)
# A date with the preposition before it, which the short answer leaves out ("in 1891").
_DATE_AFTER_PREPOSITION = re.compile(
    rf"((?i:in|since|until|by|of|from|during|on)\s+)?(?:{PATTERNS['date'].pattern})"
)
# Words that put a place after them more surely than "of" or "to" do ("the killing of X").
_STRICT_PLACE_CUE = re.compile(
    r"\b(?:in|near|inside|throughout|across)\s+(?:(?:northern|southern|eastern|western|"
    r"central)\s+)?$"
)
# A name that is a place by what it names: "Baghdad University", "Ain al-Asad Air Base".
_INSTITUTION = re.compile(
    r"\b(?:University|College|School|Airport|Base|Camp|Prison|Hospital|Mosque|Palace|Square|"
    r"Province|Governorate|City|Island|Mountains?|River|Valley|Desert|Sea|Strait|Gulf|Zone)\b"
)
_LEADING = {
    "The",
    "A",
    "An",
    "In",
    "On",
    "At",
    "But",
    "And",
    "According",
    "However",
    "This",
    "That",
    "These",
    "Those",
    "It",
    "He",
    "She",
    "They",
    "We",
    "Its",
    "His",
    "Her",
    "Their",
    "Since",
    "After",
    "Before",
    "As",
    "If",
    "When",
    "While",
    "Many",
    "Some",
    "Most",
    "Several",
    "Last",
    "About",
    "Around",
    "Over",
    "Nearly",
    "More",
    "Almost",
    "Only",
    "Both",
    "Such",
    "Other",
    "One",
    "Two",
    "Three",
    "Four",
    "Five",
    "Six",
    "Seven",
    "Eight",
    "Nine",
    "Ten",
}


def _names(sentence: str) -> list[tuple[int, int]]:
    spans = []
    for match in _CAPITALISED.finditer(normalize(sentence)):
        start, end = match.start(), match.end()
        words = sentence[start:end].split()
        while words and words[0] in _LEADING:
            start += len(words[0]) + 1
            words = words[1:]
        if words:
            spans.append((start, end))
    return spans


def acronym_of(question: str) -> str | None:
    """The acronym a question asks about (`IRGC` in "what does IRGC stand for"), if any."""
    found = re.findall(r"\b[A-Za-z]{2,6}\b", question)
    upper = [w for w in found if w.isupper()]
    if upper:
        return upper[0]
    if re.search(r"(?i)\b(stands?|stood) for\b|\bacronym\b|\babbreviation\b", question):
        words = [
            w
            for w in found
            if w.lower()
            not in {
                "what",
                "does",
                "do",
                "did",
                "stand",
                "stands",
                "for",
                "the",
                "is",
                "an",
                "acronym",
                "of",
            }
        ]
        return words[0].upper() if words else None
    return None


def expansions(sentence: str, acronym: str) -> list[tuple[int, int]]:
    """Where a sentence spells out an acronym: "the Islamic Revolutionary Guard Corps (IRGC)".

    Args:
        sentence: The sentence as written.
        acronym: The acronym, in capitals.

    Returns:
        (start, end) of each spelled-out name whose initials give the acronym.
    """
    text = normalize(sentence)
    spans = []
    for match in re.finditer(
        rf"\(\s*(?:[^()]*?\b)?{re.escape(acronym)}\s*\)|\s[-–—]\s*{re.escape(acronym)}\b", text
    ):
        words = list(re.finditer(r"[\w'-]+", text[: match.start()]))
        for size in range(len(acronym), len(acronym) + 4):
            if size > len(words):
                break
            chosen = words[-size:]
            initials = "".join(w.group()[0] for w in chosen if w.group()[0].isupper())
            if initials.upper() == acronym.upper() and chosen[0].group()[0].isupper():
                spans.append((chosen[0].start(), chosen[-1].end()))
                break
    return spans


# What a question can ask for more precisely than its kind: a day, a month or a year for a
# date, an amount of money for a number (see `rag.answer.question.answer_detail`). Searched in the
# span and the few characters before it, where a currency sign may stand ("US$5 million").
DETAILS: dict[str, re.Pattern[str]] = {
    "day": re.compile(
        rf"\b(?:{_DAY}|yesterday|today|tonight)\b|\b{_MONTH}\s+\d{{1,2}}\b"
        rf"|\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}(?![a-z])"
    ),
    "month": re.compile(rf"\b{_MONTH}(?![a-z])"),
    "year": re.compile(r"\b(?:1\d|20)\d{2}s?\b|\bcentury\b|\byears ago\b|\b(?:BP|BCE?|AD|CE)\b"),
    "money": re.compile(
        r"[$€£¥]|(?i:\b(?:dollars?|euros?|pounds|yen|yuan|rupees?|dinars?|rials?|riyals?|"
        r"francs?|lira|rubles?|roubles?)\b)"
    ),
}
# Events that a sentence must speak of to answer a question about them (see
# `rag.answer.question.event_asked`): "When was she born?" is not answered by any date.
EVENTS: dict[str, re.Pattern[str]] = {
    "birth or death": re.compile(
        r"(?i)\b(?:born|birth\w*|n[ée]e|died|dies|death|passed away)\b"
        r"|\(\s*(?:b\.\s*|c\.\s*)?\d{3,4}\s*[–-]|[–-]\s*\d{3,4}\s*\)"
    ),
    "founding": re.compile(
        r"(?i)\b(?:found(?:ed|er|ers|ing)|co-?found\w*|establish\w*|formed|formation|created|"
        r"creation|set up|incorporated|chartered)\b"
    ),
}


def mentions_event(sentence: str, event: str) -> bool:
    """Whether a sentence speaks of an event of `EVENTS` ("was born in", "founded by")."""
    return bool(EVENTS[event].search(sentence))


def names_near(sentence: str, named: set[str], *, near: int = 8) -> list[tuple[int, int]]:
    """Capitalised names within `near` words of what a question asks the names of: "the
    gunmen, Ali Saleh and ..." gives names for "the gunmen"; a name ten words away does not.

    Args:
        sentence: The sentence as written.
        named: The terms of what is named (see `rag.answer.question.names_asked`).
        near: How many words away a name may stand.

    Returns:
        (start, end) offsets of the names, in sentence order.
    """
    tokens = words(sentence)
    where = [i for i, (word, _, _) in enumerate(tokens) if named & set(terms(word))]
    found = []
    for start, end in _names(sentence):
        index = next(i for i, (_, _, word_end) in enumerate(tokens) if word_end > start)
        if any(abs(index - i) <= near for i in where):
            found.append((start, end))
    return found


def place_names(texts: Iterable[str]) -> frozenset[str]:
    """The names that some text uses as a place ("in Iran", "near Kirkuk"), so that a bare
    "Iran possesses..." is known to name a place too.

    Args:
        texts: Texts of the collection.

    Returns:
        The place names, as written.
    """
    found = set()
    for text in texts:
        plain = normalize(text)
        for start, end in _names(text):
            name = plain[start:end]
            if _STRICT_PLACE_CUE.search(plain[max(0, start - 40) : start]) and not re.fullmatch(
                rf"{_MONTH}|{_DAY}", name
            ):
                found.add(name)
    return frozenset(found)


def candidates(
    sentence: str,
    kind: str,
    *,
    acronym: str | None = None,
    places: frozenset[str] = frozenset(),
    detail: str | None = None,
    named: set[str] = frozenset(),
) -> list[tuple[int, int]]:
    """Spans in a sentence that could be the short answer to a question of a kind.

    Args:
        sentence: The sentence as written.
        kind: `person`, `names`, `place`, `date`, `number` or `definition` (other kinds have
            no short answer).
        acronym: For `definition`, the acronym asked about.
        places: Names known to be places (see `place_names`).
        detail: What the span must be more precisely (see `DETAILS`): a `day`, `month` or
            `year` for a date, `money` for a number; anything of the kind when None.
        named: For `names`, the terms of what the question asks the names of.

    Returns:
        (start, end) offsets in the sentence, in sentence order.
    """
    if kind == "definition":
        return expansions(sentence, acronym) if acronym else []
    if kind == "names":
        return names_near(sentence, named)
    text = normalize(sentence)
    dates = [
        (m.start() + len(m.group(1) or ""), m.end()) for m in _DATE_AFTER_PREPOSITION.finditer(text)
    ]
    if kind == "date":
        return _detailed(dates, text, detail)
    if kind == "number":
        numbers = [
            (m.start(), m.end())
            for m in PATTERNS["number"].finditer(text)
            # "2000 guests" counts guests even though 2000 could be a year.
            if " " in m.group().strip()
            or not any(s <= m.start() < e or m.start() <= s < m.end() for s, e in dates)
        ]
        durations = [(m.start(), m.end()) for m in PATTERNS["duration"].finditer(text)]
        return _detailed(sorted(set(numbers + durations)), text, detail)
    if kind == "person":
        names = [
            s
            for s in _names(sentence)
            if not any(a <= s[0] < b for a, b in dates)
            and not _MONTH_RE.fullmatch(text[s[0] : s[1]])
            and not re.search(r"-[a-z]", text[s[0] : s[1]])
        ]
        agents = [(m.start(1), m.end(1)) for m in _AGENT.finditer(text)]
        return sorted(set(names + agents))
    if kind == "place":
        return [
            s
            for s in _names(sentence)
            if _PLACE_CUE.search(text[: s[0]])
            or _INSTITUTION.search(text[s[0] : s[1]])
            or text[s[0] : s[1]] in places
        ]
    return []


def _detailed(spans: list[tuple[int, int]], text: str, detail: str | None) -> list[tuple[int, int]]:
    if not detail:
        return spans
    return [(a, b) for a, b in spans if DETAILS[detail].search(text[max(0, a - 3) : b])]


_CAUSE = re.compile(
    r"(?i)\b(because|due to|as a result|in order to|so as to|so that|blamed|in response|"
    r"in retaliation|aimed at|to (?:avenge|prevent|deter|stop)|thanks to|for \w+ing|reasons?|"
    r"caused|led to|sparked|triggered|fear of|out of|in a bid to|"
    r"(?:seeks?|seeking|aims?|aiming|wants?|plans?|hopes?|intends?|tries|trying) to)\b"
)
# Words that often introduce a cause but as often only a time or a belief.
_WEAK_CAUSE = re.compile(r"(?i)\b(since|after|following|amid|believed|feared)\b")


def cause_strength(sentence: str) -> float:
    """How surely a sentence states a cause or purpose: 1 for "because", "in order to" and
    the like, 0.5 for words that may only give a time ("after", "following"), else 0."""
    text = normalize(sentence)
    if _CAUSE.search(text):
        return 1.0
    return 0.5 if _WEAK_CAUSE.search(text) else 0.0
