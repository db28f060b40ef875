"""Convert SQuAD v1.1 JSON into the product's article collection and Q&A JSONL formats."""

from __future__ import annotations

import argparse
import json
import random
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rag.sentences import split_sentences

_KIND_CUES = (
    ("person", r"who|whom|whose"),
    ("date", r"when|what year|which year|what date"),
    ("number", r"how many|how much|what percentage|how long|how old"),
    ("place", r"where|what country|which country|what city|which city"),
    ("why", r"why"),
)
_KIND_PATTERNS = [(kind, re.compile(rf"\b(?:{cues})\b")) for kind, cues in _KIND_CUES]


def guess_kind(question: str) -> str:
    """Guess a question's kind from its wording.

    The earliest cue in the question decides, so "When did the man who ..." is a date.

    Args:
        question: The question text.

    Returns:
        One of ``person``, ``date``, ``number``, ``place``, ``why`` or ``factoid``.
    """
    text = " ".join(question.casefold().split())
    found = [(m.start(), kind) for kind, pattern in _KIND_PATTERNS if (m := pattern.search(text))]
    return min(found)[1] if found else "factoid"


def slugify(title: str) -> str:
    """Make an ASCII identifier from a title.

    Args:
        title: An article title.

    Returns:
        Lowercase ASCII letters and digits joined by hyphens, e.g. ``sky-united-kingdom``.
    """
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")


def _article_id(title: str, taken: set[str]) -> str:
    base = slugify(title) or "article"
    slug, n = base, 1
    while slug in taken:
        n += 1
        slug = f"{base}-{n}"
    taken.add(slug)
    return slug


def _without_answers(paragraph: Mapping[str, Any]) -> str | None:
    # The paragraph less every sentence that holds one of its questions' answers; None when
    # nothing would be left.
    context = paragraph["context"]
    answers = [
        (a["answer_start"], a["answer_start"] + len(a["text"]))
        for qa in paragraph["qas"]
        for a in qa["answers"]
    ]
    kept = [
        context[start:end]
        for start, end in split_sentences(context)
        if not any(start < a_end and a_start < end for a_start, a_end in answers)
    ]
    return " ".join(kept) if kept else None


def convert(
    squad: Mapping[str, Any], *, unanswerable_share: float = 0.0, seed: int = 0
) -> tuple[list[dict], list[dict]]:
    """Convert a SQuAD v1.1 dataset into articles and Q&A records.

    Each SQuAD article becomes one article whose text is its paragraphs joined by blank lines;
    each question's gold article is that article. A question without answers is kept as
    unanswerable, with kind ``unanswerable``.

    To measure abstention on a set that has no unanswerable questions, a share of the
    paragraphs can lose every sentence that holds one of their answers: their questions stay
    on topic (the rest of the paragraph and article is still there) but are no longer
    answered, and become unanswerable. A question whose answer text still appears elsewhere
    in its article is dropped, as it may still be answered.

    Args:
        squad: The parsed SQuAD JSON.
        unanswerable_share: Share of the paragraphs (0 to 1) whose answers are removed.
        seed: Seed of the choice of those paragraphs.

    Returns:
        Articles as ``{"id", "title", "text"}`` and Q&A records as
        ``{"id", "question", "answers", "articles", "kind"}``.

    Raises:
        ValueError: If a title or question id repeats, or an answer text is not in its article.
    """
    if not 0 <= unanswerable_share <= 1:
        raise ValueError(f"unanswerable_share must be between 0 and 1, not {unanswerable_share}")
    rng = random.Random(seed)
    articles: list[dict] = []
    qas: list[dict] = []
    titles: set[str] = set()
    article_ids: set[str] = set()
    question_ids: set[str] = set()
    for entry in squad["data"]:
        title = " ".join(entry["title"].replace("_", " ").split())
        if title in titles:
            raise ValueError(f"duplicate article title {title!r}")
        titles.add(title)
        contexts, emptied = [], []
        for paragraph in entry["paragraphs"]:
            shortened = _without_answers(paragraph) if rng.random() < unanswerable_share else None
            contexts.append(shortened or paragraph["context"])
            emptied.append(shortened is not None)
        text = "\n\n".join(contexts)
        articles.append({"id": _article_id(title, article_ids), "title": title, "text": text})
        for paragraph, removed in zip(entry["paragraphs"], emptied, strict=True):
            for qa in paragraph["qas"]:
                if qa["id"] in question_ids:
                    raise ValueError(f"duplicate question id {qa['id']!r}")
                question_ids.add(qa["id"])
                answers = list(dict.fromkeys(a["text"] for a in qa["answers"]))
                if removed:
                    if any(a in text for a in answers):
                        continue  # the answer may still be read elsewhere in the article
                    answers = []
                missing = [a for a in answers if a not in text]
                if missing:
                    raise ValueError(
                        f"question {qa['id']!r}: answer {missing[0]!r} not in article {title!r}"
                    )
                qas.append(
                    {
                        "id": qa["id"],
                        "question": qa["question"],
                        "answers": answers,
                        "articles": [] if removed else [title],
                        "kind": guess_kind(qa["question"]) if answers else "unanswerable",
                    }
                )
    return articles, qas


