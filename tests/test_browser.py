"""Browser tests: a real uvicorn server driven by Chromium, with JavaScript on and off."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from eval.benchmark import stop

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(f"no Chromium at {CHROMIUM}", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is missing")
expect = sync_api.expect

pytestmark = [pytest.mark.browser, pytest.mark.model]

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "test-output"
STARTUP_SECONDS = 120
HASHIMI = "Who shot Hisham al-Hashimi?"
HASHIMI_TITLE = "Iraq’s leading expert on paramilitary groups assassinated in Baghdad"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def health(base: str) -> dict | None:
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:
            return json.load(response)
    except urllib.error.HTTPError as e:
        return json.load(e)
    except OSError:
        return None


@pytest.fixture(scope="module")
def server(tmp_path_factory, index_dir):
    """The app under uvicorn (`--factory web.app:default_app`), its index under tmp (the
    session's, from conftest: built here if no other test has built it yet)."""
    workdir = tmp_path_factory.mktemp("server")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = workdir / "server.log"
    env = {
        **os.environ,
        "RAG_INDEX_DIR": str(index_dir),
        "RAG_QUESTIONS": str(ROOT / "eval" / "qa.jsonl"),
        "PYTHONUNBUFFERED": "1",
    }
    command = [sys.executable, "-m", "uvicorn", "--factory", "web.app:default_app"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    with log_path.open("w") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not (state := health(base)) or not state["ready"]:
            if process.poll() is not None or (state and state["status"] == "failed"):
                pytest.fail(f"the server did not start:\n{log_path.read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"not ready after {STARTUP_SECONDS} s:\n{log_path.read_text()}")
            time.sleep(0.5)
        yield base
    finally:
        stop(process)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield browser
        browser.close()


def ask(page, base: str) -> None:
    """Type the known question, submit it and check the answer and the address."""
    page.get_by_label("Your question").fill(HASHIMI)
    page.get_by_role("button", name="Ask").click()
    answer = page.locator("#answer")
    expect(answer.locator(".quote mark").first).to_be_visible(timeout=15_000)
    expect(answer.get_by_role("heading", name="Answer", exact=True)).to_be_visible()
    expect(answer.locator(".sources")).to_contain_text(HASHIMI_TITLE)
    expect(answer.locator(".passage").first).to_be_visible()
    expect(page).to_have_url(f"{base}/?q=Who+shot+Hisham+al-Hashimi%3F")


def follow_citation(page) -> None:
    """Open the first citation and check that the quote is highlighted and in view."""
    answer = page.locator("#answer")
    quoted = " ".join(answer.locator(".quote p").first.inner_text().split())
    answer.locator("a.cite").first.click()
    page.wait_for_url("**/articles/**")
    assert "#quote" in page.url and "hl=" in page.url
    expect(page.get_by_role("heading", level=1)).to_have_text(HASHIMI_TITLE)
    mark = page.locator("mark#quote")
    expect(mark).to_be_visible()
    expect(mark).to_be_in_viewport()
    marked = " ".join(" ".join(page.locator(".doc-body mark").all_inner_texts()).split())
    assert marked and marked in quoted


def test_ask_and_follow_a_citation_with_javascript(server, browser):
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{server}/")
    page.evaluate("window.notReloaded = true")
    ask(page, server)
    assert page.evaluate("window.notReloaded === true"), "asking reloaded the page"
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "answer.png"), full_page=True)
    follow_citation(page)
    page.go_back()
    expect(page).to_have_url(f"{server}/?q=Who+shot+Hisham+al-Hashimi%3F")
    expect(page.locator("#answer .quote mark").first).to_be_visible()
    assert not errors
    context.close()


def test_ask_and_follow_a_citation_without_javascript(server, browser):
    context = browser.new_context(
        java_script_enabled=False, viewport={"width": 1200, "height": 800}
    )
    page = context.new_page()
    page.goto(f"{server}/")
    ask(page, server)
    follow_citation(page)
    context.close()


def test_no_answer_is_said_plainly(server, browser):
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{server}/")
    page.get_by_text("Filters").click()
    page.get_by_label("Published from").fill("1990-01-01")
    page.get_by_label("Published until").fill("1990-12-31")
    page.get_by_label("Your question").fill(HASHIMI)
    page.get_by_label("Your question").press("Enter")
    answer = page.locator("#answer")
    expect(answer).to_contain_text("do not answer", timeout=15_000)
    expect(answer).to_contain_text("No article matches the filters")
    assert "date_from=1990-01-01" in page.url
    context.close()


def test_question_text_stays_text(server, browser):
    context = browser.new_context()
    page = context.new_page()
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    attack = "<img src=x onerror=alert(1)> <script>alert(2)</script> Hashimi"
    page.goto(f"{server}/")
    page.get_by_label("Your question").fill(attack)
    page.get_by_role("button", name="Ask").click()
    expect(page.locator("#answer .answer")).to_be_visible(timeout=15_000)
    page.reload()
    expect(page.get_by_label("Your question")).to_have_value(attack)
    assert page.locator("#answer img, #answer script").count() == 0
    assert not dialogs
    context.close()


def test_example_question_and_keyboard(server, browser):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    page.goto(f"{server}/")
    example = page.locator(".examples a").first
    expect(example).to_be_visible()
    example.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#answer .answer")).to_be_visible(timeout=15_000)
    assert "q=" in page.url
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, "the page scrolls sideways on a phone"
    context.close()


def test_api_docs_render_offline(server, browser):
    page = browser.new_page()
    page.goto(f"{server}/docs")
    page.wait_for_selector("text=/ask", timeout=20_000)
    assert "Unable to render" not in page.content()
    page.close()


HOSTILE = {
    "id": "hostile",
    "title": "Rockets <script>window.pwned = 'title'</script> hit the base",
    "author": "<img src=x onerror=\"window.pwned = 'author'\">",
    "date": "2020-03-11",
    "text": (
        "Militiamen fired rockets at the Taji base on Wednesday night, killing two soldiers."
        " <img src=x onerror=\"window.pwned = 'img'\"> A statement read"
        " <script>window.pwned = 'script'</script> and linked"
        " <a href=\"javascript:window.pwned = 'link'\">to a page</a>.\n\n"
        "The base houses <b onmouseover=\"window.pwned = 'hover'\">coalition troops</b>."
    ),
}


def test_hostile_article_text_is_inert_in_every_page(browser, tmp_path):
    from eval.benchmark import serving

    collection = tmp_path / "hostile.jsonl"
    collection.write_text(json.dumps(HOSTILE) + "\n", encoding="utf-8")
    with serving(tmp_path / "index", paths=[collection]) as (_, port, _):
        base = f"http://127.0.0.1:{port}"
        context = browser.new_context()
        page = context.new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        pages = [
            f"{base}/?q=Who+fired+rockets+at+the+Taji+base%3F",
            f"{base}/articles/hostile",
            f"{base}/articles/hostile?hl=0-80#quote",
            f"{base}/articles",
        ]
        for url in pages:
            response = page.goto(url)
            assert response.status == 200, url
            csp = response.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "unsafe-inline" not in csp
            assert response.headers["x-content-type-options"] == "nosniff"
            for link in page.locator("a").all():
                assert not (link.get_attribute("href") or "").startswith("javascript:")
            page.mouse.move(10, 10)
            page.locator("body").hover()
            assert page.evaluate("window.pwned === undefined"), url
        page.goto(f"{base}/articles/hostile")
        expect(page.get_by_role("heading", level=1)).to_contain_text("<script>")
        expect(page.locator("body")).to_contain_text("onerror=")
        assert not dialogs
        context.close()
