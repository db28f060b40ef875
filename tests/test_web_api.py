"""Tests of the web API and pages against the real model and the shipped collection."""

import html
import re
import time
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

import rag.examples
import web.app
from rag.engine import Engine
from rag.settings import Settings
from tests.conftest import ROOT
from web.app import create_app
from web.pages import article_blocks, marked_pieces

pytestmark = pytest.mark.model

HASHIMI = "Who shot Hisham al-Hashimi?"
HASHIMI_TITLE = "Iraq’s leading expert on paramilitary groups assassinated in Baghdad"
JSON = {"Accept": "application/json"}
HTML = {"Accept": "text/html"}


def squash(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def settings(index_dir) -> Settings:
    """The shipped collection, indexed under tmp (`index_dir` and `engine` are in conftest)."""
    return Settings(index_dir=index_dir)


@pytest.fixture(scope="module")
def client(settings, engine: Engine) -> TestClient:
    app = create_app(settings, engine=engine, questions=ROOT / "eval" / "qa.jsonl")
    with TestClient(app) as client:
        yield client


@pytest.fixture(scope="module")
def hashimi(client) -> dict:
    response = client.post("/ask", json={"question": HASHIMI})
    assert response.status_code == 200, response.text
    return response.json()


def field_of(response) -> list[str]:
    """The last part of the `loc` of every error of a 422 response."""
    assert response.status_code == 422, response.text
    return [error["loc"][-1] for error in response.json()["detail"]]


def test_known_question_is_answered_from_the_right_article(hashimi):
    assert hashimi["answered"] is True
    assert hashimi["question"] == HASHIMI
    assert 0 < hashimi["confidence"] <= 1
    first = hashimi["sentences"][0]["citations"][0]
    assert squash(first["title"]) == squash(HASHIMI_TITLE)
    assert set(hashimi["timings"]) == {"retrieve_ms", "answer_ms", "total_ms"}
    assert hashimi["passages"] and hashimi["sources"][0]["number"] == 1


def test_quotes_equal_the_article_text_at_their_offsets(client, hashimi):
    for sentence in hashimi["sentences"]:
        for citation in sentence["citations"]:
            article = client.get(f"/articles/{citation['article_id']}", headers=JSON).json()
            assert article["text"][citation["start"] : citation["end"]] == sentence["text"]
            if citation["span_start"] is not None:
                span = article["text"][citation["span_start"] : citation["span_end"]]
                assert span == sentence["span"] and span in sentence["text"]
    for passage in hashimi["passages"]:
        article = client.get(f"/articles/{passage['article_id']}", headers=JSON).json()
        assert article["text"][passage["start"] : passage["end"]] == passage["text"]
        for start, end in passage["highlights"]:
            assert passage["start"] <= start < end <= passage["end"]


def test_citation_url_opens_the_article_with_the_sentence_highlighted(client, hashimi):
    sentence = hashimi["sentences"][0]
    citation = sentence["citations"][0]
    url = urlsplit(citation["url"])
    assert url.path == f"/articles/{citation['article_id']}"
    assert url.query == f"hl={citation['start']}-{citation['end']}"
    assert url.fragment == "quote"
    page = client.get(citation["url"])
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    marked = re.search(r'<mark id="quote">(.*?)</mark>', page.text, re.S)
    assert marked and html.unescape(marked.group(1)) in sentence["text"]
    assert squash(HASHIMI_TITLE) in squash(html.unescape(page.text))


def test_article_page_anchors_every_sentence(client, engine):
    article = engine.index.articles[next(iter(engine.index.articles))]
    page = client.get(f"/articles/{article.id}", headers=HTML).text
    for ref in (s for s in engine.index.sentences if s.article_id == article.id):
        assert f'id="s-{ref.start}-{ref.end}"' in page
    assert "<mark" not in page


def test_get_ask_answers_like_post(client, hashimi):
    response = client.get("/ask", params={"q": HASHIMI})
    assert response.status_code == 200
    got = response.json()
    assert got["answered"] and got["sentences"] == hashimi["sentences"]


def test_get_ask_takes_the_same_options(client):
    response = client.get("/ask", params={"q": HASHIMI, "top_k": 2, "author": "", "date_to": ""})
    assert response.status_code == 200
    assert len(response.json()["passages"]) == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"question": ""}, "question"),
        ({"question": "   \n\t "}, "question"),
        ({"question": "x" * 1001}, "question"),
        ({}, "question"),
        ({"question": HASHIMI, "top_k": 0}, "top_k"),
        ({"question": HASHIMI, "top_k": 51}, "top_k"),
        ({"question": HASHIMI, "top_k": "many"}, "top_k"),
        ({"question": HASHIMI, "date_from": "2020-02-30"}, "date_from"),
        ({"question": HASHIMI, "date_to": "14 July 2020"}, "date_to"),
        ({"question": HASHIMI, "colour": "blue"}, "colour"),
        ({"question": "?!? ... !!"}, "question"),
        ({"question": "what is the"}, "question"),
    ],
)
def test_post_ask_validation_names_the_field(client, body, field):
    response = client.post("/ask", json=body)
    assert field_of(response) == [field]
    assert all(error["msg"] for error in response.json()["detail"])


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"q": " "}, "q"),
        ({"q": "x" * 1001}, "q"),
        ({}, "q"),
        ({"q": HASHIMI, "top_k": 100}, "top_k"),
        ({"q": HASHIMI, "date_from": "yesterday"}, "date_from"),
        ({"q": HASHIMI, "unknown": "1"}, "unknown"),
        ({"q": "..."}, "q"),
    ],
)
def test_get_ask_validation_names_the_field(client, params, field):
    assert field_of(client.get("/ask", params=params)) == [field]


