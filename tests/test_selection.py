"""The learned selector: its arithmetic, its file, and how it ranks what the reader read."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest

from embeddings.reader import Reading
from rag.answer.baselines import rank_by_cosine
from rag.answer.features import Scored
from rag.answer.question import analyse
from rag.answer.reading import rank_with_reader
from rag.answer.selection import (
    Logistic,
    Selector,
    SelectorLoadError,
    load_selector,
    log_odds,
)
from rag.build.indexing import build_index
from rag.index.lexicon import Lexicon
from rag.index.store import SentenceTable
from rag.ingest.articles import Collection, build_article
from rag.settings import ChunkSettings


def test_logistic_standardises_then_weighs():
    model = Logistic(("a", "b"), (1.0, 0.0), (2.0, 1.0), (2.0, -1.0), 0.5)
    p = model.probabilities([{"a": 3.0, "b": 1.0}, {"a": 1.0, "b": 0.0}])
    assert p[0] == pytest.approx(1 / (1 + math.exp(-(2.0 * 1.0 - 1.0 + 0.5))))
    assert p[1] == pytest.approx(1 / (1 + math.exp(-0.5)))
    assert model.probabilities([]).shape == (0,)


def test_log_odds_stays_finite():
    assert log_odds(0.5) == 0.0
    assert math.isfinite(log_odds(0.0)) and math.isfinite(log_odds(1.0))


def test_shipped_selector_loads_with_its_fitting_record():
    selector = load_selector()
    assert 1 <= selector.candidates <= 16
    assert 0.0 < selector.threshold < 1.0
    assert selector.spans in ("reader", "patterns", "both")
    assert "squad2" in selector.about["fitted_on"]
    assert "reader" in selector.second.features and "reader" not in selector.first.features


def test_a_missing_or_damaged_selector_says_how_to_fix_it(tmp_path):
    with pytest.raises(SelectorLoadError, match="missing.*eval.train_selector"):
        load_selector(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"first": {}}), encoding="utf-8")
    with pytest.raises(SelectorLoadError, match="damaged"):
        load_selector(bad)


class FakeReader:
    """Says a sentence answers when it holds the word 'gunmen'; marks that word."""

    def __init__(self) -> None:
        self.calls = []

    def read(self, question, sentences, contexts=None, *, context_tokens=None):
        self.calls.append((len(sentences), context_tokens))
        out = []
        for s in sentences:
            at = s.find("gunmen")
            out.append(Reading(0.9, (at, at + 6), 0.8) if at >= 0 else Reading(0.1, None, 0.0))
        return out


def _scored(index, number, dense):
    ref = index.sentences[number]
    return Scored(number, ref.start, ref.end, ref.article_id, dense, 0.5, 0.5, 0, 1, 1, 0, None)


def _selector(candidates=2, spans="reader"):
    cheap = ("dense", "tokens", "lexical", "context", "typed", "prior", "short_kind")
    first = Logistic(cheap, (0.0,) * 7, (1.0,) * 7, (1.0, 0, 0, 0, 0, 0, 0), 0.0)
    full = (*cheap, "reader", "reader_gap", "span_probability")
    second = Logistic(full, (0.0,) * 10, (1.0,) * 10, (0,) * 7 + (1.0, 0, 0), 0.0)
    return Selector(first, second, candidates, 0.5, 0.3, spans)


def test_the_reader_reorders_the_candidates_the_first_model_passes(fake_encoder):
    article = build_article(
        title="Attack",
        paragraphs=["The attack shocked Baghdad. Two gunmen shot him. He was 47. Police came."],
        source="test",
    )
    index = build_index(Collection((article,), (), "x", ()), fake_encoder, ChunkSettings())
    table = SentenceTable(index)
    # Sentence 3 has the best similarity but is not read: only the first model's top 2 are.
    scored = [_scored(index, 0, 0.9), _scored(index, 1, 0.8), _scored(index, 3, 0.1)]
    ranked = rank_with_reader(
        scored, analyse("Who shot him?", index.lexicon), FakeReader(), _selector(), index, table
    )
    assert [s.number for s in ranked] == [1, 0]
    assert ranked[0].score == pytest.approx(1 / (1 + math.exp(-log_odds(0.9))))
    text = index.articles[article.id].text
    assert text[ranked[0].span[0] : ranked[0].span[1]] == "gunmen"
    assert [s.number for s in rank_by_cosine(scored)] == [0, 1, 3]


def test_a_sure_first_model_sends_fewer_sentences_to_the_reader(fake_encoder):
    article = build_article(
        title="Attack",
        paragraphs=["The attack shocked Baghdad. Two gunmen shot him. He was 47."],
        source="test",
    )
    index = build_index(Collection((article,), (), "x", ()), fake_encoder, ChunkSettings())
    table, query = SentenceTable(index), analyse("Who shot him?", index.lexicon)
    scored = [_scored(index, 1, 0.9), _scored(index, 0, 0.5), _scored(index, 2, 0.1)]
    # The first model's probability of the best candidate is about 0.71 (dense 0.9).
    for sure_at, read in ((0.7, 1), (0.72, 3)):
        reader = FakeReader()
        selector = replace(
            _selector(candidates=3), sure_at=sure_at, sure_candidates=1, context_tokens=8
        )
        ranked = rank_with_reader(scored, query, reader, selector, index, table)
        assert reader.calls == [(read, 8)] and len(ranked) == read
        assert ranked[0].number == 1


def test_analysed_question_carries_what_each_step_needs():
    lexicon = Lexicon(
        [
            "Hisham al-Hashimi was born in Baghdad in 1973.",
            "Iran fired 22 ballistic missiles at two bases.",
            "The Popular Mobilization Forces (PMF) were formed in 2014.",
        ]
    )
    query = analyse("  When was Hisham al-Hashmi born? ", lexicon)
    assert query.text == "When was Hisham al-Hashmi born?"
    assert (query.kind, query.event, query.byline_field) == ("date", "birth or death", None)
    # The misspelled name is resolved once, to the collection's spelling, for both steps.
    assert "hashimi" in query.terms and "hashmi" not in query.terms
    assert frozenset({"alhashimi", "hashimi"}) in dict(query.groups)
    definition = analyse("What does PMF stand for?", lexicon)
    assert definition.acronym == "PMF" and "stand" not in definition.search_text
    counted = analyse("How many ballistic missiles did Iran fire?", lexicon)
    assert counted.counted == {"ballist", "missil"}
    byline = analyse("Who wrote the article about the missiles?", lexicon)
    assert byline.kind == "metadata" and byline.byline_field == "author"
    assert "missil" in byline.about_terms and "articl" not in byline.about_terms


def test_selector_round_trips_through_json(tmp_path):
    selector = _selector()
    path = tmp_path / "s.json"
    path.write_text(json.dumps(selector.to_json()), encoding="utf-8")
    loaded = load_selector(path)
    assert loaded.first == selector.first and loaded.second == selector.second
    assert np.isclose(loaded.threshold, 0.5)
    assert (loaded.context_tokens, loaded.sure_at) == (None, selector.sure_at)
    changed = replace(selector, context_tokens=24, sure_at=0.8, sure_candidates=1)
    path.write_text(json.dumps(changed.to_json()), encoding="utf-8")
    assert load_selector(path) == changed
    # A selector written before these settings reads every candidate with its whole context.
    old = {k: v for k, v in changed.to_json().items() if k not in ("context_tokens", "sure_at")}
    path.write_text(json.dumps(old), encoding="utf-8")
    assert load_selector(path).reads(0.99) == selector.candidates


def test_question_features_are_what_the_refusal_model_reads(fake_encoder):
    from rag.answer.reading import question_features
    from rag.answer.selection import AGREEMENT_FEATURES, REFUSAL_FEATURES

    article = build_article(title="A", paragraphs=["One here. Two there."], source="test")
    index = build_index(Collection((article,), (), "x", ()), fake_encoder, ChunkSettings())
    ranked = [_scored(index, 0, 0.9), _scored(index, 1, 0.2)]
    ranked = [
        s.__class__(**{**s.__dict__, "score": p, "reader": r})
        for s, p, r in zip(ranked, (0.8, 0.1), (0.7, 0.3), strict=True)
    ]
    features = question_features(ranked, index)
    assert tuple(features) == REFUSAL_FEATURES + AGREEMENT_FEATURES
    assert features["best"] == pytest.approx(log_odds(0.8))
    assert features["reader_best"] == pytest.approx(log_odds(0.7))
    assert features["agree"] == 0.0
    assert question_features(ranked[:1], index)["second"] == pytest.approx(log_odds(0.0))


def test_agreement_counts_the_best_answer_found_again_in_other_articles(fake_encoder):
    from rag.answer.reading import question_features

    articles = [
        build_article(title=t, paragraphs=[p], source="test", article_id=t)
        for t, p in (
            ("A", "Gunmen on a motorcycle shot him. Police came."),
            ("B", "Two gunmen on a motorcycle fled. It rained."),
            ("C", "The gunmen escaped on foot."),
        )
    ]
    index = build_index(Collection(tuple(articles), (), "x", ()), fake_encoder, ChunkSettings())
    firsts = [index.sentences.of_article(index.sentences.row(a))[0] for a in "ABC"]
    ranked = [replace(_scored(index, n, 0.5), score=0.5) for n in firsts]
    best = ranked[0]
    start = index.articles[best.article_id].text.index("Gunmen on a motorcycle")
    ranked[0] = replace(best, score=0.9, span=(start, start + len("Gunmen on a motorcycle")))
    features = question_features(ranked, index)
    # "gunmen on a motorcycle" is in B's sentence, not in C's.
    assert features["agree"] == pytest.approx(0.5)
    assert features["agree_articles"] == 1.0


def test_a_refusal_model_round_trips_through_json(tmp_path):
    from rag.answer.selection import REFUSAL_FEATURES

    n = len(REFUSAL_FEATURES)
    refusal = Logistic(REFUSAL_FEATURES, (0.0,) * n, (1.0,) * n, (1.0,) + (0.0,) * (n - 1), 0.0)
    base = _selector()
    selector = Selector(
        base.first, base.second, 2, 0.5, 0.3, "reader", False, refusal, 0.25, {"x": 1}
    )
    path = tmp_path / "s.json"
    path.write_text(json.dumps(selector.to_json()), encoding="utf-8")
    loaded = load_selector(path)
    assert loaded.refusal == refusal and loaded.refusal_threshold == 0.25
    shipped = load_selector()
    assert shipped.about["chosen"]["candidates"] == shipped.candidates
