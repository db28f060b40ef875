"""A collection that grows: add, update and remove articles, embedding only new text."""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import threading
import time

import numpy as np
import pytest

from rag.answer.question import analyse
from rag.build.indexing import build_lock
from rag.build.updates import add_articles, current_collection, open_index, remove_articles
from rag.errors import CollectionError
from rag.index.store import load_index
from rag.ingest.files import load_collection, read_data
from rag.search.retrieval import Retriever
from rag.service import open_engine
from rag.settings import DEFAULT_COLLECTION, Settings
from tests.conftest import Counting, FakeEncoder
from tests.test_pages import BOILERPLATE, PAGE, RSS

BASE = (
    "Strike on a convoy\n\nA drone strike hit a convoy near Baghdad airport on Friday."
    " Two vehicles burned.\n\nThe militia vowed revenge.\n"
)


def _record(**fields) -> bytes:
    return (json.dumps(fields) + "\n").encode()


def _quotes(answer) -> list:
    # What an answer says and cites; its confidence moves a little as the collection grows.
    return [
        (s.text, s.span, [(c.article_id, c.start, c.end) for c in s.citations])
        for s in answer.sentences
    ]


def _articles(data: bytes, suffix: str = ".jsonl"):
    warnings: list[str] = []
    articles = read_data(data, suffix, f"test{suffix}", warnings)
    assert not warnings
    return articles


@pytest.fixture
def settings(tmp_path):
    source = tmp_path / "base.txt"
    source.write_text(BASE, encoding="utf-8")
    settings = Settings(collection=(source,), index_dir=tmp_path / "index")
    open_index(settings, FakeEncoder())
    return settings


def test_an_added_article_is_the_only_text_embedded_and_is_found(settings):
    counting = Counting()
    new = _articles(
        _record(id="port", title="Port reopens", text="The port of Umm Qasr reopened on Sunday.")
    )
    index, update = add_articles(settings, counting, new)
    assert counting.texts and all("Umm Qasr" in t or "Port reopens" in t for t in counting.texts)
    assert (update.added, update.updated, update.removed, update.unchanged) == (
        ("port",),
        (),
        (),
        1,
    )
    assert (update.embedded_chunks, update.embedded_sentences) == (1, 1)
    (best, *_) = Retriever(index, FakeEncoder()).retrieve(
        analyse("Which port reopened?", index.lexicon), 2
    )
    assert best.article.id == "port"
    # The next process sees the addition: the collection with its changes is current.
    again, update = open_index(settings, Counting())
    assert not update.built and "port" in again.articles


def test_adding_the_same_article_again_embeds_nothing_and_a_new_version_replaces_it(settings):
    record = dict(id="port", title="Port reopens", text="The port of Umm Qasr reopened on Sunday.")
    add_articles(settings, FakeEncoder(), _articles(_record(**record)))
    counting = Counting()
    _, update = add_articles(settings, counting, _articles(_record(**record)))
    assert counting.texts == [] and update.added == update.updated == ()
    record["text"] = "The port of Umm Qasr reopened on Monday after a strike."
    index, update = add_articles(settings, Counting(), _articles(_record(**record)))
    assert update.updated == ("port",) and update.added == ()
    texts = " ".join(c.text for c in index.chunks)
    assert "Monday" in texts and "on Sunday" not in texts


def test_a_removed_article_leaves_no_chunk_sentence_vector_or_bm25_entry(settings):
    add_articles(
        settings,
        FakeEncoder(),
        _articles(_record(id="port", title="Port reopens", text="Umm Qasr reopened on Sunday.")),
    )
    index, update = remove_articles(settings, FakeEncoder(), ["port"])
    assert update.removed == ("port",) and set(index.articles) == {"strike-on-a-convoy"}
    assert all(c.article_id != "port" for c in index.chunks)
    assert all(s.article_id != "port" for s in index.sentences)
    assert len(index.chunk_vectors) == len(index.chunks)
    assert len(index.sentence_vectors) == len(index.sentences)
    retriever = Retriever(index, FakeEncoder())
    assert "qasr" not in retriever.lexicon.vocabulary
    assert all(
        p.article.id != "port"
        for p in retriever.retrieve(analyse("Umm Qasr port", retriever.lexicon), 5)
    )


def test_an_article_of_the_files_can_be_removed_and_added_back(settings):
    index, _ = add_articles(
        settings, FakeEncoder(), _articles(_record(title="Port", text="Umm Qasr reopened."))
    )
    _, update = remove_articles(settings, FakeEncoder(), ["strike-on-a-convoy"])
    assert update.removed == ("strike-on-a-convoy",)
    assert [a.id for a in current_collection(settings).articles] == ["port"]
    original = load_collection(settings.collection).articles
    index, update = add_articles(settings, FakeEncoder(), original)
    assert update.added == ("strike-on-a-convoy",)
    assert set(index.articles) == {"strike-on-a-convoy", "port"}


