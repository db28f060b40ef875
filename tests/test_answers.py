"""The real model on the shipped collection: retrieval, quotes, bylines, bad questions, eval gate."""

from __future__ import annotations

import json

import pytest

from eval.harness import DEFAULT_QA, load_qa
from rag.answer.question import analyse
from rag.cli import main as rag_main
from rag.errors import QuestionError
from rag.index.store import load_index
from rag.search.retrieval import Retriever
from rag.text import squash

HASHIMI = "Iraq’s leading expert on paramilitary groups assassinated in Baghdad"

pytestmark = pytest.mark.model


def test_who_shot_hashimi_retrieves_his_article_first(engine):
    passages = engine.retriever.retrieve(
        analyse("Who shot Hisham al-Hashimi?", engine.retriever.lexicon), 5
    )
    assert squash(passages[0].article.title) == HASHIMI


def test_reloaded_index_gives_the_same_results(engine, index_dir, real_encoder):
    question = "What did the UN report say about ISIS finances?"
    loaded = Retriever(load_index(index_dir), real_encoder)
    for method in ("dense", "bm25", "hybrid"):
        before = [
            (p.chunk.id, round(p.score, 5))
            for p in engine.retriever.retrieve(
                analyse(question, engine.retriever.lexicon), 5, method=method
            )
        ]
        after = [
            (p.chunk.id, round(p.score, 5))
            for p in loaded.retrieve(analyse(question, loaded.lexicon), 5, method=method)
        ]
        assert before == after


def test_answer_marks_the_span_and_cites_the_article(engine):
    answer = engine.ask("Who shot Hisham al-Hashimi?")
    assert answer.answered and engine.selector.threshold <= answer.confidence <= 1
    first = answer.sentences[0]
    citation = first.citations[0]
    assert squash(citation.title) == HASHIMI
    assert first.span and citation.start <= citation.span_start < citation.span_end <= citation.end
    assert answer.timings.total_ms >= answer.timings.retrieve_ms >= 0
    # The reader quotes his biography first here (README, known gaps); the rules do not.
    rules = engine.ask("Who shot Hisham al-Hashimi?", answerer="rules")
    assert "two gunmen" in " ".join(s.text for s in rules.sentences)


def test_a_paraphrased_question_finds_its_sentence(engine):
    # "Claimed responsibility" answers "took credit": the words differ.
    answer = engine.ask("Which Iranian force openly took credit for the missile strike?")
    assert "Islamic Revolutionary Guard Corps" in answer.sentences[0].text


def test_every_eval_answer_is_a_quote(engine):
    checked = 0
    for qa in load_qa(DEFAULT_QA):
        answer = engine.ask(qa["question"])
        for sentence in answer.sentences:
            first = sentence.citations[0]
            assert (
                engine.index.articles[first.article_id].text[first.start : first.end]
                == sentence.text
            )
            for citation in sentence.citations:
                text = engine.index.articles[citation.article_id].text
                assert 0 <= citation.start < citation.end <= len(text)
                if citation.span_start is not None:
                    assert citation.start <= citation.span_start < citation.span_end <= citation.end
                    if citation is first:
                        assert text[citation.span_start : citation.span_end] == sentence.span
            checked += 1
        for passage in answer.passages:
            assert (
                passage.article.text[passage.chunk.start : passage.chunk.end] == passage.chunk.text
            )
    assert checked > 150


def test_byline_questions_quote_the_byline(engine):
    answer = engine.ask(
        "Who wrote the article about the mystery explosions at militia depots in Iraq?"
    )
    assert answer.answered and answer.sentences[0].span == "Ian Allen"
    answer = engine.ask("When was the article about Ruhollah Zam's abduction published?")
    assert answer.sentences[0].span == "21 October 2019"


def test_past_the_title_limit_bylines_come_from_the_retrieved_articles(engine, monkeypatch):
    from rag.engine import CANDIDATE_PASSAGES, Engine

    monkeypatch.setattr("rag.engine.TITLE_LIMIT", 0)
    small = Engine(engine.index, engine.encoder)
    question = "Who wrote the article about the mystery explosions at militia depots in Iraq?"
    answer = small.ask(question)
    assert answer.answered and answer.sentences[0].span == "Ian Allen"
    retrieved = {
        p.article.id
        for p in small.retriever.retrieve(
            analyse(question, small.retriever.lexicon), CANDIDATE_PASSAGES
        )
    }
    assert set(small._title_vectors) <= retrieved < set(engine.index.articles)


