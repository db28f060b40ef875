"""Articles added and removed while the server keeps answering: the admin API and hot swaps."""

from __future__ import annotations

import http.client
import json
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse

import pytest
from fastapi.testclient import TestClient

import web.admin
from eval.benchmark import load, serving
from eval.harness import DEFAULT_QA, load_qa
from rag.engine import Engine
from rag.index.store import load_index
from rag.settings import Settings
from tests.test_pages import BOILERPLATE, PAGE
from web.app import create_app

pytestmark = pytest.mark.model

TOKEN = "correct horse battery staple"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PORT_ARTICLE = {
    "title": "Umm Qasr port reopens after a week",
    "text": "The port of Umm Qasr reopened on Sunday after a strike by dock workers that lasted"
    " a week.\n\nThe port handles most of Iraq's grain imports, the port authority said.",
    "author": "Dana Field",
    "date": "2030-05-04",
    "url": "https://example.org/umm-qasr",
}
PORT_QUESTION = "How long did the dock workers' strike at Umm Qasr last?"


@pytest.fixture
def admin_client(index_dir, engine, tmp_path, real_encoder):
    directory = tmp_path / "index"
    shutil.copytree(index_dir, directory)
    settings = Settings(index_dir=directory)
    served = Engine(load_index(directory), real_encoder, reader=engine.reader)
    app = create_app(settings, engine=served, admin_token=TOKEN, reload_seconds=None)
    with TestClient(app) as client:
        yield client


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"Authorization": "Basic x"}],
)
def test_without_the_token_changes_get_401(admin_client, headers):
    for response in (
        admin_client.post("/articles", json=PORT_ARTICLE, headers=headers),
        admin_client.delete("/articles/some-id", headers=headers),
    ):
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert "RAG_ADMIN_TOKEN" in response.json()["detail"]


def test_the_token_is_compared_in_constant_time(admin_client, monkeypatch):
    compared = []

    def compare(a, b):
        compared.append((a, b))
        return a == b

    monkeypatch.setattr(web.admin.hmac, "compare_digest", compare)
    assert (
        admin_client.delete("/articles/x", headers={"Authorization": "Bearer guess"}).status_code
        == 401
    )
    assert compared == [(b"guess", TOKEN.encode())]


def test_a_server_without_a_token_has_no_way_to_change_articles(index_dir, engine):
    with TestClient(create_app(Settings(index_dir=index_dir), engine=engine)) as client:
        assert client.post("/articles", json=PORT_ARTICLE, headers=AUTH).status_code == 405
        assert client.delete("/articles/x", headers=AUTH).status_code == 405
        assert "post" not in client.get("/openapi.json").json()["paths"]["/articles"]


def test_an_article_posted_is_answered_listed_first_and_deleted(admin_client):
    assert not admin_client.post("/ask", json={"question": PORT_QUESTION}).json()["answered"]
    response = admin_client.post("/articles", json=PORT_ARTICLE, headers=AUTH)
    assert response.status_code == 201, response.text
    update = response.json()
    (added,) = update["added"]
    assert update["embedded_chunks"] == 1 and update["removed"] == []
    answer = admin_client.post("/ask", json={"question": PORT_QUESTION}).json()
    assert answer["answered"] and "a week" in answer["sentences"][0]["text"]
    assert answer["sentences"][0]["citations"][0]["article_id"] == added
    listed = admin_client.get("/articles", headers={"Accept": "application/json"}).json()[
        "articles"
    ]
    assert (listed[0]["id"], listed[0]["source"]) == (added, "example.org")

    response = admin_client.delete(f"/articles/{added}", headers=AUTH)
    assert response.status_code == 200 and response.json()["removed"] == [added]
    answer = admin_client.post("/ask", json={"question": PORT_QUESTION}).json()
    assert not answer["answered"] and all(p["article_id"] != added for p in answer["passages"])
    assert admin_client.get(f"/articles/{added}").status_code == 404
    assert admin_client.delete(f"/articles/{added}", headers=AUTH).status_code == 404


