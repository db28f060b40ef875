"""Pure text helpers: terms, sentence splitting, question kinds, answer-span candidates."""

from __future__ import annotations

import pytest

from rag.answer.question import (
    analyse,
    answer_detail,
    check_question,
    event_asked,
    names_asked,
    question_kind,
)
from rag.errors import QuestionError
from rag.ingest.feed import split_caption
from rag.patterns import (
    acronym_of,
    candidates,
    cause_strength,
    expansions,
    mentions_event,
    names_near,
    place_names,
)
from rag.sentences import split_sentences
from rag.text import normalize, slugify, term_groups, terms


def test_normalize_keeps_offsets():
    text = "Kita\u2019ib \u201cout to get him\u201d \u2014 north\u00a0Baghdad"
    assert len(normalize(text)) == len(text)
    assert normalize(text) == 'Kita\'ib "out to get him" - north Baghdad'


def test_terms_fold_quotes_possessives_hyphens_and_irregular_verbs():
    assert terms("Kita’ib Hezbollah’s") == terms("Kita'ib Hezbollah")
    assert "hashimi" in terms("al-Hashimi") and "alhashimi" in terms("al-Hashimi")
    assert "al" not in terms("al-Hashimi")
    assert terms("shot") == terms("shooting") == ["shoot"]
    assert terms("1,669 attacks") == ["1669", "attack"]
    assert term_groups("Who shot al-Hashimi?") == [["shoot"], ["alhashimi", "hashimi"]]


def test_slugify():
    assert slugify("Iraq’s leading expert in\u00a0Baghdad") == "iraqs-leading-expert-in-baghdad"
    assert slugify("News you may have missed #905") == "news-you-may-have-missed-905"


def test_sentences_keep_abbreviations_and_quotes_whole():
    text = "The U.S. army left at 5 p.m. on Monday. He said: “We won.” Then he left."
    assert [text[s:e] for s, e in split_sentences(text)] == [
        "The U.S. army left at 5 p.m. on Monday.",
        "He said: “We won.”",
        "Then he left.",
    ]
    assert split_sentences("One. Two.", offset=10) == [(10, 14), (15, 19)]


@pytest.mark.parametrize(
    ("paragraph", "caption"),
    [
        ("Hisham al-HashimiA leading Iraqi expert", "Hisham al-Hashimi"),
        ("ISIS IraqIraq is currently witnessing", "ISIS Iraq"),
        ("Twitter IAFrench forces kill", "Twitter IA"),
        ("The missiles that targeted American troops", None),
        ("McDonald's said on Monday, that", None),
    ],
)
def test_split_caption(paragraph, caption):
    found, rest = split_caption(paragraph)
    assert found == caption
    assert (found or "") + rest == paragraph


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("Who shot Hisham al-Hashimi?", "person"),
        ("when was soleimani killed", "date"),
        ("How many ISIS fighters returned?", "number"),
        ("Where did Zam live?", "place"),
        ("Why was Zam arrested?", "why"),
        ("Who wrote the article about the explosions?", "metadata"),
        ("When was the article on the depot explosions published?", "metadata"),
        ("IRGC stands for", "definition"),
        ("What does the UN report say?", "factoid"),
        ("What is Kadhimi's date of birth?", "date"),
        ("What are the names of the two gunmen?", "names"),
        ("What is the name of the process?", "factoid"),
    ],
)
def test_question_kind(question, kind):
    assert question_kind(question) == kind


def test_what_a_question_asks_for_more_precisely():
    assert answer_detail("On what date did Iran announce it?", "date") == "day"
    assert answer_detail("what day of the week was he shot", "date") == "day"
    assert answer_detail("In which year did the PMF form?", "date") == "year"
    assert answer_detail("When did the PMF form?", "date") is None
    assert answer_detail("How big is the US reward for him?", "number") == "money"
    assert answer_detail("How big is the PMF?", "number") is None
    assert event_asked("When was al-Hashimi born?", "date") == "birth or death"
    assert event_asked("who founded kataib hezbollah", "person") == "founding"
    assert event_asked("When was al-Hashimi shot?", "date") is None
    assert names_asked("what are the names of the gunmen who shot him") == {"gunmen"}
    assert names_asked("What were the names of Tesla's new partners?") == {"partner"}


def test_names_near_what_is_named():
    sentence = "The gunmen, Ali Saleh and Omar Kareem, fled the scene in north Baghdad."
    assert [sentence[s:e] for s, e in names_near(sentence, {"gunmen"})] == [
        "Ali Saleh",
        "Omar Kareem",
    ]
    far = "Two gunmen on a motorcycle shot him as he was leaving his home in north Baghdad."
    assert names_near(far, {"gunmen"}) == []


@pytest.mark.parametrize("question", ["", "   ", "?!", "what is the", "x" * 1001])
def test_check_question_refuses(question):
    with pytest.raises(QuestionError):
        check_question(question)


