"""The answer builder's selection rules on a tiny collection, with a fake encoder."""

from __future__ import annotations

from rag.answer.compose import compose
from rag.answer.features import Scored
from rag.build.indexing import build_index
from rag.index.store import SentenceTable
from rag.ingest.articles import Collection, build_article
from rag.settings import ChunkSettings


def _index(fake_encoder, *articles):
    built = [build_article(title=t, paragraphs=p, source="test") for t, p in articles]
    return build_index(Collection(tuple(built), (), "x", ()), fake_encoder, ChunkSettings())


def _scored(index, number, score, span=None):
    ref = index.sentences[number]
    return Scored(number, ref.start, ref.end, ref.article_id, 0.5, 0.5, 0.5, 0, 1, 1, score, span)


def test_a_pronoun_sentence_is_quoted_with_the_one_before(fake_encoder):
    index = _index(fake_encoder, ("Zam", ["Zam was jailed in 2009. He was released soon after."]))
    reply = compose([_scored(index, 1, 1.0)], index, SentenceTable(index), threshold=0.5)
    sentence = reply.sentences[0]
    assert sentence.text == "Zam was jailed in 2009. He was released soon after."
    article = index.articles[sentence.citations[0].article_id]
    c = sentence.citations[0]
    assert article.text[c.start : c.end] == sentence.text


def test_below_threshold_abstains_with_a_reason(fake_encoder):
    index = _index(fake_encoder, ("A", ["One sentence here."]))
    reply = compose([_scored(index, 0, 0.2)], index, SentenceTable(index), threshold=0.5)
    assert not reply.answered and reply.sentences == () and reply.reason
    assert 0 <= reply.confidence < 0.5


def _typed(index, number, score, typed):
    ref = index.sentences[number]
    return Scored(
        number, ref.start, ref.end, ref.article_id, 0.5, 0.5, 0.5, 0, typed, 1, score, None
    )


def test_a_number_question_without_a_number_near_the_top_abstains(fake_encoder):
    index = _index(fake_encoder, ("A", ["Zam ran a channel.", "It had 1.4 million readers."]))
    table = SentenceTable(index)
    no_number = [_typed(index, 0, 1.0, 0.0), _typed(index, 1, 0.7, 1.0)]
    reply = compose(no_number, index, table, threshold=0.5, kind="number")
    assert not reply.answered and "number" in reply.reason
    # The same scores answer a question that wants no number, and a close second with a
    # number answers the number question.
    assert compose(no_number, index, table, threshold=0.5, kind="factoid").answered
    close = [_typed(index, 0, 1.0, 0.0), _typed(index, 1, 0.95, 1.0)]
    assert compose(close, index, table, threshold=0.5, kind="number").answered


def test_a_question_about_a_founding_needs_a_sentence_about_it(fake_encoder):
    index = _index(fake_encoder, ("A", ["Ali leads the militia.", "Omar set up the militia."]))
    table = SentenceTable(index)
    leader_only = [_typed(index, 0, 1.0, 1.0), _typed(index, 1, 0.7, 1.0)]
    reply = compose(leader_only, index, table, threshold=0.5, kind="person", event="founding")
    assert not reply.answered and "founding" in reply.reason
    close = [_typed(index, 0, 1.0, 1.0), _typed(index, 1, 0.95, 1.0)]
    assert compose(close, index, table, threshold=0.5, kind="person", event="founding").answered


def test_the_same_sentence_in_two_articles_is_one_answer_with_two_citations(fake_encoder):
    same = "The alliance has about 40 militias."
    index = _index(fake_encoder, ("A", [same]), ("B", ["Other words first.", same]))
    numbers = [i for i, s in enumerate(index.sentences) if index.sentence_text(s) == same]
    scored = [_scored(index, numbers[0], 1.0), _scored(index, numbers[1], 0.99)]
    reply = compose(scored, index, SentenceTable(index), threshold=0.5)
    assert len(reply.sentences) == 1
    assert {c.article_id for c in reply.sentences[0].citations} == {"a", "b"}


def test_another_articles_different_answer_is_kept(fake_encoder):
    index = _index(
        fake_encoder,
        ("A", ["Ali succeeded the old leader."]),
        ("B", ["Omar replaced the old leader, the report says."]),
    )
    first, second = index.sentences[0], index.sentences[1]
    scored = [
        _scored(index, 0, 1.0, (first.start, first.start + 3)),
        _scored(index, 1, 0.85, (second.start, second.start + 4)),
    ]
    reply = compose(scored, index, SentenceTable(index), threshold=0.5)
    assert [s.span for s in reply.sentences] == ["Ali", "Omar"]


def test_byline_of_a_json_lines_article_is_quoted(tmp_path, fake_encoder):
    import datetime as dt

    from rag.answer.bylines import byline_reply
    from rag.ingest.files import load_collection

    (tmp_path / "a.jsonl").write_text(
        '{"title": "Bakery prize", "text": "A bakery won.", "author": "Ada Quill",'
        ' "date": "2021-03-04"}\n',
        encoding="utf-8",
    )
    article = load_collection([tmp_path]).articles[0]
    assert article.date == dt.date(2021, 3, 4)
    who = byline_reply(article, "author")
    assert who.answered and who.sentences[0].span == "Ada Quill"
    when = byline_reply(article, "date")
    assert when.sentences[0].span == "2021-03-04"
    c = when.sentences[0].citations[0]
    assert article.text[c.span_start : c.span_end] == "2021-03-04"


def test_a_reader_that_cannot_load_is_a_user_error_not_a_traceback(fake_encoder, monkeypatch):
    import pytest

    from embeddings.errors import ReaderLoadError
    from rag.engine import Engine
    from rag.errors import ModelError, RagError

    def broken(**_):
        raise ReaderLoadError("The reader's file reader.safetensors is missing. Reinstall.")

    monkeypatch.setattr("rag.engine.load_reader", broken)
    engine = Engine(_index(fake_encoder, ("A", ["Ali leads the militia."])), fake_encoder)
    with pytest.raises(ModelError, match="reader.safetensors is missing") as caught:
        engine.ask("Who leads the militia?")
    assert isinstance(caught.value, RagError)
