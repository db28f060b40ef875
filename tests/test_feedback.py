"""The article list's pages and filters, and readers' verdicts: stored, refused, exported."""

from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient

from eval.harness import load_qa
from rag.cli import main
from rag.feedback import FEEDBACK_FILE, feedback_questions, read_feedback, write_questions
from rag.listing import ArticleFilter, list_articles
from web.app import create_app
from web.feedback import PER_CLIENT

JSON = {"Accept": "application/json"}
HTML = {"Accept": "text/html"}
QUESTION = "What happened in event number 7?"


@pytest.fixture
def app(many_settings, many_engine):
    feedback = many_settings.index_path / FEEDBACK_FILE
    feedback.unlink(missing_ok=True)
    return create_app(many_settings, engine=many_engine, reload_seconds=None)


@pytest.fixture
def client(app):
    with TestClient(app) as client:
        yield client


def stored(settings) -> list[dict]:
    path = settings.index_path / FEEDBACK_FILE
    return read_feedback(path) if path.exists() else []


def sentence_id(citation_or_passage: dict, start: int, end: int) -> str:
    return f"{citation_or_passage['article_id']}:{start}-{end}"


def test_the_json_list_pages_through_every_article_newest_first(client):
    seen, url, pages = [], "/articles?limit=30", 0
    while url and pages < 20:
        body = client.get(url, headers=JSON).json()
        assert body["total"] == body["collection"] == 200 and body["limit"] == 30
        seen += body["articles"]
        url, pages = body["next"], pages + 1
    assert pages == 7 and len({a["id"] for a in seen}) == 200
    dates = [a["date"] for a in seen]
    assert dates == sorted(dates, reverse=True)
    last = client.get("/articles?limit=30&offset=180", headers=JSON).json()
    assert last["next"] is None and last["previous"] == "/articles?limit=30&offset=150"
    assert client.get("/articles?limit=30&offset=20", headers=JSON).json()["previous"] == (
        "/articles?limit=30"
    )


def test_filters_by_title_words_dates_and_author(client, many_settings):
    records = [json.loads(line) for line in many_settings.collection[0].read_text().splitlines()]
    want = [
        r["id"]
        for r in records
        if "rockets" in r["title"] and r["author"] == "Ann Lee" and r["date"] >= "2020-03-01"
    ][::-1]
    params = {"q": "Rocket", "author": "ann", "date_from": "2020-03-01", "limit": 200}
    body = client.get("/articles", params=params, headers=JSON).json()
    assert [a["id"] for a in body["articles"]] == want and body["total"] == len(want) > 10
    page = client.get("/articles", params={**params, "limit": 5}, headers=HTML).text
    assert f"Articles 1–5 of {len(want)} that match, of 200 in the collection" in page
    assert 'rel="next"' in page and 'rel="prev"' not in page
    assert 'value="Rocket"' in page  # the form keeps its filters


@pytest.mark.parametrize(
    ("params", "field"),
    [({"limit": 500}, "limit"), ({"offset": -1}, "offset"), ({"q": "the of"}, "q")],
)
def test_bad_paging_or_filters_say_what_to_send(client, params, field):
    response = client.get("/articles", params=params, headers=JSON)
    assert response.status_code == 422 and response.json()["detail"][0]["loc"][-1] == field


def test_dates_out_of_order_are_refused(client):
    response = client.get("/articles?date_from=2021-01-01&date_to=2020-01-01", headers=JSON)
    assert response.status_code == 422 and "swap them" in response.text


def test_rag_list_pages_and_filters_like_the_api(many_settings, many_engine, capsys):
    args = ["list", "--index", str(many_settings.index_path), "--title", "rockets"]
    assert main([*args, "--limit", "4", "--offset", "4", "--author", "SAM"]) == 0
    out, err = capsys.readouterr()
    listed = [line.split()[1] for line in out.splitlines()]
    wanted = ArticleFilter("rockets", author="SAM", limit=4, offset=4)
    assert listed == [a.id for a in list_articles(many_engine.index.articles, wanted).articles]
    assert len(listed) == 4 and "Articles 5-8 of 33 that match, of 200" in err
    assert "--offset 8" in err
    with pytest.raises(SystemExit):
        main(["list", "--limit", "500"])
    assert "1 to 200" in capsys.readouterr().err


def ask(client) -> dict:
    answer = client.get("/ask", params={"q": QUESTION}).json()
    assert answer["answered"] and answer["passages"]
    return answer


def verdict(answer: dict, **fields) -> dict:
    shown = [
        sentence_id(s["citations"][0], s["citations"][0]["start"], s["citations"][0]["end"])
        for s in answer["sentences"]
    ]
    return {"question": answer["question"], "verdict": "wrong", "shown": shown, **fields}