def test_a_saved_page_is_uploaded_as_a_file(admin_client):
    response = admin_client.post(
        "/articles",
        files={"file": ("drone.html", PAGE.encode(), "text/html")},
        headers=AUTH,
    )
    assert response.status_code == 201, response.text
    (added,) = response.json()["added"]
    text = admin_client.get(f"/articles/{added}", headers={"Accept": "application/json"}).json()[
        "text"
    ]
    assert "Abu Ali al-Basri" in text
    assert not any(phrase.lower() in text.lower() for phrase in BOILERPLATE)


@pytest.mark.parametrize(
    ("kwargs", "status", "words"),
    [
        ({"json": {"title": "No text"}}, 422, "text"),
        ({"json": {**PORT_ARTICLE, "date": "4 May"}}, 422, "date"),
        ({"json": []}, 422, "empty"),
        ({"content": b"{", "headers": {"Content-Type": "application/json"}}, 400, "JSON"),
        ({"content": b"title", "headers": {"Content-Type": "text/plain"}}, 415, "multipart"),
        ({"files": {"file": ("notes.pdf", b"%PDF", "application/pdf")}}, 422, ".html"),
        ({"files": {"file": ("empty.html", b"<html></html>", "text/html")}}, 422, "no article"),
    ],
)
def test_a_bad_upload_gets_a_4xx_that_says_why_and_changes_nothing(
    admin_client, kwargs, status, words
):
    before = admin_client.get("/healthz").json()["manifest"]
    headers = {**AUTH, **kwargs.pop("headers", {})}
    response = admin_client.post("/articles", headers=headers, **kwargs)
    assert response.status_code == status, response.text
    assert words in json.dumps(response.json())
    assert admin_client.get("/healthz").json()["manifest"] == before


def _ask_until(port: int, question: str, answered: bool, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    while time.monotonic() < deadline:
        connection.request("GET", "/ask?" + urllib.parse.urlencode({"q": question}))
        response = connection.getresponse()
        if json.loads(response.read())["answered"] is answered:
            return True
        time.sleep(0.2)
    return False


def test_updates_land_in_a_running_server_while_it_answers_without_a_failed_request(
    index_dir, engine, tmp_path, monkeypatch
):
    directory = tmp_path / "index"
    shutil.copytree(index_dir, directory)
    article = tmp_path / "port.jsonl"
    article.write_text(json.dumps(PORT_ARTICLE) + "\n", encoding="utf-8")
    questions = [q["question"] for q in load_qa(DEFAULT_QA)]
    monkeypatch.setenv("RAG_ADMIN_TOKEN", TOKEN)
    with serving(directory) as (_, port, _):
        outcome: dict = {}
        asking = threading.Thread(
            target=lambda: outcome.update(
                zip(("times", "errors"), load(port, questions, 4, 25), strict=True)
            )
        )
        asking.start()
        # From another process: `rag add`, then `rag remove`; the server swaps on its own.
        added = subprocess.run(
            [sys.executable, "-m", "rag", "add", str(article), "--index", str(directory)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert added.returncode == 0, added.stderr
        assert _ask_until(port, PORT_QUESTION, answered=True)
        article_id = next(i for i in load_index(directory).articles if i.startswith("umm-qasr"))
        removed = subprocess.run(
            [sys.executable, "-m", "rag", "remove", article_id, "--index", str(directory)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert removed.returncode == 0, removed.stderr
        assert _ask_until(port, PORT_QUESTION, answered=False)
        # Over HTTP: the answer is there when the request returns.
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        body = json.dumps(PORT_ARTICLE)
        connection.request("POST", "/articles", body, {**AUTH, "Content-Type": "application/json"})
        response = connection.getresponse()
        assert response.status == 201, response.read()
        response.read()
        assert _ask_until(port, PORT_QUESTION, answered=True, seconds=0.1)
        assert asking.is_alive()  # every update landed while the clients were asking
        asking.join(120)
    assert outcome["errors"] == 0 and len(outcome["times"]) > 20
