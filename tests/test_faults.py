"""Faults that must not take the answers down: a full or read-only disk, a damaged record of
changes, leftovers of crashed writes. The previous index keeps answering and nothing is lost."""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from eval.benchmark import serving
from rag.build.changes import CHANGES_FILE, read_changes
from rag.build.updates import add_articles, open_index, remove_articles
from rag.engine import Engine
from rag.errors import StorageError
from rag.index.disk import CURRENT, last_update
from rag.index.store import load_index
from rag.settings import Settings
from tests.conftest import ROOT, FakeEncoder
from tests.test_pages import RSS
from tests.test_updates import BASE, _articles, _record
from web.app import create_app

TOKEN = "a token for the tests"


@contextlib.contextmanager
def small_disk(where: Path, size: str = "6m"):
    """A tmpfs of `size` mounted on `where` for the block; skips the test without root."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill needs root (CI runs as root)")
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"a tmpfs could not be mounted: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(disk: Path, leave: int) -> Path:
    """Fill a disk with one file until `leave` bytes are free."""
    filler = disk / "filler"
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    with filler.open("wb") as f:
        f.write(b"\0" * max(free - leave, 0))
    return filler


def _generations(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("gen-*"))


def _many(count: int, words: int = 100) -> list:
    records = b"".join(
        _record(
            id=f"report-{n}",
            title=f"Report {n} from the port",
            text=" ".join(
                f"Dockers{n} unloaded grain crate{i} at berth{i % 37}." for i in range(words)
            ),
        )
        for n in range(count)
    )
    return _articles(records)


@pytest.fixture
def disk(tmp_path):
    with small_disk(tmp_path / "disk") as where:
        yield where


@pytest.fixture
def settings(tmp_path, disk):
    source = tmp_path / "base.txt"
    source.write_text(BASE, encoding="utf-8")
    settings = Settings(collection=(source,), index_dir=disk / "index", answerer="rules")
    open_index(settings, FakeEncoder())
    add_articles(
        settings,
        FakeEncoder(),
        _articles(_record(id="port", title="Port", text="Umm Qasr reopened.")),
    )
    return settings


def test_a_full_disk_fails_the_change_in_one_line_and_leaves_the_previous_state_current(
    settings, disk
):
    directory = settings.index_path
    before = (_generations(directory), read_changes(directory), load_index(directory).articles)
    pointer = (directory / CURRENT).read_text()
    filler = fill(disk, leave=64 * 1024)
    for _ in range(3):  # every attempt fails alike, and none leaves a generation
        with pytest.raises(StorageError) as failed:
            add_articles(settings, FakeEncoder(), _many(60))
        message = str(failed.value)
        assert "\n" not in message and "disk is full" in message and "needs about" in message
        assert (_generations(directory), read_changes(directory)) == before[:2]
        assert (directory / CURRENT).read_text() == pointer
        assert not [p for p in directory.iterdir() if p.name.startswith(".") and p.name != ".lock"]
    outcome = last_update(directory)
    assert outcome is not None and not outcome.ok and outcome.message == message
    # Nothing left to rebuild: the next command answers from the index as it was.
    index, update = open_index(settings, FakeEncoder())
    assert not update.built and index.articles == before[2]
    # The space it said it needs is about what the change takes once there is room.
    needed = float(message.split("needs about ")[1].split(" MB")[0])
    filler.unlink()
    _, update = add_articles(settings, FakeEncoder(), _many(60))
    (generation,) = _generations(directory)
    written = sum(p.stat().st_size for p in (directory / generation).iterdir()) / 2**20
    assert 0.5 * written <= needed <= 2 * written
    assert last_update(directory).ok and len(update.added) == 60


def test_a_rebuild_that_cannot_be_written_leaves_the_previous_index_answering(settings, disk):
    directory = settings.index_path
    generation = _generations(directory)
    Path(settings.collection[0]).write_text(BASE + "\nA second convoy was hit.\n" * 3000)
    fill(disk, leave=16 * 1024)
    with pytest.raises(StorageError):
        open_index(settings, FakeEncoder())  # `rag index` says it failed
    index, update = open_index(settings, FakeEncoder(), fallback=True)  # answering does not
    assert update.failed and "disk is full" in update.failed
    assert index.manifest["generation"] == generation[0] and _generations(directory) == generation
    engine = Engine(index, FakeEncoder(), answerer="rules")
    assert engine.ask("Which port reopened?").passages


def test_a_read_only_disk_is_said_in_one_line(settings, tmp_path):
    # The index seen through a read-only bind mount: the same files, and writes refused.
    view = tmp_path / "read-only"
    view.mkdir()
    subprocess.run(["mount", "--bind", str(settings.index_path), str(view)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(view)], check=True)
        read_only = dataclasses.replace(settings, index_dir=view)
        with pytest.raises(StorageError, match="read-only") as failed:
            remove_articles(read_only, FakeEncoder(), ["port"])
        assert "\n" not in str(failed.value)
        index, update = open_index(read_only, FakeEncoder())  # and it answers as before
        assert not update.built and set(index.articles) == {"strike-on-a-convoy", "port"}
    finally:
        subprocess.run(["umount", "-l", str(view)], check=False)


def test_a_directory_that_is_not_ours_is_said_in_one_line():
    if os.geteuid() != 0:
        pytest.skip("needs root, to try the change as another user")
    with tempfile.TemporaryDirectory(dir="/tmp") as place:
        root = Path(place)
        root.chmod(0o755)
        (root / "base.txt").write_text(BASE, encoding="utf-8")
        settings = Settings(collection=(root / "base.txt",), index_dir=root / "index")
        open_index(settings, FakeEncoder())
        read, write = os.pipe()
        child = os.fork()
        if child == 0:  # the change tried by a user who may read the index, not write it
            code = 1
            try:
                os.setgid(65534)
                os.setuid(65534)
                add_articles(settings, FakeEncoder(), _many(1, words=5))
            except StorageError as e:
                os.write(write, str(e).encode())
                code = 0
            finally:
                os._exit(code)
        os.close(write)
        message = os.read(read, 4096).decode()
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0, message
        assert "permission denied" in message and "\n" not in message
        assert set(load_index(settings.index_path).articles) == {"strike-on-a-convoy"}


def test_leftovers_of_a_crash_are_swept_at_the_next_start_with_a_log_line(settings, caplog):
    directory = settings.index_path
    (current,) = _generations(directory)
    (directory / "gen-20000101T000000-dead00").mkdir()
    (directory / "gen-20000101T000000-dead00" / "articles.arrow").write_bytes(b"half")
    (directory / f".{CURRENT}.abc123").write_text("gen-20000101T000000-dead00\n")
    with caplog.at_level(logging.WARNING):
        index, _ = open_index(settings, FakeEncoder())
    assert _generations(directory) == [current] and not list(directory.glob(f".{CURRENT}.*"))
    assert caplog.text.count("left by a write that did not finish") == 2
    assert set(index.articles) == {"strike-on-a-convoy", "port"}


@pytest.mark.parametrize("damaged", ["generation", "both", "legacy"])
def test_a_damaged_record_of_changes_is_recovered_and_no_article_is_lost(tmp_path, damaged, caplog):
    source = tmp_path / "base.txt"
    source.write_text(BASE, encoding="utf-8")
    settings = Settings(collection=(source,), index_dir=tmp_path / "index")
    open_index(settings, FakeEncoder())
    add_articles(settings, FakeEncoder(), _many(3, words=20))
    remove_articles(settings, FakeEncoder(), ["strike-on-a-convoy"])
    directory = settings.index_path
    expected = load_index(directory).articles
    (generation,) = _generations(directory)
    paths = {
        "generation": [directory / generation / CHANGES_FILE],
        "both": [directory / generation / CHANGES_FILE, directory / CHANGES_FILE],
        "legacy": [directory / CHANGES_FILE],
    }[damaged]
    if damaged == "legacy":  # an index saved before generations kept the record
        (directory / generation / CHANGES_FILE).unlink()
        manifest = json.loads((directory / generation / "manifest.json").read_text())
        del manifest["records"]
        (directory / generation / "manifest.json").write_text(json.dumps(manifest))
    for path in paths:
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # cut in half
    with caplog.at_level(logging.WARNING):
        index, _ = open_index(settings, FakeEncoder())
    assert "recovered" in caplog.text
    assert index.articles == expected
    # Later changes start from the recovered record: the added articles are still there.
    index, update = add_articles(
        settings, FakeEncoder(), _articles(_record(title="Port", text="Umm Qasr reopened."))
    )
    assert set(index.articles) == {*expected, "port"} and update.added == ("port",)


def test_the_server_keeps_answering_a_failed_update_and_says_so_at_healthz(settings, disk):
    index = load_index(settings.index_path)
    served = Engine(index, FakeEncoder(), answerer="rules")
    app = create_app(settings, engine=served, admin_token=TOKEN, reload_seconds=None)
    fill(disk, leave=64 * 1024)
    with TestClient(app) as client:
        articles = [
            {"title": f"Report {n}", "text": "Grain was unloaded. " * 300} for n in range(40)
        ]
        refused = client.post(
            "/articles", json=articles, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert refused.status_code == 507 and "disk is full" in refused.json()["detail"]
        assert client.get("/ask", params={"q": "Which port reopened?"}).status_code == 200
        health = client.get("/healthz").json()
    assert health["ready"] and health["generation"] == index.manifest["generation"]
    assert health["last_update"]["ok"] is False
    assert health["last_update"]["message"] == refused.json()["detail"]


@pytest.mark.model
def test_rag_add_on_a_full_disk_fails_in_one_line_and_the_index_before_answers(
    engine, index_dir, tmp_path
):
    question = "How many ballistic missiles did Iran fire?"
    feed = tmp_path / "wire.rss"
    feed.write_bytes(RSS)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    with small_disk(tmp_path / "disk") as disk:
        directory = disk / "index"
        shutil.copytree(index_dir, directory)  # about 3.5 MB: no room for a second generation
        before = (_generations(directory), (directory / CHANGES_FILE).read_bytes())

        def rag(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run(
                [sys.executable, "-m", "rag", *args, "--index", str(directory)],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )

        for _ in range(2):
            added = rag("add", str(feed))
            assert added.returncode == 2 and "Traceback" not in added.stderr
            (line,) = added.stderr.strip().splitlines()
            assert line.startswith("rag: error: ") and "disk is full (needs about" in line
            assert (_generations(directory), (directory / CHANGES_FILE).read_bytes()) == before
        asked = rag("ask", "--json", question)
        assert asked.returncode == 0, asked.stderr
        assert json.loads(asked.stdout)["sentences"][0]["text"] == (
            engine.ask(question).sentences[0].text
        )
        with serving(directory) as (_, port, _):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            connection.request("GET", "/ask?" + urllib.parse.urlencode({"q": question}))
            assert connection.getresponse().status == 200
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            connection.request("GET", "/healthz")
            health = json.loads(connection.getresponse().read())
        assert health["generation"] == before[0][0]
        assert (
            not health["last_update"]["ok"] and "disk is full" in health["last_update"]["message"]
        )
