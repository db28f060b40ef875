"""Tests for eval.squad."""

import json
from pathlib import Path

import pytest

from eval.squad import convert, guess_kind, main, slugify, write_jsonl

XQUAD = Path("/work/shared/datasets/xquad-en/xquad.en.json")

TINY = {
    "version": "1.1",
    "data": [
        {
            "title": "Super_Bowl_50",
            "paragraphs": [
                {
                    "context": "The Denver Broncos won Super Bowl 50.",
                    "qas": [
                        {
                            "id": "q1",
                            "question": "Which team won Super Bowl 50?",
                            "answers": [
                                {"text": "Denver Broncos", "answer_start": 4},
                                {"text": "Denver Broncos", "answer_start": 4},
                                {"text": "The Denver Broncos", "answer_start": 0},
                            ],
                        }
                    ],
                },
                {
                    "context": "It was played on February 7, 2016.",
                    "qas": [
                        {
                            "id": "q2",
                            "question": "When was the game played?",
                            "answers": [{"text": "February 7, 2016", "answer_start": 17}],
                        }
                    ],
                },
            ],
        },
        {
            "title": "Sky_(United_Kingdom)",
            "paragraphs": [
                {
                    "context": "Sky has 11 million customers.",
                    "qas": [
                        {
                            "id": "q3",
                            "question": "How many customers does Sky have?",
                            "answers": [{"text": "11 million", "answer_start": 8}],
                        }
                    ],
                }
            ],
        },
    ],
}


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("Who founded McKinsey?", "person"),
        ("Whose army won?", "person"),
        ("To whom did he write?", "person"),
        ("When was the edict declared?", "date"),
        ("In what year did it open?", "date"),
        ("Which year was it?", "date"),
        ("What date was the game?", "date"),
        ("How many points were scored?", "number"),
        ("How much did it cost?", "number"),
        ("What percentage voted?", "number"),
        ("How long is the Rhine?", "number"),
        ("How old was Tesla?", "number"),
        ("Where is Warsaw?", "place"),
        ("In what country is Kenya?", "place"),
        ("What city hosted it?", "place"),
        ("Why did Luther write hymns?", "why"),
        ("What is oxygen?", "factoid"),
        ("WHEN  did the man who built it die?", "date"),
        ("Somewhere, what happened?", "factoid"),
    ],
)
def test_guess_kind(question, kind):
    assert guess_kind(question) == kind


def test_slugify():
    assert slugify("Sky (United Kingdom)") == "sky-united-kingdom"
    assert slugify("Fresno, California") == "fresno-california"
    assert slugify("Pok\u00e9mon \u2013 1999") == "pokemon-1999"


def test_convert_tiny():
    articles, qas = convert(TINY)
    assert articles == [
        {
            "id": "super-bowl-50",
            "title": "Super Bowl 50",
            "text": "The Denver Broncos won Super Bowl 50.\n\nIt was played on February 7, 2016.",
        },
        {
            "id": "sky-united-kingdom",
            "title": "Sky (United Kingdom)",
            "text": "Sky has 11 million customers.",
        },
    ]
    assert qas == [
        {
            "id": "q1",
            "question": "Which team won Super Bowl 50?",
            "answers": ["Denver Broncos", "The Denver Broncos"],
            "articles": ["Super Bowl 50"],
            "kind": "factoid",
        },
        {
            "id": "q2",
            "question": "When was the game played?",
            "answers": ["February 7, 2016"],
            "articles": ["Super Bowl 50"],
            "kind": "date",
        },
        {
            "id": "q3",
            "question": "How many customers does Sky have?",
            "answers": ["11 million"],
            "articles": ["Sky (United Kingdom)"],
            "kind": "number",
        },
    ]


def test_convert_rejects_answer_not_in_article():
    squad = json.loads(json.dumps(TINY))
    squad["data"][1]["paragraphs"][0]["qas"][0]["answers"][0]["text"] = "12 million"
    with pytest.raises(ValueError, match="q3"):
        convert(squad)


