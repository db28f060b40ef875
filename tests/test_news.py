"""The news data set: checked before use, answer sentences chosen with care, weeks pooled."""

from __future__ import annotations

import gzip
import random

import pytest

from eval.news import (
    ARTICLES_FILE,
    NEWS_DIR,
    QA_FILE,
    NewsData,
    NewsDataError,
    answer_sentences,
    load_news,
    news_pairs,
    week_set,
)


def _question(qid, week, found, answers, collection, *, choice=None, split="train"):
    return {
        "id": qid,
        "question": f"question {qid}",
        "answers": answers,
        "articles": [],
        "answer_found": found,
        "needs_choices": False,
        "correct_choice": choice or (answers[0] if answers else None),
        "collection": collection,
        "week": week,
        "split": split,
    }


ARTICLES = {
    "a": {"id": "a", "title": "Storm", "text": "Hurricane Helene hit Florida on Thursday."},
    "b": {"id": "b", "title": "Zoo", "text": "The zoo in Washington got two pandas from China."},
}


def test_missing_and_altered_data_are_errors_that_name_the_file(tmp_path):
    with pytest.raises(NewsDataError, match=rf"{ARTICLES_FILE} is missing"):
        load_news(tmp_path)
    for name in (ARTICLES_FILE, QA_FILE):
        with gzip.open(tmp_path / name, "wt") as f:
            f.write('{"id": "x"}\n')
    with pytest.raises(NewsDataError, match=rf"{ARTICLES_FILE} is altered or truncated"):
        load_news(tmp_path)


def test_an_answer_sentence_holds_the_answer_and_speaks_of_the_question():
    question = "Which storm hit Florida this week, forcing evacuations?"
    sentences = [
        "Helene was also the name of a ship.",  # the answer, but nothing of the question
        "Officials said the storm, Helene, hit Florida's coast overnight.",
        "Evacuations began across the state.",
    ]
    assert answer_sentences(question, ["Helene"], sentences) == [(1, (26, 32))]
    # A number is found as a whole word only: "2" is not in "2024".
    assert (
        answer_sentences("How many pandas came to the zoo?", ["2"], ["In 2024 pandas came."]) == []
    )


def test_a_week_pools_its_articles_and_keeps_only_true_refusals():
    data = NewsData(
        ARTICLES,
        (
            _question("q1", "w1", "exact", ["Helene"], ["a"]),
            _question("q2", "w1", "none", [], ["a"], choice="China"),  # answered in b's text
            _question("q3", "w1", "none", [], ["b"], choice="Japan"),
        ),
    )
    articles, qas = week_set(data, "w1", list(data.questions))
    assert {a["id"] for a in articles} == {"a", "b"}
    assert [(q["id"], q["answers"], q["articles"]) for q in qas] == [
        ("q1", ["Helene"], ["Storm"]),
        ("q3", [], []),
    ]


def test_news_pairs_label_answer_sentences_and_every_sentence_of_a_refusal():
    data = NewsData(
        {
            "a": {
                "id": "a",
                "title": "Storm",
                "text": "Hurricane Helene hit Florida on Thursday. Schools closed. Rain fell.",
            },
        },
        (
            {
                **_question("q1", "w1", "exact", ["Helene"], ["a"]),
                "question": "Which hurricane hit Florida?",
            },
            {
                **_question("q2", "w1", "none", [], ["a"], choice="Milton"),
                "question": "Which storm hit Texas?",
            },
        ),
    )
    pairs, used = news_pairs(data, "train", random.Random(0), hard=2, far=0)
    positives = [p for p in pairs if p.label]
    assert [(p.question, p.sentence[p.answer[0] : p.answer[1]]) for p in positives] == [
        ("Which hurricane hit Florida?", "Helene")
    ]
    assert {p.question for p in pairs if not p.label} == {
        "Which hurricane hit Florida?",
        "Which storm hit Texas?",
    }
    assert used == {"answerable": 1, "unanswerable": 1}