def _spans(sentence, kind):
    return [sentence[s:e] for s, e in candidates(sentence, kind)]


def test_span_candidates():
    sentence = (
        "The group announced on October 31, 2019, that about 1,000 fighters, 13 per cent more,"
        " had been killed by American troops in Syria."
    )
    assert _spans(sentence, "date") == ["October 31, 2019"]
    assert _spans(sentence, "number") == ["about 1,000 fighters", "13 per cent"]
    assert "American troops" in _spans(sentence, "person")
    assert _spans(sentence, "place") == ["Syria"]
    # A number word is a whole word, and a dollar sign belongs to the amount.
    assert _spans("ISIS is tenacious and offers up to $5 million, $2 each.", "number") == [
        "up to $5 million",
        "$2",
    ]
    assert cause_strength("He was jailed for urging protesters to act.") > 0
    assert cause_strength("The sky is blue.") == 0


def test_years_durations_and_places_by_name():
    assert _spans("In 1891 a Scottish chemist made it.", "date") == ["1891"]
    assert _spans("His son Jochi (1185–1226) was born.", "date") == ["1185–1226"]
    assert _spans("It was built in the 12th century.", "date") == ["the 12th century"]
    assert _spans("They were held for over a year.", "number") == ["over a year"]
    assert _spans("It lasted well into the nineteenth century.", "number") == [
        "well into the nineteenth century"
    ]
    assert _spans("On Monday, October 15, 2019, not this month.", "date") == [
        "Monday, October 15, 2019",
        "this month",
    ]
    # "On what date" wants a day, "in which year" a year.
    sentence = "Earlier this month, on October 15, and in May 2012."
    assert [sentence[s:e] for s, e in candidates(sentence, "date", detail="day")] == ["October 15"]
    assert [sentence[s:e] for s, e in candidates(sentence, "date", detail="year")] == ["May 2012"]
    sentence = "It offers $5 million, 2 million dollars and 40 fighters."
    assert [sentence[s:e] for s, e in candidates(sentence, "number", detail="money")] == [
        "$5 million",
        "2 million dollars",
    ]
    assert mentions_event("Sistani (1930–) was born in Mashhad.", "birth or death")
    assert mentions_event("The group was set up in 2003.", "founding")
    assert not mentions_event("He spoke on Sunday.", "birth or death")
    assert _spans("She was a Baghdad University-educated historian.", "place") == [
        "Baghdad University-educated"
    ]
    assert _spans("Cells operate in central and northern Iraq.", "place") == ["Iraq"]
    places = place_names(["Troops stayed in Iran in January.", "Talks began near Kirkuk."])
    assert places == {"Iran", "Kirkuk"}
    sentence = "Iran possesses the largest missile force."
    assert [sentence[s:e] for s, e in candidates(sentence, "place", places=places)] == ["Iran"]
    assert candidates(sentence, "place") == []


def test_cause_strength():
    assert cause_strength("He was released thanks to his father's status.") == 1.0
    assert cause_strength("ISIS seeks to rebuild its powerbase by freeing them.") == 1.0
    # "Following" and "after" may only say when.
    assert cause_strength("Following a brief detention in 2009, Zam fled Iran.") == 0.5
    assert cause_strength("Zam lives in Paris.") == 0.0


def test_acronyms():
    assert acronym_of("what does IRGC stand for") == "IRGC"
    assert acronym_of("isis stands for") == "ISIS"
    assert acronym_of("Who shot al-Hashimi?") is None
    sentence = "It became known as the Islamic State of Iraq and Syria (ISIS), then grew."
    assert [sentence[s:e] for s, e in expansions(sentence, "ISIS")] == [
        "Islamic State of Iraq and Syria"
    ]


def test_close_spellings_are_found_but_other_words_are_not():
    from rag.index.lexicon import Lexicon

    lexicon = Lexicon(
        ["Kita’ib Hezbollah fighters", "Qasem Soleimani was killed", "Popular forces"]
    )
    assert lexicon.resolve(terms("Kataib")[0]) == ("kitaib",)
    assert lexicon.resolve(terms("Soliemani")[0]) == ("soleimani",)
    assert lexicon.resolve(terms("population")[0]) == ()
    assert analyse("kataib hezbollah", lexicon).terms == ("kitaib", "hezbollah")


def test_a_paragraph_without_boundaries_is_cut_into_pieces_at_spaces():
    from rag.sentences import MAX_SENTENCE_CHARS

    text = " ".join(["word"] * 9000)  # 44,999 characters, no full stop
    spans = split_sentences(text, offset=10)
    assert all(0 < e - s <= MAX_SENTENCE_CHARS for s, e in spans)
    assert " ".join(text[s - 10 : e - 10] for s, e in spans) == text
    assert split_sentences("Short one. Another one.") == [(0, 10), (11, 23)]
