"""Pages and feeds fetched over HTTP from a server on 127.0.0.1 that the tests start."""

from __future__ import annotations

import http.server
import threading
import time

import pytest

from rag.cli import main
from rag.errors import FetchError
from rag.index.store import load_index
from rag.ingest.fetch import MAX_REDIRECTS, fetch, is_url
from tests.test_pages import BOILERPLATE, PAGE, RSS


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves the test routes: a page, a feed, and each way a download can go wrong."""

    def log_message(self, *args) -> None:  # quiet
        pass

    def _send(self, status: int, body: bytes, content_type: str | None, **headers) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - the standard library's name
        path = self.path
        if path == "/page":
            self._send(200, PAGE.encode(), "text/html; charset=utf-8")
        elif path == "/feed":
            self._send(200, RSS, "application/rss+xml")
        elif path == "/untyped-feed":
            self._send(200, RSS, None)
        elif path == "/moved":
            self._send(301, b"", "text/plain", Location="/page")
        elif path.startswith("/loop"):
            number = int(path.removeprefix("/loop") or 0)
            self._send(302, b"", "text/plain", Location=f"/loop{number + 1}")
        elif path == "/image":
            self._send(200, b"\x89PNG\r\n" + b"\x00" * 64, "image/png")
        elif path == "/big":
            self._send(200, b"<html>" + b"x" * 5000, "text/html")
        elif path == "/big-unannounced":
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            for _ in range(50):
                self.wfile.write(b"<p>" + b"x" * 1000 + b"</p>")
        elif path == "/slow":
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            for _ in range(40):
                self.wfile.write(b"<p>drip</p>")
                self.wfile.flush()
                time.sleep(0.1)
        else:
            self._send(404, b"not found", "text/plain")


class Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        pass  # a client that stops reading a refused body is expected here


@pytest.fixture(scope="module")
def server():
    httpd = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_addresses_are_told_from_paths():
    assert is_url("https://example.org/a") and is_url("HTTP://example.org")
    assert not is_url("news/page.html") and not is_url("ftp://example.org/a")


def test_a_page_and_a_feed_are_fetched_and_typed(server):
    page = fetch(f"{server}/page")
    assert (page.suffix, page.url) == (".html", f"{server}/page") and b"Kata'ib" in page.data
    assert fetch(f"{server}/feed").suffix == ".xml"
    assert fetch(f"{server}/untyped-feed").suffix == ".xml"  # told by its first bytes
    assert fetch(f"{server}/moved").url == f"{server}/page"


@pytest.mark.parametrize(
    ("path", "options", "message"),
    [
        ("/missing", {}, "answered 404"),
        ("/image", {}, "sent image/png"),
        ("/loop", {}, f"more than {MAX_REDIRECTS} redirects"),
        ("/big", {"max_bytes": 1000}, "over 0 MB"),
        ("/big-unannounced", {"max_bytes": 10_000}, "over 0 MB"),
        ("/slow", {"total_seconds": 0.5}, "took over 0 s"),
    ],
)
def test_what_cannot_be_fetched_is_named_with_the_reason(server, path, options, message):
    started = time.monotonic()
    with pytest.raises(FetchError, match=message) as caught:
        fetch(f"{server}{path}", **options)
    assert str(caught.value).startswith(f"{server}{path}: ")
    assert time.monotonic() - started < 3.5


def test_a_closed_port_fails_fast_with_the_address():
    with pytest.raises(FetchError, match="127.0.0.1:9/"):
        fetch("http://127.0.0.1:9/")


@pytest.mark.model
def test_rag_add_takes_addresses_and_skips_the_bad_ones_by_name(
    server, index_dir, engine, tmp_path, capsys
):
    import shutil

    directory = tmp_path / "index"
    shutil.copytree(index_dir, directory)
    status = main(
        ["add", f"{server}/page", f"{server}/feed", f"{server}/image", "--index", str(directory)]
    )
    out = capsys.readouterr().out
    assert status == 0, out
    assert "Added 3:" in out and "Skipped 1:" in out and f"{server}/image: skipped" in out
    index = load_index(directory)
    page = next(a for a in index.articles.values() if a.title.startswith("Drone strike"))
    assert page.url == f"{server}/page"
    assert not any(p.lower() in page.text.lower() for p in BOILERPLATE)
    assert {a.url for a in index.articles.values()} >= {
        "https://example.org/erbil",
        "https://example.org/basra",
    }
    # Fetching the page again changes nothing.
    assert main(["add", f"{server}/page", "--index", str(directory)]) == 0
    out = capsys.readouterr().out
    assert "Added" not in out and "Embedded 0 chunks" in out

    assert main(["add", f"{server}/image", "--index", str(directory)]) == 2
    assert "Nothing to add" in capsys.readouterr().err
