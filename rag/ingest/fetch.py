"""Fetch news pages and feeds over HTTP(S), bounded in time, size and redirects."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from rag.errors import FetchError
from rag.ingest.files import MAX_FILE_BYTES

CONNECT_SECONDS = 10.0
READ_SECONDS = 20.0
TOTAL_SECONDS = 60.0
MAX_REDIRECTS = 5
USER_AGENT = "rag-news/0.1 (question answering over news articles)"
ACCEPT = (
    "text/html, application/xhtml+xml, application/rss+xml, application/atom+xml,"
    " application/xml;q=0.9, text/xml;q=0.9"
)
HTML_TYPES = {"text/html", "application/xhtml+xml"}
FEED_TYPES = {
    "application/rss+xml",
    "application/atom+xml",
    "application/rdf+xml",
    "application/xml",
    "text/xml",
}
# Types servers give anything: the first bytes tell a page from a feed.
UNTYPED = {"", "application/octet-stream", "text/plain", "binary/octet-stream"}
_URL = re.compile(r"^https?://", re.IGNORECASE)


@dataclass(frozen=True)
class Fetched:
    """What an address gave: the final address after redirects, its body and its kind."""

    url: str
    data: bytes
    suffix: str  # ".html" or ".xml": how `rag.ingest.files.read_data` should read it


def is_url(text: str) -> bool:
    """Whether a command-line source is an HTTP(S) address rather than a path."""
    return bool(_URL.match(text))


def _suffix(content_type: str, head: bytes, url: str) -> str:
    kind = content_type.split(";")[0].strip().lower()
    if kind in HTML_TYPES:
        return ".html"
    if kind in FEED_TYPES or kind.endswith("+xml"):
        return ".xml"
    sniff = head.lstrip()[:512].lower()
    if kind in UNTYPED:
        if re.search(rb"<(rss|feed|rdf:rdf)[\s>]", sniff):
            return ".xml"
        if sniff.startswith((b"<!doctype html", b"<html")):
            return ".html"
    raise FetchError(
        f"{url}: skipped, the server sent {kind or 'no content type'}; rag add takes HTML"
        " pages and RSS or Atom feeds"
    )


def fetch(
    url: str,
    *,
    max_bytes: int = MAX_FILE_BYTES,
    total_seconds: float = TOTAL_SECONDS,
    transport=None,
) -> Fetched:
    """Download a news page or feed.

    Args:
        url: An http:// or https:// address.
        max_bytes: The most the body may hold; a larger one is refused as it streams in.
        total_seconds: The most the whole download may take.
        transport: An httpx transport (for tests); the network otherwise.

    Returns:
        The final address, the body and how to read it.

    Raises:
        FetchError: A bad address, a network error or timeout, an error status, too many
            redirects, a body over the limit, or a type other than a page or a feed; the
            message names the address and the reason.
    """
    import httpx

    if not is_url(url):
        raise FetchError(f"{url}: not an http:// or https:// address")
    timeout = httpx.Timeout(READ_SECONDS, connect=CONNECT_SECONDS)
    headers = {"User-Agent": USER_AGENT, "Accept": ACCEPT}
    deadline = time.monotonic() + total_seconds
    try:
        with (
            httpx.Client(
                timeout=timeout,
                follow_redirects=True,
                max_redirects=MAX_REDIRECTS,
                headers=headers,
                transport=transport,
            ) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code >= 400:
                raise FetchError(
                    f"{url}: skipped, the server answered {response.status_code}"
                    f" {response.reason_phrase}"
                )
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise FetchError(_too_large(url, max_bytes))
            body = bytearray()
            for block in response.iter_bytes():
                body += block
                if len(body) > max_bytes:
                    raise FetchError(_too_large(url, max_bytes))
                if time.monotonic() > deadline:
                    raise FetchError(
                        f"{url}: skipped, the download took over {total_seconds:.0f} s"
                    )
            final = str(response.url)
            suffix = _suffix(response.headers.get("content-type", ""), bytes(body[:1024]), url)
    except httpx.TooManyRedirects as e:
        raise FetchError(f"{url}: skipped, more than {MAX_REDIRECTS} redirects") from e
    except httpx.TimeoutException as e:
        raise FetchError(f"{url}: skipped, the server did not answer in time ({e})") from e
    except httpx.HTTPError as e:
        raise FetchError(f"{url}: skipped, {type(e).__name__}: {e}") from e
    return Fetched(final, bytes(body), suffix)


def _too_large(url: str, max_bytes: int) -> str:
    return f"{url}: skipped, the body is over {max_bytes // 2**20} MB"
