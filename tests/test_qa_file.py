"""The project's Q&A set is well formed: answers verbatim in gold articles, titles that exist."""

from __future__ import annotations

from collections import Counter

import pytest

from eval.harness import DEFAULT_QA, load_qa
from eval.metrics import normalize_title
from rag.ingest.files import load_collection

KINDS = {
    "factoid",
    "number",
    "date",
    "person",
    "place",
    "why",
    "multi",
    "metadata",
    "keyword",
    "unanswerable",
}


@pytest.fixture(scope="module")
def qas():
    return load_qa(DEFAULT_QA)


@pytest.fixture(scope="module")
def articles():
    return {normalize_title(a.title): a for a in load_collection().articles}


def test_every_record_has_the_fixed_shape(qas):
    assert len(qas) >= 80
    assert len({q["id"] for q in qas}) == len(qas)
    for q in qas:
        assert set(q) == {"id", "question", "answers", "articles", "kind"}, q["id"]
        assert q["kind"] in KINDS, q["id"]
        assert q["question"].strip(), q["id"]
        assert (q["answers"] == []) == (q["articles"] == []) == (q["kind"] == "unanswerable")


def test_every_title_exists_and_every_answer_is_verbatim_in_a_gold_article(qas, articles):
    for q in qas:
        gold = []
        for title in q["articles"]:
            assert normalize_title(title) in articles, (q["id"], title)
            gold.append(articles[normalize_title(title)].text)
        for answer in q["answers"]:
            assert any(answer in text for text in gold), (q["id"], answer)


def test_coverage_of_the_collection(qas, articles):
    per_article = Counter(normalize_title(t) for q in qas for t in q["articles"])
    assert all(per_article[title] >= 2 for title in articles), per_article
    assert sum(q["kind"] == "unanswerable" for q in qas) >= 10
    assert sum(len(q["articles"]) >= 2 for q in qas) >= 8


def test_each_digest_item_is_asked_about_twice(qas, articles):
    digest = next(a for a in articles.values() if len(a.sections) == 3)
    asked = Counter()
    for q in qas:
        if digest.title not in map(normalize_title, q["articles"]):
            continue
        for number, section in enumerate(digest.sections):
            if any(a in digest.text[section.start : section.end] for a in q["answers"]):
                asked[number] += 1
    assert all(asked[n] >= 2 for n in range(3)), asked