def test_convert_rejects_duplicate_question_ids():
    squad = json.loads(json.dumps(TINY))
    squad["data"][1]["paragraphs"][0]["qas"][0]["id"] = "q1"
    with pytest.raises(ValueError, match="q1"):
        convert(squad)


def test_convert_keeps_question_without_answers_as_unanswerable():
    squad = json.loads(json.dumps(TINY))
    squad["data"][1]["paragraphs"][0]["qas"][0]["answers"] = []
    _, qas = convert(squad)
    assert qas[2]["answers"] == []
    assert qas[2]["kind"] == "unanswerable"


def test_removing_answer_sentences_makes_on_topic_unanswerable_questions():
    squad = {
        "data": [
            {
                "title": "Sky",
                "paragraphs": [
                    {
                        "context": "Sky has 11 million customers. It is based in London."
                        " It was founded in 1990.",
                        "qas": [
                            {
                                "id": "gone",
                                "question": "How many customers does Sky have?",
                                "answers": [{"text": "11 million", "answer_start": 8}],
                            },
                            {
                                "id": "elsewhere",
                                "question": "Where is the head office?",
                                "answers": [{"text": "London", "answer_start": 45}],
                            },
                        ],
                    },
                    {"context": "Its studios are in London.", "qas": []},
                ],
            }
        ]
    }
    articles, qas = convert(squad, unanswerable_share=1.0)
    # The sentences holding an answer are gone; the rest keeps the questions on topic.
    assert articles[0]["text"] == "It was founded in 1990.\n\nIts studios are in London."
    # "London" is still in the article, so that question may be answered and is dropped.
    assert qas == [
        {
            "id": "gone",
            "question": "How many customers does Sky have?",
            "answers": [],
            "articles": [],
            "kind": "unanswerable",
        }
    ]
    assert convert(squad, unanswerable_share=0.0)[0][0]["text"].startswith("Sky has 11 million")
    with pytest.raises(ValueError, match="between 0 and 1"):
        convert(squad, unanswerable_share=1.5)


@pytest.mark.skipif(not XQUAD.exists(), reason=f"XQuAD English file not found at {XQUAD}")
def test_convert_real_xquad():
    squad = json.loads(XQUAD.read_text(encoding="utf-8"))
    articles, qas = convert(squad)
    assert len(articles) == 48
    assert len(qas) == 1190
    assert len({a["id"] for a in articles}) == 48
    assert sum(a["text"].count("\n\n") + 1 for a in articles) == 240
    texts = {a["title"]: a["text"] for a in articles}
    for qa in qas:
        assert qa["answers"], qa["id"]
        (title,) = qa["articles"]
        for answer in qa["answers"]:
            assert answer in texts[title], qa["id"]


def test_write_jsonl_round_trips_unicode(tmp_path):
    path = tmp_path / "out" / "rows.jsonl"
    rows = [{"title": "Kita\u2019ib", "text": "a\nb"}, {"title": "x", "text": ""}]
    assert write_jsonl(path, rows) == 2
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == rows
    assert "Kita\u2019ib" in lines[0]


def test_main_writes_parseable_files(tmp_path, capsys):
    source = tmp_path / "squad.json"
    source.write_text(json.dumps(TINY), encoding="utf-8")
    articles_path, qa_path = tmp_path / "articles.jsonl", tmp_path / "qa.jsonl"
    argv = [str(source), "--articles", str(articles_path), "--qa", str(qa_path)]
    assert main([*argv, "--limit-articles", "1"]) == 0
    articles = [json.loads(line) for line in articles_path.read_text().splitlines()]
    qas = [json.loads(line) for line in qa_path.read_text().splitlines()]
    assert [a["title"] for a in articles] == ["Super Bowl 50"]
    assert set(articles[0]) == {"id", "title", "text"}
    assert [q["id"] for q in qas] == ["q1", "q2"]
    assert capsys.readouterr().out == (
        f"wrote 1 articles to {articles_path} and 2 questions (0 unanswerable) to {qa_path}\n"
    )
    assert main(argv) == 0
    assert len(qa_path.read_text().splitlines()) == 3
