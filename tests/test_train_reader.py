"""Training data for the reader: answer sentences, hard negatives, held-out articles apart."""

from __future__ import annotations

import random

from eval.train_reader import HELD_OUT_ARTICLES, pairs_for, split_articles, squad_questions

CONTEXT = (
    "Normandy is a region in France. The Normans gave their name to it in the 10th century. "
    "Their leader was Rollo."
)
SQUAD = [
    {
        "title": "Normans",
        "paragraphs": [
            {
                "context": CONTEXT,
                "qas": [
                    {
                        "id": "a",
                        "question": "In what century did the Normans name Normandy?",
                        "answers": [
                            {"text": "10th century", "answer_start": CONTEXT.index("10th")}
                        ],
                        "is_impossible": False,
                    },
                    {
                        "id": "u",
                        "question": "Who was the Normans' first king?",
                        "answers": [],
                        "plausible_answers": [
                            {"text": "Rollo", "answer_start": CONTEXT.index("Rollo")}
                        ],
                        "is_impossible": True,
                    },
                ],
            },
            {"context": "Rollo was a Viking. He raided Paris.", "qas": []},
        ],
    }
]


def test_questions_find_their_answer_sentence_and_offsets():
    answerable, unanswerable = squad_questions(SQUAD)
    assert answerable.sentences[answerable.answer_sentence].startswith("The Normans gave")
    sentence = answerable.sentences[answerable.answer_sentence]
    start, end = answerable.answer
    assert sentence[start:end] == "10th century"
    assert unanswerable.answer_sentence is None
    assert unanswerable.sentences[unanswerable.plausible_sentence] == "Their leader was Rollo."
    assert unanswerable.others == ("Rollo was a Viking.", "He raided Paris.")


def test_pairs_hold_the_answer_and_the_hardest_non_answers():
    answerable, unanswerable = squad_questions(SQUAD)
    pairs = pairs_for(answerable, random.Random(0))
    assert [p.label for p in pairs] == [1, 0, 0, 0]
    assert pairs[0].context == "Normandy is a region in France."
    negatives = pairs_for(unanswerable, random.Random(0))
    assert all(p.label == 0 for p in negatives)
    # The sentence with the plausible answer is the first, hardest negative.
    assert negatives[0].sentence == "Their leader was Rollo."
    assert negatives[-1].sentence in answerable.others


def test_the_held_out_articles_are_never_trained_on():
    dev = [{"title": f"d{i}", "paragraphs": []} for i in range(10)]
    train, held = split_articles([{"title": "t", "paragraphs": []}], dev)
    assert len(held) == HELD_OUT_ARTICLES
    assert not {a["title"] for a in train} & {a["title"] for a in held}