def test_an_unknown_id_is_refused_with_close_ids(settings):
    with pytest.raises(CollectionError, match="'strike-on-a-convoy'"):
        remove_articles(settings, FakeEncoder(), ["strike-on-a-convo"])
    with pytest.raises(CollectionError, match="empty"):
        remove_articles(settings, FakeEncoder(), ["strike-on-a-convoy"])
    assert set(load_index(settings.index_path).articles) == {"strike-on-a-convoy"}


def test_a_page_fetched_again_replaces_its_earlier_version_even_retitled(settings):
    page = _articles(PAGE.encode(), ".html")[0]
    first = dataclasses.replace(page, url="https://example.org/drone", source="https://x/drone")
    add_articles(settings, FakeEncoder(), [first])
    retitled = dataclasses.replace(first, id="drone-strike-updated", title="Drone strike: update")
    index, update = add_articles(settings, FakeEncoder(), [retitled])
    assert update.added == ("drone-strike-updated",) and update.removed == (first.id,)
    assert sum(a.url == "https://example.org/drone" for a in index.articles.values()) == 1


def test_updates_and_a_full_build_of_the_same_collection_are_identical(settings, tmp_path):
    add_articles(settings, FakeEncoder(), _articles(PAGE.encode(), ".html"))
    index, _ = add_articles(settings, FakeEncoder(), _articles(RSS, ".rss"))
    basra = next(i for i in index.articles if i.startswith("militia-leader-arrested"))
    remove_articles(settings, FakeEncoder(), [basra])
    incremental = load_index(settings.index_path)
    # A full build of the same collection: the files plus the recorded changes.
    (tmp_path / "full").mkdir()
    shutil.copy(settings.index_path / "changes.json", tmp_path / "full" / "changes.json")
    full, update = open_index(
        dataclasses.replace(settings, index_dir=tmp_path / "full", rebuild="always"),
        FakeEncoder(),
    )
    assert update.embedded_chunks == len(full.chunks)  # nothing reused
    assert basra not in full.articles and len(full.articles) == 3
    assert incremental.articles == full.articles
    assert incremental.chunks == full.chunks and incremental.sentences == full.sentences
    assert np.allclose(incremental.sentence_vectors, full.sentence_vectors, atol=1e-6)
    assert np.array_equal(incremental.token_offsets, full.token_offsets)
    for question in ("Who vowed revenge?", "What struck Erbil airport?", "Who was arrested?"):
        a = Retriever(incremental, FakeEncoder()).retrieve(
            analyse(question, incremental.lexicon), 5
        )
        b = Retriever(full, FakeEncoder()).retrieve(analyse(question, full.lexicon), 5)
        assert [(p.chunk.id, p.score) for p in a] == [(p.chunk.id, p.score) for p in b]


def test_a_second_writer_waits_for_the_first_and_says_so(settings, caplog):
    released = threading.Event()

    def hold() -> None:
        with build_lock(settings.index_path):
            time.sleep(1.0)
        released.set()

    holder = threading.Thread(target=hold)
    holder.start()
    time.sleep(0.2)
    with caplog.at_level(logging.WARNING):
        _, update = add_articles(
            settings, FakeEncoder(), _articles(_record(title="Port", text="Umm Qasr reopened."))
        )
    holder.join()
    assert released.is_set() and update.added == ("port",)
    assert "another process is building the index" in caplog.text


def test_a_syndicated_copy_is_reported_and_its_sentences_grouped(settings):
    copy = BASE.replace("Strike on a convoy", "Convoy hit by drone").replace(
        "Two vehicles burned", "Two cars burned"
    )
    articles = _articles(copy.encode("utf-8"), ".txt")
    index, update = add_articles(settings, FakeEncoder(), articles)
    ((pair),) = update.duplicates
    assert (pair.first, pair.second) == ("strike-on-a-convoy", "convoy-hit-by-drone")
    assert pair.similarity >= 0.6
    grouped = {
        tuple(index.sentence_text(index.sentences[n]) for n in group) for group in index.twins
    }
    assert (
        "A drone strike hit a convoy near Baghdad airport on Friday.",
        "A drone strike hit a convoy near Baghdad airport on Friday.",
    ) in grouped
    assert ("The militia vowed revenge.", "The militia vowed revenge.") in grouped
    # An unrelated article on the same event is not a duplicate.
    other = _articles(
        _record(
            title="Airport strike",
            text="Officials said a strike near Baghdad airport on Friday killed no one. A"
            " spokesman for the government condemned it and promised an inquiry.",
        )
    )
    _, update = add_articles(settings, FakeEncoder(), other)
    assert len(update.duplicates) == 1


