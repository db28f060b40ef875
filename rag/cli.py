"""The `rag` command: index a collection, ask questions, evaluate, serve the web app."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from embeddings import RUNTIMES
from rag.answer.question import MAX_TOP_K
from rag.build.updates import Update
from rag.errors import CollectionError, RagError
from rag.serialize import newest_first, source_label, source_numbers
from rag.service import open_engine
from rag.settings import ANSWERERS, DEFAULT_COLLECTION, INDEX_ENV, METHODS, ChunkSettings, Settings
from rag.types import Answer

BOLD, DIM, RESET = "\033[1m", "\033[2m", "\033[0m"


def _settings(args: argparse.Namespace, *, rebuild: str = "auto") -> Settings:
    paths = tuple(Path(p) for p in getattr(args, "paths", None) or ()) or (DEFAULT_COLLECTION,)
    for path in paths:
        if not path.exists():
            raise CollectionError(f"No such file or folder: {path}")
    return Settings(
        collection=paths,
        index_dir=Path(args.index) if args.index else None,
        chunking=ChunkSettings(max_tokens=args.chunk_tokens),
        retriever=r if (r := getattr(args, "retriever", None)) in METHODS else "hybrid",
        answerer=a if (a := getattr(args, "answerer", None)) in ANSWERERS else "reader",
        rebuild=rebuild,
        runtime=getattr(args, "runtime", None) or "onnx",
        milvus=getattr(args, "milvus", None),
    )


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


class _Bars:
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

    def __enter__(self) -> _Bars:
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


def _report(change) -> int:
    # Make the change with progress bars, and say what it did.
    with _Bars() as bars:
        index, update = change(bars)
    print(format_update(update, {i: a.title for i, a in index.articles.items()}))
    return 0


def _update(settings: Settings, change) -> int:
    # The same, with the model loaded first.
    from embeddings import load_encoder

    encoder = load_encoder(settings.model, runtime=settings.runtime)
    return _report(lambda bars: change(encoder, bars))


def cmd_index(args: argparse.Namespace) -> int:
    from rag.build.updates import index_in_batch, open_index

    settings = _settings(args, rebuild="always" if args.rebuild else "auto")
    if args.ray or args.snapshot or args.milvus:
        return _report(
            lambda bars: index_in_batch(
                settings,
                ray=args.ray,
                snapshot=Path(args.snapshot) if args.snapshot else None,
                milvus=args.milvus,
                progress=bars,
            )
        )
    return _update(settings, lambda encoder, bars: open_index(settings, encoder, progress=bars))


def cmd_snapshot(args: argparse.Namespace) -> int:
    from rag.build.pipeline import build_snapshot
    from rag.build.updates import current_collection

    settings = _settings(args)
    collection = current_collection(settings)
    with _Bars() as bars:
        manifest = build_snapshot(
            collection,
            Path(args.out),
            model=settings.model,
            chunking=settings.chunking,
            runtime=settings.runtime,
            ray=args.ray,
            progress=bars,
        )
    counts, build = manifest["counts"], manifest["build"]
    print(
        f"Snapshot of {counts['articles']} articles, {counts['chunks']} chunks and"
        f" {counts['sentences']} sentences in {args.out}"
        f" ({build['runner']}, {build['workers']} worker(s), {build['seconds']:.1f} s)."
    )
    for warning in collection.warnings:
        print(f"  skipped: {warning}")
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    from rag.build.updates import add_articles, read_sources

    settings = _settings(args)
    articles, warnings = read_sources(args.sources)
    if not articles:
        raise CollectionError(
            "Nothing to add: no article could be read. " + "; ".join(warnings or ["no source"])
        )
    return _update(
        settings,
        lambda encoder, bars: add_articles(
            settings, encoder, articles, skipped=warnings, progress=bars
        ),
    )


def cmd_remove(args: argparse.Namespace) -> int:
    from rag.build.updates import remove_articles

    settings = _settings(args)
    return _update(
        settings, lambda encoder, bars: remove_articles(settings, encoder, args.ids, progress=bars)
    )


def cmd_list(args: argparse.Namespace) -> int:
    from rag.index.store import load_index

    index = load_index(_settings(args).index_path)
    for article in newest_first(index.articles.values()):
        date = article.date.isoformat() if article.date else "no date   "
        print(f"{date}  {article.id}  {article.title}  [{source_label(article)}]")
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    from rag.answer.question import check_question
    from rag.serialize import answer_to_dict

    check_question(args.question)
    engine = open_engine(_settings(args, rebuild="never" if args.no_rebuild else "auto"))
    if engine.skipped:
        print(
            f"rag: note: {len(engine.skipped)} files or records of the collection were skipped;"
            " rag index lists them with the reason.",
            file=sys.stderr,
        )
    answer = engine.ask(args.question, top_k=args.top_k)
    if args.json:
        print(json.dumps(answer_to_dict(answer), ensure_ascii=False, indent=2))
    else:
        print(format_answer(answer, color=sys.stdout.isatty() and not os.environ.get("NO_COLOR")))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from eval.harness import run_from_args

    return run_from_args(args)


def cmd_bench(args: argparse.Namespace) -> int:
    from eval.benchmark import main as bench

    return bench(
        ["--questions", str(args.questions), "--runtime", args.runtime]
        + (["--no-http"] if args.no_http else [])
    )


def cmd_serve(args: argparse.Namespace) -> int:
    from web.app import serve

    serve(_settings(args), host=args.host, port=args.port, **_questions(args))
    return 0


def _questions(args: argparse.Namespace) -> dict:
    if args.questions is None:
        return {}
    if not Path(args.questions).is_file():
        raise CollectionError(f"No such file: {args.questions} (--questions)")
    return {"questions": Path(args.questions)}


def _top_k(text: str) -> int:
    if not text.strip().isdigit() or not 1 <= int(text) <= MAX_TOP_K:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1 to {MAX_TOP_K}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `rag` command."""
    parser = argparse.ArgumentParser(
        prog="rag", description="Ask questions of news articles; answers are quoted and cited."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--index",
            metavar="DIR",
            help=f"index directory (default: ${INDEX_ENV}, else one per collection in ~/.cache/rag)",
        )
        p.add_argument(
            "--chunk-tokens", type=int, default=ChunkSettings.max_tokens, help=argparse.SUPPRESS
        )
        p.add_argument(
            "--runtime",
            choices=RUNTIMES,
            default="onnx",
            help="where the models run: onnx (ONNX Runtime, the default) or torch",
        )
        p.add_argument(
            "--milvus",
            metavar="URI",
            help="search the chunks on this Milvus server (http://HOST:PORT); rag index"
            " --milvus URI loads them (needs pip install -e '.[milvus]')",
        )

    p = sub.add_parser("index", help="build or refresh the index of a collection")
    p.add_argument("paths", nargs="*", help="files or folders (default: the shipped collection)")
    p.add_argument("--rebuild", action="store_true", help="rebuild even if the index is current")
    ray_help = (
        "embed on a Ray cluster: auto, or its address HOST:PORT (needs pip install -e '.[ray]')"
    )
    p.add_argument("--ray", metavar="ADDRESS", help=ray_help)
    p.add_argument(
        "--snapshot",
        metavar="DIR",
        help="build the index from this snapshot (see rag snapshot); with --ray, write it there",
    )
    common(p)
    p.set_defaults(func=cmd_index)

    p = sub.add_parser(
        "snapshot",
        help="chunk and embed a collection into Parquet shards any engine can load",
        description="Write a collection's articles, chunks and sentences, with float16 vectors,"
        " as Parquet shards and a manifest (model, dimension, chunking, checksums). Build an"
        " index from it with: rag index --snapshot DIR.",
    )
    p.add_argument("out", metavar="DIR", help="where the snapshot goes (replaced if there)")
    p.add_argument("paths", nargs="*", help="files or folders (default: the shipped collection)")
    p.add_argument("--ray", metavar="ADDRESS", help=ray_help)
    common(p)
    p.set_defaults(func=cmd_snapshot)

    def corpus(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--corpus",
            dest="paths",
            action="append",
            metavar="PATH",
            help="the collection's files or folders (repeatable; default: the shipped one)",
        )

    p = sub.add_parser(
        "add",
        help="add articles (files, folders, or page and feed addresses) to a collection",
        description="Add articles to a collection and update its index, embedding only their"
        " text. An article with the id (or, from an address, the url) of one already there"
        " replaces it. Sources: .txt, .md, .jsonl, .html and .rss/.atom/.xml files, folders of"
        " them, and http(s):// addresses of news pages and feeds.",
    )
    p.add_argument("sources", nargs="+", metavar="PATH_OR_URL")
    corpus(p)
    common(p)
    p.set_defaults(func=cmd_add)

    p = sub.add_parser("remove", help="remove articles from a collection by id (see rag list)")
    p.add_argument("ids", nargs="+", metavar="ID")
    corpus(p)
    common(p)
    p.set_defaults(func=cmd_remove)

    p = sub.add_parser("list", help="list a collection's articles, newest first, with their ids")
    corpus(p)
    common(p)
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("ask", help="ask a question")
    p.add_argument("question")
    corpus(p)
    p.add_argument(
        "-k", "--top-k", type=_top_k, default=5, help=f"supporting passages to show (1-{MAX_TOP_K})"
    )
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
    p.add_argument("--retriever", choices=METHODS)
    p.add_argument(
        "--answerer",
        choices=ANSWERERS,
        default="reader",
        help="how answer sentences are chosen: the reader (default), or the rules or cosine"
        " baselines",
    )
    p.add_argument(
        "--no-rebuild", action="store_true", help="fail instead of rebuilding a stale index"
    )
    common(p)
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("eval", help="run a Q&A set and report retrieval and answer metrics")
    p.add_argument("--qa", help="Q&A JSON Lines file (default: eval/qa.jsonl)")
    corpus(p)
    p.add_argument(
        "--retriever", choices=(*METHODS, "all"), help="default: hybrid; all compares them"
    )
    p.add_argument(
        "--answerer",
        choices=(*ANSWERERS, "all"),
        default="all",
        help="how answer sentences are chosen: the reader (default answerer), the rules or"
        " cosine similarity; all (default) prints the three side by side",
    )
    p.add_argument("--json", dest="json_path", metavar="PATH", help="write the JSON report here")
    p.add_argument("--html", dest="html_path", metavar="PATH", help="write the HTML report here")
    p.add_argument(
        "--thresholds", help="thresholds TOML (default: eval/thresholds.toml for the default set)"
    )
    common(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("serve", help="serve the web app")
    p.add_argument("paths", nargs="*", help="files or folders (default: the shipped collection)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--questions",
        metavar="FILE",
        help="Q&A JSON Lines file whose questions about the articles are offered as examples"
        " (default: the project's eval set, about the shipped articles)",
    )
    common(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("bench", help="time the model, ask(), indexing, HTTP and start-up")
    p.add_argument("--questions", type=int, default=60, help="questions to time (default 60)")
    p.add_argument("--runtime", choices=RUNTIMES, default="onnx")
    p.add_argument("--no-http", action="store_true", help="skip the server measures")
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the `rag` command.

    Args:
        argv: Arguments (default: the process's).

    Returns:
        The exit status: 0 done, 1 a failed check (eval), 2 bad input or an unusable index.
    """
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="rag: %(levelname)s: %(message)s",
    )
    try:
        return args.func(args)
    except RagError as e:
        print(f"rag: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader of the output stopped early (`rag ask ... | head`): not an error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