def test_missing_byline_is_said_not_guessed(engine):
    answer = engine.ask("Who wrote the analysis of Iran's missile attack on Iraqi military bases?")
    assert not answer.answered and "no byline" in answer.reason


@pytest.mark.parametrize("question", ["   ", "?!?...", "what is the", "x" * 1001])
def test_unaskable_questions_are_refused(engine, question):
    with pytest.raises(QuestionError):
        engine.ask(question)


@pytest.mark.parametrize("question", ["Кто убил Хишама аль-Хашими?", "🔥🔥 isis 🔥", "伊拉克"])
def test_other_scripts_and_emoji_never_crash(engine, question):
    answer = engine.ask(question)
    assert len(answer.passages) > 0
    # Either quotes, each equal to its article's text at the cited offsets, or a reason.
    assert answer.answered == bool(answer.sentences) and (answer.answered or answer.reason)
    for sentence in answer.sentences:
        c = sentence.citations[0]
        assert engine.index.articles[c.article_id].text[c.start : c.end] == sentence.text


def test_filters_limit_the_sources(engine):
    answer = engine.ask("What exploded at the militia bases?", author="Ian Allen")
    assert {p.article.author for p in answer.passages} == {"Ian Allen"}
    import datetime as dt

    answer = engine.ask("Who shot al-Hashimi?", date_from=dt.date(2030, 1, 1))
    assert not answer.answered and "filters" in answer.reason


def test_cli_ask_json(index_dir, capsys):
    assert (
        rag_main(["ask", "--json", "--index", str(index_dir), "Who shot Hisham al-Hashimi?"]) == 0
    )
    data = json.loads(capsys.readouterr().out)
    first = data["sentences"][0]["citations"][0]
    assert data["answered"] and squash(first["title"]) == HASHIMI
    # The same numbered sources and quoted ranges as the web API, without its links.
    assert data["sources"][0]["number"] == first["number"] == 1
    assert squash(data["sources"][0]["title"]) == HASHIMI
    holding = [
        p
        for p in data["passages"]
        if p["article_id"] == first["article_id"]
        and p["start"] <= first["start"]
        and first["end"] <= p["end"]
    ]
    assert holding, "the quoted sentence should come from a listed passage"
    assert all([first["start"], first["end"]] in p["highlights"] for p in holding)


