"""The request body limit answers 413 before a large body is read whole; questions past the
bound get 503 at once."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from web.limits import BodyLimit, QuestionQueue


def _app(limit: int, uploads: dict[str, int] | None = None) -> tuple[FastAPI, list[int]]:
    app = FastAPI()
    read: list[int] = []

    @app.post("/echo")
    @app.post("/upload")
    async def echo(request: Request) -> dict:
        body = await request.body()
        read.append(len(body))
        return {"bytes": len(body)}

    app.add_middleware(BodyLimit, max_bytes=limit, uploads=uploads)
    return app, read


def test_a_body_within_the_limit_passes():
    app, read = _app(100)
    response = TestClient(app).post("/echo", content=b"x" * 100)
    assert response.status_code == 200 and response.json() == {"bytes": 100}
    assert read == [100]


def test_a_declared_large_body_is_refused_unread():
    app, read = _app(100)
    response = TestClient(app).post("/echo", content=b"x" * 101)
    assert response.status_code == 413
    assert "over" in response.json()["detail"]
    assert read == []


def test_an_upload_path_has_its_own_larger_limit():
    app, read = _app(100, uploads={"/upload": 3 * 2**20})
    client = TestClient(app)
    assert client.post("/upload", content=b"x" * 5000).json() == {"bytes": 5000}
    assert client.post("/echo", content=b"x" * 5000).status_code == 413
    response = client.post("/upload", content=(b"y" * 1024 for _ in range(4 * 1024)))
    assert response.status_code == 413
    assert response.json()["detail"] == "The upload is over 3 MB. Split it into smaller files."
    assert read == [5000]


def test_a_streamed_body_is_cut_off_at_the_limit():
    app, read = _app(1000)
    sent = []

    def chunks():
        for _ in range(1000):  # 1 MB in 1 KB pieces, with no Content-Length
            sent.append(1)
            yield b"y" * 1024

    response = TestClient(app).post("/echo", content=chunks())
    assert response.status_code == 413
    assert read == []


def test_a_bad_content_length_is_a_400():
    app, read = _app(100)
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"abc", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/echo",
        "headers": [(b"content-length", b"lots")],
    }
    asyncio.run(BodyLimit(app, max_bytes=100)(scope, receive, send))
    assert sent[0]["status"] == 400
    assert b"Content-Length" in sent[1]["body"]
    assert read == []


def test_questions_past_the_bound_get_503_at_once_and_the_others_pass():
    app = FastAPI()
    release = threading.Event()
    inside: list[str] = []

    @app.get("/ask")
    def ask(q: str) -> dict:
        inside.append(q)
        release.wait(10)
        return {"q": q}

    @app.get("/articles")
    def articles() -> list:
        return []

    app.add_middleware(QuestionQueue, limit=2)
    client = TestClient(app)
    with ThreadPoolExecutor(2) as pool:
        held = [pool.submit(client.get, "/ask", params={"q": str(n)}) for n in range(2)]
        deadline = time.monotonic() + 10
        while len(inside) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        started = time.monotonic()
        refused = client.get("/ask", params={"q": "third"})
        assert time.monotonic() - started < 1  # at once, not after the others
        assert refused.status_code == 503 and int(refused.headers["Retry-After"]) >= 1
        assert "busy" in refused.json()["detail"]
        # The question page gets a page a person can read, saying when to try again.
        page = client.get("/", params={"q": "fourth"})
        assert page.status_code == 503 and page.headers["content-type"].startswith("text/html")
        assert "<h1>Busy</h1>" in page.text and "Try again in" in page.text
        assert client.get("/articles").status_code == 200  # not a question: not bounded
        release.set()
        assert [f.result().status_code for f in held] == [200, 200]
    assert client.get("/ask", params={"q": "again"}).status_code == 200  # room once they end
    assert sorted(inside[:2]) == ["0", "1"] and inside[2:] == ["again"]
