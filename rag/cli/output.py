"""What the `rag` command prints: answers, what a build or update did, progress bars."""

from __future__ import annotations

from rag.answer.bands import WORDING
from rag.build.updates import Update
from rag.listing import ArticlePage
from rag.serialize import source_numbers
from rag.types import Answer

BOLD, DIM, RESET = "\033[1m", "\033[2m", "\033[0m"


def _mark(text: str, start: int, end: int, color: bool) -> str:
    left, right = (BOLD, RESET) if color else ("[[", "]]")
    return f"{text[:start]}{left}{text[start:end]}{right}{text[end:]}"


def format_answer(answer: Answer, *, color: bool = False) -> str:
    """Render an answer for a terminal: the quotes with the span marked, then the sources.

    Args:
        answer: The answer.
        color: Use bold for the span (else `[[...]]`).

    Returns:
        Printable text.
    """
    lines: list[str] = []
    numbers = source_numbers(answer)
    sources: dict[str, str] = {}

    if not answer.answered:
        lines.append(answer.reason or "The articles do not answer this question.")
    if answer.band in ("probably", "not sure"):
        lines.append(WORDING[answer.band])
    for sentence in answer.sentences:
        first = sentence.citations[0]
        text = sentence.text
        if first.span_start is not None:
            text = _mark(text, first.span_start - first.start, first.span_end - first.start, color)
        for c in sentence.citations:
            date = c.date.isoformat() if c.date else "no date"
            sources.setdefault(c.article_id, f"{c.title} ({date})")
        marks = "".join(f"[{numbers[c.article_id]}]" for c in sentence.citations)
        lines.append(f"- {text} {marks}")
    if sources:
        lines.append("")
        lines.append("Sources:")
        lines += [f"  [{numbers[a]}] {label}" for a, label in sources.items()]
    lines.append("")
    lines.append(f"Confidence {answer.confidence:.2f} · {answer.timings.total_ms:.0f} ms")
    lines.append("Passages:" if answer.answered else "Closest passages:")
    for p in answer.passages:
        date = p.article.date.isoformat() if p.article.date else "no date"
        snippet = " ".join(p.chunk.text.split())
        snippet = snippet if len(snippet) <= 300 else snippet[:297] + "..."
        lines.append(f"  {p.rank}. {p.article.title} ({date}) score {p.score:.3f}")
        lines.append(f"     {DIM if color else ''}{snippet}{RESET if color else ''}")
    return "\n".join(lines)


class Bars:
    """Progress bars on the terminal for embedding, shown only when it takes a while."""

    def __init__(self) -> None:
        self.stage: str | None = None
        self.bar = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        from tqdm import tqdm

        if stage != self.stage:
            self.close()
            self.stage = stage
            unit = " shards" if stage == "shards" else " texts"
            self.bar = tqdm(
                total=total, desc=f"embedding {stage}", unit=unit, delay=1.0, leave=False
            )
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> Bars:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _listed(ids: tuple[str, ...], titles: dict[str, str], limit: int = 10) -> str:
    shown = [f"{i} ({titles[i]})" if i in titles else i for i in ids[:limit]]
    more = f", and {len(ids) - limit} more" if len(ids) > limit else ""
    return ", ".join(shown) + more


def format_update(update: Update, titles: dict[str, str]) -> str:
    """Say what a build or update did: the articles added, updated and removed, what was
    skipped and why, the near-duplicates found, what was embedded and how long it took.

    Args:
        update: What was done.
        titles: Article titles by id, to name the articles.

    Returns:
        Printable lines.
    """
    lines = [f"Index in {update.directory}: {update.articles} articles, {update.chunks} chunks."]
    if not update.built:
        lines.append("  It was up to date: nothing to embed.")
    for label, ids in (
        ("Added", update.added),
        ("Updated", update.updated),
        ("Removed", update.removed),
    ):
        if ids:
            lines.append(f"  {label} {len(ids)}: {_listed(ids, titles)}")
    if update.built:
        lines.append(f"  Unchanged {update.unchanged}.")
    if held := tuple(i for i in update.left_out if i not in update.removed):
        lines.append(
            f"  Left out {len(held)}, removed earlier with rag remove (rag add FILE brings one"
            f" back): {_listed(held, titles)}"
        )
    if update.skipped:
        lines.append(f"  Skipped {len(update.skipped)}:")
        lines += [f"    {reason}" for reason in update.skipped]
    if update.duplicates:
        lines.append(f"  Near-duplicates {len(update.duplicates)} (answers cite each copy once):")
        lines += [
            f"    {titles.get(d.first, d.first)!r} and {titles.get(d.second, d.second)!r},"
            f" {d.similarity:.0%} of the shorter one's text shared"
            for d in update.duplicates
        ]
    if update.built and update.snapshot is not None:
        lines.append(
            f"  Embedded {update.embedded_chunks} chunks and {update.embedded_sentences}"
            f" sentences; index made from the snapshot in {update.snapshot}"
            f" in {update.seconds:.1f} s."
        )
    elif update.built:
        kept = update.chunks - update.embedded_chunks
        lines.append(
            f"  Embedded {update.embedded_chunks} chunks and {update.embedded_sentences}"
            " sentences"
            + (f" ({kept} chunks kept from the index it replaced)" if kept else "")
            + f" in {update.seconds:.1f} s."
        )
    return "\n".join(lines)


def format_listed(page: ArticlePage, filtered: bool) -> str:
    """Say which articles a page of `rag list` shows, and how to see the next.

    Args:
        page: The page.
        filtered: Whether filters were given.

    Returns:
        One line.
    """
    of = f" that match, of {page.collection:,} in the collection" if filtered else ""
    if not page.articles:
        return f"No article to show: {page.total:,}{of}, and the page starts at {page.offset:,}."
    shown = (
        f"Articles {page.offset + 1:,}-{page.offset + len(page.articles):,} of {page.total:,}{of}"
    )
    more = f"; the next page: --offset {page.next_offset}" if page.next_offset is not None else ""
    return f"{shown}, newest first{more}."
