"""Articles to add to a collection, read from files, folders and web addresses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from rag.errors import FetchError
from rag.ingest.files import expand_paths, read_data, read_file
from rag.types import Article


def read_sources(sources: Sequence[str]) -> tuple[list[Article], list[str]]:
    """Read articles from files, folders and http(s) addresses of pages and feeds.

    Args:
        sources: Paths and addresses, as typed.

    Returns:
        (the articles, what was skipped and why: a missing path, an address that failed, a
        file that holds no article...).
    """
    from rag.ingest.fetch import fetch, is_url

    articles: list[Article] = []
    warnings: list[str] = []
    for source in sources:
        if is_url(source):
            try:
                fetched = fetch(source)
            except FetchError as e:
                warnings.append(str(e))
                continue
            found = read_data(fetched.data, fetched.suffix, fetched.url, warnings)
            # A page that does not name its own address gets the one it was fetched from.
            articles += [a if a.url else replace(a, url=fetched.url) for a in found]
        elif not Path(source).exists():
            warnings.append(f"{source}: skipped, no such file or folder")
        else:
            for path in expand_paths([source], warnings):
                articles += read_file(path, warnings)
    return articles, warnings