def test_a_wrong_verdict_with_a_chosen_quote_is_stored_as_the_index_holds_it(client, many_settings):
    answer = ask(client)
    passage = answer["passages"][0]
    start, end = passage["sentences"][1]
    body = verdict(answer, quote=sentence_id(passage, start, end), note="The second one.")
    response = client.post("/feedback", json=body)
    assert response.status_code == 201, response.text
    (line,) = stored(many_settings)
    assert (
        line["quote"]["text"] == passage["text"][start - passage["start"] : end - passage["start"]]
    )
    assert line["shown"][0]["text"] == answer["sentences"][0]["text"]
    assert line["question"] == QUESTION and line["verdict"] == "wrong" and line["answered"]
    assert line["fingerprint"] and line["note"] == "The second one."


def test_the_form_without_javascript_gets_a_page(client, many_settings):
    answer = ask(client)
    form = {"question": QUESTION, "verdict": "right", "shown": verdict(answer)["shown"]}
    response = client.post("/feedback", data=form, headers=HTML)
    assert response.status_code == 201 and "text/html" in response.headers["content-type"]
    assert "Thank you" in response.text and "rag feedback export" in response.text
    assert [r["verdict"] for r in stored(many_settings)] == ["right"]
    page = client.get("/", params={"q": QUESTION}).text
    assert '<form id="feedback"' in page and 'name="quote"' in page and 'form="feedback"' in page


@pytest.mark.parametrize(
    "change",
    [
        {"note": "<script>alert(1)</script>"},
        {"question": "Who <img src=x onerror=alert(1)> shot him?"},
        {"note": "bell \x07"},
        {"quote": "no-such-article:0-10"},
        {"quote": "a007:1-10"},  # not at sentence boundaries
        {"shown": ["a007:0-52", "a999:0-10"]},
        {"verdict": "right", "quote": "a007:0-52"},
        {"verdict": "maybe"},
        {"extra": 1},
    ],
)
def test_hostile_or_wrong_verdicts_get_422_and_store_nothing(client, many_settings, change):
    response = client.post("/feedback", json={**verdict(ask(client)), **change})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["msg"]
    assert stored(many_settings) == []


def test_a_megabyte_body_is_refused_before_it_is_read(client, many_settings):
    body = json.dumps({**verdict(ask(client)), "note": "x" * 2**20})
    response = client.post("/feedback", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and stored(many_settings) == []


def test_a_hundred_verdicts_a_second_from_one_client_are_cut_off(client, many_settings):
    body = verdict(ask(client))
    started, statuses = time.monotonic(), []
    for _ in range(100):
        statuses.append(client.post("/feedback", json=body).status_code)
        if time.monotonic() - started > 30:
            break
    assert statuses.count(201) == PER_CLIENT and statuses.count(429) == 100 - PER_CLIENT
    assert len(stored(many_settings)) == PER_CLIENT
    response = client.post("/feedback", json=body)
    assert response.status_code == 429 and int(response.headers["Retry-After"]) >= 1


def test_verdicts_become_questions_eval_reads(tmp_path):
    quote = {"text": "Two gunmen shot him.", "title": "Killing"}
    shown = [{"text": "He was 47.", "title": "Killing"}]
    records = [
        {"question": "Who shot him?", "verdict": "wrong", "shown": shown, "quote": quote},
        {"question": "How old was he?", "verdict": "right", "shown": shown, "quote": None},
        {"question": "What is the capital of France?", "verdict": "right", "shown": []},
        {"question": "Why?", "verdict": "wrong", "shown": shown, "quote": None},
        {"question": "who  shot him?", "verdict": "wrong", "shown": shown, "quote": quote},
    ]
    export = feedback_questions(records)
    assert (export.skipped, export.replaced, len(export.questions)) == (1, 1, 3)
    path = tmp_path / "qa.jsonl"
    write_questions(path, export.questions)
    qas = {qa["question"]: qa for qa in load_qa(path)}
    assert qas["who shot him?"]["answers"] == ["Two gunmen shot him."]
    assert qas["How old was he?"]["answers"] == ["He was 47."]
    assert qas["What is the capital of France?"]["kind"] == "unanswerable"
    assert qas["How old was he?"]["articles"] == ["Killing"]


def test_export_without_feedback_says_where_it_looked(many_settings, capsys):
    (many_settings.index_path / FEEDBACK_FILE).unlink(missing_ok=True)
    assert main(["feedback", "export", "out.jsonl", "--index", str(many_settings.index_path)]) == 2
    assert "No feedback in" in capsys.readouterr().err


def test_the_question_page_offers_the_newest_articles_without_example_questions(client):
    page = client.get("/").text
    assert "Ask about: the newest articles" in page and "rag serve --questions FILE" in page
    for number in (199, 198, 197):
        assert f'href="/articles/a{number}">Report {number} ' in page