def test_validation_messages_say_what_to_do_and_echo_nothing(client):
    long = "x" * 5000
    response = client.post("/ask", json={"question": long})
    assert response.status_code == 422 and long not in response.text
    blank = client.post("/ask", json={"question": " "}).json()["detail"][0]["msg"]
    assert blank.startswith("the question is empty")
    date = client.get("/ask", params={"q": HASHIMI, "date_from": "yesterday"}).json()
    assert "YYYY-MM-DD" in date["detail"][0]["msg"]


def test_core_refusal_keeps_its_message(client):
    response = client.post("/ask", json={"question": "?!?"})
    message = response.json()["detail"][0]["msg"]
    assert response.status_code == 422 and "punctuation" in message


def test_author_filter_keeps_to_that_authors_articles(client):
    question = "What exploded in Iraq?"
    unfiltered = client.get("/ask", params={"q": question}).json()
    assert {p["author"] for p in unfiltered["passages"]} != {"Ian Allen"}
    answer = client.post("/ask", json={"question": question, "author": "Ian Allen"}).json()
    assert answer["answered"]
    citations = [c for s in answer["sentences"] for c in s["citations"]]
    assert citations and {c["author"] for c in citations} == {"Ian Allen"}
    assert {p["author"] for p in answer["passages"]} == {"Ian Allen"}


def test_date_filter_keeps_to_the_range(client):
    body = {"question": "What did the Islamic State do?", "date_from": "2020-01-01", "top_k": 8}
    answer = client.post("/ask", json=body).json()
    assert answer["passages"]
    assert all(p["date"] and p["date"] >= "2020-01-01" for p in answer["passages"])


def test_filters_that_leave_no_article_give_a_reason_not_an_error(client):
    body = {"question": HASHIMI, "date_from": "1990-01-01", "date_to": "1990-12-31"}
    response = client.post("/ask", json=body)
    assert response.status_code == 200
    answer = response.json()
    assert answer["answered"] is False and answer["reason"]
    assert answer["sentences"] == [] and answer["passages"] == []


def test_unknown_article_is_404(client):
    assert client.get("/articles/no-such-article").status_code == 404
    assert client.get("/articles/no-such-article", headers=JSON).json()["detail"]
    page = client.get("/articles/no-such-article", headers=HTML)
    assert page.status_code == 404 and "text/html" in page.headers["content-type"]