def test_cli_ask_prints_marked_span_and_sources(index_dir, capsys):
    assert (
        rag_main(
            ["ask", "--index", str(index_dir), "How many attacks did ISIS stage in Iraq in 2019?"]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "[[" in out and "Sources:" in out and "[1]" in out


def test_eval_gate_passes_on_the_shipped_set(index_dir, tmp_path, capsys):
    report = tmp_path / "report.json"
    html = tmp_path / "report.html"
    status = rag_main(
        ["eval", "--index", str(index_dir), "--json", str(report), "--html", str(html)]
    )
    out = capsys.readouterr().out
    assert status == 0, out
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["metrics"]["hit@5"] >= 0.95
    question = data["questions"][0]
    assert {"id", "retrieved", "answered", "confidence", "sentences"} <= set(question)
    assert "<svg" in html.read_text(encoding="utf-8")


def test_disagreeing_articles_are_both_shown_by_the_rules_answerer(engine):
    # The reader path shows the other article only when it is nearly as probable.
    answer = engine.ask(
        "Who succeeded al-Baghdadi as leader of the Islamic State?", answerer="rules"
    )
    text = " ".join(s.text for s in answer.sentences)
    assert "al-Qurashi" in text and "al-Salbi" in text
    assert len({s.citations[0].article_id for s in answer.sentences}) >= 2


def test_a_fact_repeated_across_articles_is_shown_once_with_every_source(engine):
    answer = engine.ask("How many militias make up the Popular Mobilization Forces?")
    texts = [s.text for s in answer.sentences]
    assert len(texts) == len(set(texts))
    cited = {c.article_id for s in answer.sentences for c in s.citations}
    assert len(cited) >= 2


def test_acronyms_are_spelled_out(engine):
    answer = engine.ask("IRGC stands for")
    assert answer.answered
    assert answer.sentences[0].span.removeprefix("the ") == "Islamic Revolutionary Guard Corps"


# The rules answerer, kept as a baseline, with the hand checks it was built on.


def test_a_date_question_wants_the_date_it_names(engine):
    # The articles give al-Hashimi's age, not his birth date, and no day for Twitter's news.
    born = engine.ask("When was Hisham al-Hashimi born?", answerer="rules")
    assert not born.answered and "date" in born.reason
    assert engine.ask("How old was Hisham al-Hashimi?", answerer="rules").sentences[0].span == "47"
    day = engine.ask(
        "On what date did Twitter announce the removal of the pro-China accounts?",
        answerer="rules",
    )
    assert not day.answered
    # "On what date" marks the day, not "this month" in a closer sentence.
    answer = engine.ask("On what date did Iran reveal it had captured Zam?", answerer="rules")
    assert answer.sentences[0].span == "October 15"


def test_the_short_answer_is_the_one_next_to_the_question_words(engine):
    # "from France to Jordan on October 11, and from there to Baghdad": Jordan, not Baghdad.
    answer = engine.ask("Which country did Zam fly to on October 11?", answerer="rules")
    assert answer.sentences[0].span == "Jordan"


def test_an_acronym_question_is_answered_whatever_its_wording(engine):
    for question in ("What does PMF stand for?", "What is the full name of the PMF?"):
        answer = engine.ask(question, answerer="rules")
        assert answer.answered and answer.sentences[0].span == "Popular Mobilization Forces"


@pytest.mark.parametrize("answerer", ["reader", "rules", "cosine"])
def test_every_answerer_quotes_and_refuses_off_topic_questions(engine, answerer):
    answer = engine.ask("How many ballistic missiles did Iran fire?", answerer=answerer)
    assert answer.answered
    first = answer.sentences[0].citations[0]
    assert engine.index.articles[first.article_id].text[first.start : first.end] == (
        answer.sentences[0].text
    )
    assert not engine.ask("Who won the 2018 football World Cup?", answerer=answerer).answered


def test_pieces_encoded_at_question_time_give_the_stored_answers(engine):
    from rag.build.indexing import EmbeddingCache, build_index
    from rag.engine import Engine
    from rag.ingest.files import load_collection
    from rag.settings import DEFAULT_COLLECTION, ChunkSettings

    # The same index without stored word-piece vectors (as past PIECES_LIMIT chunks), from
    # the same vectors: only the late-interaction feature is computed another way.
    cache = EmbeddingCache.from_index(engine.index)
    lean = build_index(
        load_collection([DEFAULT_COLLECTION]),
        engine.encoder,
        ChunkSettings(),
        cache=cache,
        pieces=False,
    )
    assert not lean.has_pieces and lean.manifest["embedded"] == {"chunks": 0, "sentences": 0}
    encoded = Engine(lean, engine.encoder, reader=engine.reader)
    for qa in load_qa(DEFAULT_QA):
        a, b = engine.ask(qa["question"]), encoded.ask(qa["question"])
        assert (a.answered, [s.text for s in a.sentences], [s.span for s in a.sentences]) == (
            b.answered,
            [s.text for s in b.sentences],
            [s.span for s in b.sentences],
        ), qa["question"]
        assert a.confidence == pytest.approx(b.confidence, abs=2e-3)


@pytest.mark.model
def test_a_paragraph_without_a_full_stop_is_read_whole(tmp_path, real_encoder):
    # One 40,000-character paragraph with no sentence boundary: it is cut into pieces the
    # reader's window holds, so a fact deep inside it is found and quoted exactly.
    import json
    import random

    from rag.service import open_engine
    from rag.settings import Settings

    rng = random.Random(3)
    filler = [
        "council",
        "budget",
        "road",
        "school",
        "market",
        "river",
        "bridge",
        "weather",
        "season",
        "report",
    ]
    words = [rng.choice(filler) for _ in range(6000)]
    fact = "the Basra port authority said the port would reopen on Tuesday after dredging"
    words[4800:4800] = fact.split()
    text = " ".join(words)[:40000]
    assert fact in text and "." not in text
    path = tmp_path / "long.jsonl"
    path.write_text(json.dumps({"title": "Harbour notes", "text": text}) + "\n", "utf-8")
    engine = open_engine(Settings(collection=(path,), index_dir=tmp_path / "index"), real_encoder)
    answer = engine.ask("When will the Basra port reopen?")
    assert answer.answered, answer.reason
    quote = answer.sentences[0]
    assert len(quote.text) <= 600 and "reopen on Tuesday" in quote.text
    c = quote.citations[0]
    assert engine.index.articles[c.article_id].text[c.start : c.end] == quote.text