def without_titles(
    articles: Sequence[Mapping[str, Any]], titles: Iterable[str]
) -> list[Mapping[str, Any]]:
    """The SQuAD articles whose title is not among `titles` (compared as `_` and spaces fold)."""

    def key(title: str) -> str:
        return " ".join(title.replace("_", " ").split()).casefold()

    left_out = {key(t) for t in titles}
    return [a for a in articles if key(a["title"]) not in left_out]


def write_jsonl(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> int:
    """Write rows as UTF-8 JSON lines.

    Args:
        path: The output file; its parent directories are created if needed.
        rows: JSON-serialisable mappings, one per line.

    Returns:
        The number of rows written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


def main(argv: Sequence[str] | None = None) -> int:
    """Convert a SQuAD v1.1 file into articles and Q&A JSONL files.

    Args:
        argv: Command-line arguments, without the program name; None reads sys.argv.

    Returns:
        The process exit status, 0 on success.
    """
    parser = argparse.ArgumentParser(
        prog="python -m eval.squad",
        description="Convert SQuAD v1.1 JSON into article and Q&A JSONL files.",
    )
    parser.add_argument("input", type=Path, help="SQuAD v1.1 JSON file")
    parser.add_argument("--articles", type=Path, required=True, help="output articles JSONL")
    parser.add_argument("--qa", type=Path, required=True, help="output Q&A JSONL")
    parser.add_argument(
        "--limit-articles", type=int, metavar="N", help="keep only the first N articles"
    )
    parser.add_argument(
        "--unanswerable",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="share of paragraphs (0 to 1) whose answer sentences are removed, turning their"
        " questions into on-topic unanswerable ones (default 0)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for --unanswerable")
    parser.add_argument(
        "--exclude-articles-of",
        type=Path,
        metavar="SQUAD_JSON",
        help="leave out the articles whose titles are in this SQuAD file (e.g. the articles a"
        " model was trained or tuned on)",
    )
    args = parser.parse_args(argv)
    if args.limit_articles is not None and args.limit_articles < 0:
        parser.error("--limit-articles must not be negative")
    if not 0 <= args.unanswerable <= 1:
        parser.error("--unanswerable must be a share between 0 and 1, such as 0.2")
    squad = json.loads(args.input.read_text(encoding="utf-8"))
    if args.exclude_articles_of is not None:
        seen = json.loads(args.exclude_articles_of.read_text(encoding="utf-8"))["data"]
        squad = {**squad, "data": without_titles(squad["data"], [a["title"] for a in seen])}
    if args.limit_articles is not None:
        squad = {**squad, "data": squad["data"][: args.limit_articles]}
    articles, qas = convert(squad, unanswerable_share=args.unanswerable, seed=args.seed)
    n_articles = write_jsonl(args.articles, articles)
    n_qas = write_jsonl(args.qa, qas)
    unanswerable = sum(not qa["answers"] for qa in qas)
    print(
        f"wrote {n_articles} articles to {args.articles} and {n_qas} questions"
        f" ({unanswerable} unanswerable) to {args.qa}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