@pytest.mark.parametrize("hl", ["5-2", "0-999999", "a-b", "12"])
def test_highlight_range_is_validated(client, hl):
    article_id = client.get("/articles").json()["articles"][0]["id"]
    assert client.get(f"/articles/{article_id}", params={"hl": hl}, headers=JSON).status_code == 422


def test_article_list(client):
    response = client.get("/articles")
    assert response.status_code == 200
    body = response.json()
    articles = body["articles"]
    assert len(articles) == body["total"] == body["collection"] == 15
    assert body["next"] is None and body["previous"] is None
    assert {"id", "title", "author", "date", "sections"} <= set(articles[0])
    assert len({a["id"] for a in articles}) == 15
    titles = {squash(a["title"]) for a in articles}
    assert squash(HASHIMI_TITLE) in titles
    page = client.get("/articles", headers=HTML)
    assert "text/html" in page.headers["content-type"] and page.text.count("<li>") == 15


def test_article_json_or_html_by_accept(client):
    article_id = client.get("/articles").json()["articles"][0]["id"]
    as_json = client.get(f"/articles/{article_id}", headers=JSON)
    assert as_json.headers["content-type"].startswith("application/json")
    data = as_json.json()
    assert data["id"] == article_id and data["text"] and data["paragraphs"]
    as_html = client.get(f"/articles/{article_id}", headers=HTML)
    assert as_html.headers["content-type"].startswith("text/html")
    assert html.escape(data["title"], quote=False) in as_html.text
    assert client.get(f"/articles/{article_id}").headers["content-type"].startswith("text/html")


def test_healthz(client, engine):
    response = client.get("/healthz")
    assert response.status_code == 200
    health = response.json()
    assert health["ready"] is True
    manifest = health["manifest"]
    assert manifest["model"] == engine.index.manifest["model"]
    assert manifest["chunks"] == engine.index.manifest["chunks"] > 0
    assert manifest["created_at"] and manifest["articles"] == 15
    assert health["generation"] == engine.index.manifest["generation"]


def test_question_page_answers_without_javascript(client):
    page = client.get("/", params={"q": HASHIMI})
    assert page.status_code == 200
    assert 'aria-live="polite"' in page.text and '<label for="q">' in page.text
    assert "<mark>" in page.text and 'class="cite"' in page.text
    assert f'value="{html.escape(HASHIMI)}"' in page.text


def test_questions_to_try_are_known_questions_answered_well_one_per_article(client, engine):
    from eval.harness import DEFAULT_QA, load_qa

    page = client.get("/").text
    examples = [
        html.unescape(e) for e in re.findall(r'<li><a href="/\?q=[^"]+">([^<]+)</a></li>', page)
    ]
    assert len(examples) == rag.examples.EXAMPLES
    known = {qa["question"]: qa for qa in load_qa(DEFAULT_QA)}
    cited = []
    for example in examples:
        assert example in known
        answer = engine.ask(example)
        assert answer.answered and answer.confidence >= rag.examples.EXAMPLE_CONFIDENCE
        first = answer.sentences[0].citations[0]
        assert squash(first.title) in {squash(t) for t in known[example]["articles"]}
        cited.append(engine.index.articles[first.article_id])
    assert len({a.id for a in cited}) == len(cited)
    dates = [a.date for a in cited]
    assert None not in dates and dates == sorted(dates, reverse=True)


def test_the_article_list_is_newest_first_with_date_and_source(client):
    listed = client.get("/articles", headers=JSON).json()["articles"]
    dates = [a["date"] for a in listed if a["date"]]
    assert dates == sorted(dates, reverse=True) and listed[-1]["date"] is None
    assert {a["source"] for a in listed} == {"articles.txt"}
    page = client.get("/articles", headers=HTML).text
    first = html.escape(listed[0]["title"])
    assert first in page and "articles.txt" in page
    assert f'datetime="{listed[0]["date"]}"' in page