@pytest.mark.skipif(not (NEWS_DIR / QA_FILE).exists(), reason="the news data set is not here")
def test_the_shared_news_data_loads_and_checks():
    data = load_news()
    assert len(data.questions) == 3432 and len(data.articles) == 21485


def test_a_selector_candidate_answers_only_where_it_speaks_of_the_question():
    from eval.train_selector import news_answers_in

    question = "Which company is the latest tech giant to announce layoffs?"
    answers = ["Amazon"]
    before = "Tech companies have cut thousands of jobs."
    assert news_answers_in(
        question, answers, "Amazon is the latest tech giant to announce layoffs.", before
    )
    # The answer string alone, in a sentence about something else.
    assert not news_answers_in(question, answers, "Amazon opened a store in Ohio.", "")
    # The question's words without the answer.
    assert not news_answers_in(question, answers, "A tech giant announced layoffs.", before)
    # The answer inside a longer word is not the answer.
    assert not news_answers_in(question, answers, "Amazonian tech giant announces layoffs.", before)


def test_the_dev_threshold_refuses_the_aimed_share_of_answerable_questions():
    from eval.calibrate import figures, threshold_at

    rows = [
        {"answerable": True, "refusal": p, "hit": p > 0.3, "best": p}
        for p in (0.1, 0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)
    ] + [{"answerable": False, "refusal": p, "hit": False, "best": p} for p in (0.05, 0.3, 0.6)]
    # 10% of ten answerable questions: the one under 0.2 is refused, no more.
    threshold = threshold_at(rows, share=0.1)
    assert threshold == 0.2
    got = figures(rows, threshold)
    assert got["false_refusal_rate"] == 0.1
    assert got["abstention_recall"] == round(1 / 3, 4)
    assert got["answer_hit@1"] == 0.8


def test_rag_eval_adds_the_news_row_only_once_its_weeks_are_indexed(tmp_path, monkeypatch):
    from eval.news import NEWS_DIR, indexed, weeks

    assert not indexed("test", data_dir=tmp_path)  # no data set here
    if not (NEWS_DIR / "qa.jsonl.gz").is_file():
        pytest.skip("the realtimeqa-news data set is not in ../shared/datasets")
    monkeypatch.setenv("RAG_NEWS_INDEX", str(tmp_path))
    assert not indexed("test", every=2)
    found = [week for week, _, _ in weeks(load_news(), "test", every=2)]
    for week in found[:-1]:
        (tmp_path / "indexes" / "test" / week).mkdir(parents=True)
        (tmp_path / "indexes" / "test" / week / "CURRENT").write_text("gen-1", "utf-8")
    assert not indexed("test", every=2)  # one week is still missing
    (tmp_path / "indexes" / "test" / found[-1]).mkdir(parents=True)
    (tmp_path / "indexes" / "test" / found[-1] / "CURRENT").write_text("gen-1", "utf-8")
    assert indexed("test", every=2)


def test_the_answered_band_starts_where_its_answers_are_right_often_enough():
    from eval.calibrate import MIN_BAND, answered_edge, band_figures

    # From the top: twelve right, then wrong ones; the refused question plays no part.
    rows = [
        {"answerable": True, "refusal": 0.9, "best": 0.9 - i / 100, "hit": i < 12}
        for i in range(20)
    ] + [{"answerable": False, "refusal": 0.01, "best": 0.95, "hit": False}]
    edge = answered_edge(rows, threshold=0.1)
    # 12 right of the first 16 is 0.75: the edge is the 16th best sentence.
    assert MIN_BAND <= 16 and edge == rows[15]["best"]
    bands = band_figures(rows, 0.1, edge)
    assert bands["answered"] == {"questions": 16, "right": 0.75}
    assert bands["probably"] == {"questions": 4, "right": 0.0}
    assert bands["not sure"] == {"questions": 1, "right": 1.0}
    # Never that often right: every answer is told as probable.
    assert answered_edge([{**r, "hit": False} for r in rows], threshold=0.1) == 1.0
