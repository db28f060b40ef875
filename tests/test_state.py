"""The served index is swapped whole for a new generation, and never for a damaged one."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from rag.build.updates import add_articles, open_index
from rag.engine import Engine
from rag.settings import Settings
from tests.conftest import FakeEncoder
from tests.test_updates import BASE, _articles, _record
from web.requests import AskOptions
from web.state import AppState


@pytest.fixture
def state(tmp_path):
    source = tmp_path / "base.txt"
    source.write_text(BASE, encoding="utf-8")
    settings = Settings(collection=(source,), index_dir=tmp_path / "index", answerer="rules")
    index, _ = open_index(settings, FakeEncoder())
    state = AppState(settings)
    state.use(Engine(index, FakeEncoder(), answerer="rules"))
    return state


def _add_port(state: AppState) -> None:
    record = _record(id="port", title="Port reopens", text="The port of Umm Qasr reopened.")
    add_articles(state.settings, FakeEncoder(), _articles(record))


def test_a_new_generation_is_taken_into_service_whole(state):
    before = state.view
    assert not state.refresh()  # nothing new yet
    _add_port(state)
    assert state.refresh()
    assert set(state.articles) == {"strike-on-a-convoy", "port"}
    assert state.view.engine.index.article_sentences("port") == [(0, 30)]
    assert state.view.generation != before.generation
    # A request that took the old view before the swap finishes on the old index.
    assert set(before.engine.index.articles) == {"strike-on-a-convoy"}
    assert before.ask("Who vowed revenge?", AskOptions()).passages


def test_a_damaged_new_generation_is_not_loaded_and_the_old_one_keeps_serving(state, caplog):
    before = state.view
    _add_port(state)
    directory = state.settings.index_path
    generation = (directory / "CURRENT").read_text(encoding="utf-8").strip()
    with (directory / generation / "sentences.npy").open("r+b") as f:
        f.seek(200)
        f.write(b"\xff" * 16)
    with caplog.at_level(logging.WARNING):
        assert not state.refresh()
    assert state.view is before and "port" not in state.articles
    assert "the new index is not used" in caplog.text and "sentences.npy" in caplog.text


def test_the_watcher_finds_a_new_generation_and_stops_when_told(state):
    stop = threading.Event()
    watcher = threading.Thread(target=state.watch, args=(stop, 0.05))
    watcher.start()
    try:
        _add_port(state)
        deadline = time.monotonic() + 10
        while "port" not in state.articles and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "port" in state.articles
    finally:
        stop.set()
        watcher.join(5)
    assert not watcher.is_alive()