def test_question_page_says_when_the_articles_do_not_answer(client):
    page = client.get(
        "/", params={"q": HASHIMI, "date_from": "1990-01-01", "date_to": "1990-12-31"}
    )
    assert page.status_code == 200
    assert "do not answer" in page.text and "No article matches the filters" in page.text


def test_question_page_shows_validation_errors(client):
    page = client.get("/", params={"q": HASHIMI, "top_k": "500"})
    assert page.status_code == 422 and 'role="alert"' in page.text and "top_k" in page.text


def test_question_is_escaped_on_the_page(client):
    attack = "<script>alert(1)</script>"
    page = client.get("/", params={"q": attack})
    assert attack not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert attack not in client.get("/", params={"q": f"Who shot {attack}?"}).text


def test_openapi_documents_the_api(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/ask", "/articles", "/articles/{article_id}", "/healthz"} <= set(paths)
    assert set(paths["/ask"]) == {"get", "post"}
    assert client.get("/docs").status_code == 200


def test_serve_prints_the_address(monkeypatch, capsys, settings):
    started = {}
    monkeypatch.setattr(web.app.uvicorn, "run", lambda app, **kw: started.update(kw, app=app))
    monkeypatch.setattr(web.app, "_log_progress", lambda: None)
    web.app.serve(settings, host="127.0.0.1", port=8123)
    assert "http://127.0.0.1:8123/" in capsys.readouterr().out
    assert started["port"] == 8123 and started["host"] == "127.0.0.1"
    assert started["app"].state.web.engine is None  # the index loads once it starts


def test_marked_pieces_join_to_the_text():
    text = "abcdefghij"
    pieces = marked_pieces(text, 100, [(102, 104), (None, None), (103, 106), (109, 150)])
    assert "".join(p for p, _ in pieces) == text
    assert [p for p, hit in pieces if hit] == ["cd", "ef", "j"]


def test_article_blocks_keep_the_text_and_mark_one_quote(engine):
    article = next(a for a in engine.index.articles.values() if a.byline)
    sentences = [(s.start, s.end) for s in engine.index.sentences if s.article_id == article.id]
    start, end = sentences[1][0], sentences[2][1]
    blocks = article_blocks(article, sentences, (start, end))
    pieces = [p for b in blocks for r in b.runs for p in r.pieces]
    assert "\n\n".join("".join(p.text for r in b.runs for p in r.pieces) for b in blocks) == (
        article.text
    )
    assert "".join(p.text for p in pieces if p.mark) == article.text[start:end].replace("\n", "")
    assert sum(p.first for p in pieces) == 1 and blocks[-1].byline


def test_not_ready_until_the_index_is_loaded(settings):
    client = TestClient(create_app(settings))  # no lifespan: the index never starts loading
    health = client.get("/healthz")
    assert health.status_code == 503 and health.json()["ready"] is False
    assert health.json()["status"] == "loading"
    response = client.post("/ask", json={"question": HASHIMI})
    assert response.status_code == 503 and "loading" in response.json()["detail"]
    assert response.headers["retry-after"]
    assert client.get("/").status_code == 200
    assert client.get("/", params={"q": HASHIMI}).status_code == 503


def test_an_index_that_cannot_be_opened_is_reported(engine, tmp_path):
    app = create_app(Settings(index_dir=tmp_path / "empty", rebuild="never"))
    with TestClient(app) as client:
        deadline = time.monotonic() + 60
        while (health := client.get("/healthz").json())["status"] == "loading":
            assert time.monotonic() < deadline, "the index never finished loading"
            time.sleep(0.1)
        response = client.get("/ask", params={"q": HASHIMI})
    assert health["ready"] is False and health["status"] == "failed"
    assert "No index" in health["error"]
    assert response.status_code == 503 and "No index" in response.json()["detail"]


def test_docs_page_uses_only_local_assets(client):
    page = client.get("/docs")
    assert page.status_code == 200
    assert "cdn" not in page.text.lower()
    assert client.get("/swagger-ui/swagger-ui-bundle.js").status_code == 200
    assert client.get("/openapi.json").json()["paths"]["/ask"]


def test_dates_out_of_order_are_a_422_naming_both(client):
    response = client.post(
        "/ask",
        json={
            "question": "Who shot al-Hashimi?",
            "date_from": "2020-02-01",
            "date_to": "2020-01-01",
        },
    )
    assert response.status_code == 422
    assert "date_from" in response.text and "date_to" in response.text


def test_blank_question_message_says_it_is_empty(client):
    response = client.post("/ask", json={"question": "   "})
    assert response.status_code == 422 and "empty" in response.text


@pytest.mark.parametrize(
    ("body", "content_type", "status", "words"),
    [
        (b'{"question": "Who\\u0000 shot him?"}', "application/json", 422, "question"),
        (b'{"question": "Who shot \xff\xfe him?"}', "application/json", 400, "UTF-8"),
        (b'{"question": ' + b"[" * 5000 + b"]" * 5000 + b"}", "application/json", 400, "JSON"),
        (b'{"question": "' + b"why " * 25_000 + b'"}', "application/json", 413, "KiB"),
        (b'{"question": "Who shot him?", "top_k": 1000000000}', "application/json", 422, "top_k"),
        (b'{"question": "Who shot him?", "top_k": -3}', "application/json", 422, "top_k"),
        (b"question=Who", "application/x-www-form-urlencoded", 422, ""),
    ],
)
def test_hostile_bodies_get_a_4xx_with_a_message(client, body, content_type, status, words):
    response = client.post("/ask", content=body, headers={"Content-Type": content_type})
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert detail and words in str(detail)


def test_a_long_question_in_the_query_string_gets_a_422(client):
    response = client.get("/ask", params={"q": "why " * 1_500})
    assert response.status_code == 422
    assert "1000" in str(response.json()["detail"])


def test_a_missing_or_unknown_field_is_named_with_what_to_do(client):
    response = client.post("/ask", json={"q": "Who shot Hisham al-Hashimi?"})
    messages = {e["loc"][-1]: e["msg"] for e in response.json()["detail"]}
    assert messages["question"] == "'question' is required; add it to the request (see /docs)"
    assert messages["q"] == "'q' is not a field of this request; see /docs for the fields"


@pytest.mark.parametrize("answered_at", [0.0, 1.0])
def test_an_answer_tells_its_band_in_words(settings, engine, answered_at):
    from dataclasses import replace

    from rag.answer.bands import WORDING

    # The same answer, told as sure (edge 0) or as probable (edge 1: nothing is that sure).
    selector = replace(engine.selector, answered_at=answered_at)
    told = Engine(engine.index, engine.encoder, reader=engine.reader, selector=selector)
    with TestClient(create_app(settings, engine=told)) as client:
        answer = client.post("/ask", json={"question": HASHIMI}).json()
        page = html.unescape(client.get("/", params={"q": HASHIMI}, headers=HTML).text)
    band = "answered" if answered_at == 0.0 else "probably"
    assert answer["answered"] and answer["band"] == band
    assert (WORDING["probably"] in page) == (band == "probably")
    assert f"band-{band}" in page


def test_a_refusal_is_told_as_not_sure_with_the_closest_passages(settings, engine):
    from dataclasses import replace

    from rag.answer.bands import WORDING

    # A refusal step that lets nothing through.
    selector = replace(engine.selector, threshold=1.01, refusal_threshold=1.01)
    told = Engine(engine.index, engine.encoder, reader=engine.reader, selector=selector)
    with TestClient(create_app(settings, engine=told)) as client:
        answer = client.post("/ask", json={"question": HASHIMI}).json()
        page = html.unescape(client.get("/", params={"q": HASHIMI}, headers=HTML).text)
    assert not answer["answered"] and answer["band"] == "not sure" and answer["passages"]
    assert "Not sure" in page and WORDING["not sure"] in page and "Closest passages" in page