@pytest.mark.model
def test_a_page_and_a_feed_added_to_the_shipped_collection_are_answered_and_removed(
    engine, index_dir, tmp_path, real_encoder
):
    from rag.engine import Engine
    from rag.ingest.files import read_data

    directory = tmp_path / "index"
    shutil.copytree(index_dir, directory)
    settings = Settings(collection=(DEFAULT_COLLECTION,), index_dir=directory)
    warnings: list[str] = []
    added = read_data(PAGE.encode(), ".html", "page.html", warnings)
    added += read_data(RSS, ".rss", "wire.rss", warnings)
    index, update = add_articles(settings, real_encoder, added)
    assert len(update.added) == 3 and update.unchanged == len(engine.index.articles)
    assert update.embedded_chunks == 3  # only the new articles' text
    grown = Engine(index, real_encoder)
    page_id = next(i for i in update.added if i.startswith("drone-strike"))
    about_page = [
        "What was Abu Ali al-Basri travelling in when the missiles hit?",
        "Which commander was travelling in a convoy of two vehicles?",
    ]
    for question in about_page:
        answer = grown.ask(question)
        assert answer.answered and answer.sentences[0].citations[0].article_id == page_id
        quoted = " ".join(s.text for s in answer.sentences)
        assert not any(phrase.lower() in quoted.lower() for phrase in BOILERPLATE)
    answer = grown.ask("What struck Erbil airport on Monday night?")
    assert answer.answered and "rockets" in answer.sentences[0].text
    shipped = [
        "How many ballistic missiles did Iran fire?",
        "When did ISIS name al-Qurashi its leader?",
        "How old was Hisham al-Hashimi when he was killed?",
    ]
    for question in shipped:
        assert _quotes(grown.ask(question)) == _quotes(engine.ask(question)), question

    index, update = remove_articles(settings, real_encoder, [page_id])
    assert update.removed == (page_id,) and update.embedded_chunks == 0
    shrunk = Engine(index, real_encoder)
    for question in about_page:
        answer = shrunk.ask(question)
        assert not answer.answered, question
        assert all(p.article.id != page_id for p in answer.passages)

    # A full build of the same collection (the files, plus the changes recorded) answers
    # every eval question as the updated index does.
    from eval.harness import DEFAULT_QA, load_qa

    (tmp_path / "full").mkdir()
    shutil.copy(directory / "changes.json", tmp_path / "full" / "changes.json")
    full = open_engine(
        dataclasses.replace(settings, index_dir=tmp_path / "full", rebuild="always"),
        real_encoder,
    )
    assert full.index.manifest["embedded"]["chunks"] == len(full.index.chunks)
    for qa in load_qa(DEFAULT_QA):
        a, b = shrunk.ask(qa["question"]), full.ask(qa["question"])
        assert (a.answered, _quotes(a)) == (b.answered, _quotes(b)), qa["question"]
        assert a.confidence == pytest.approx(b.confidence, abs=1e-3)


@pytest.mark.model
def test_a_syndicated_copy_is_cited_once_beside_the_original(engine, index_dir, tmp_path):
    from rag.engine import Engine

    original = engine.index.articles[
        "assessing-the-implications-of-irans-missile-attack-on-iraqi-military-bases"
    ]
    # Syndicated: a new headline, a sentence trimmed, a few words changed.
    body = (
        original.body.replace("markedly muted", "notably muted")
        .replace("These troops have been on high alert", "The troops had been on alert")
        .replace("Tehran directed", "Iran directed")
    )
    copy = {"id": "wire-copy", "title": "Iran's muted missile strike, assessed", "text": body}
    directory = tmp_path / "index"
    shutil.copytree(index_dir, directory)
    settings = Settings(collection=(DEFAULT_COLLECTION,), index_dir=directory)
    index, update = add_articles(settings, engine.encoder, _articles(_record(**copy)))
    assert [(d.first, d.second) for d in update.duplicates] == [(original.id, "wire-copy")]
    grown = Engine(index, engine.encoder, reader=engine.reader)
    answer = grown.ask("How many ballistic missiles did Iran fire?")
    first = answer.sentences[0]
    assert first.span == "22"
    assert sorted(c.article_id for c in first.citations) == sorted([original.id, "wire-copy"])
    for citation in first.citations:
        text = index.articles[citation.article_id].text[citation.start : citation.end]
        assert "22 ballistic missiles were fired" in text
        assert (
            text[citation.span_start - citation.start : citation.span_end - citation.start] == "22"
        )
    for sentence in answer.sentences:  # every source once
        cited = [c.article_id for c in sentence.citations]
        assert len(cited) == len(set(cited))
