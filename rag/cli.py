"""The `rag` command: index a collection, ask questions, evaluate, serve the web app."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from embeddings import RUNTIMES
from rag.chunking import ChunkSettings
from rag.errors import CollectionError, RagError
from rag.ingest import DEFAULT_COLLECTION
from rag.questions import MAX_TOP_K
from rag.retrieval import METHODS
from rag.serialize import source_numbers
from rag.settings import ANSWERERS, INDEX_ENV, Settings
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
        if answer.passages:
            lines.append("Closest passages:")
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
    lines.append("Passages:")
    for p in answer.passages:
        date = p.article.date.isoformat() if p.article.date else "no date"
        snippet = " ".join(p.chunk.text.split())
        snippet = snippet if len(snippet) <= 300 else snippet[:297] + "..."
        lines.append(f"  {p.rank}. {p.article.title} ({date}) score {p.score:.3f}")
        lines.append(f"     {DIM if color else ''}{snippet}{RESET if color else ''}")
    return "\n".join(lines)


def cmd_index(args: argparse.Namespace) -> int:
    from embeddings import load_encoder
    from rag.engine import open_index

    settings = _settings(args, rebuild="always" if args.rebuild else "auto")
    index, warnings = open_index(settings, load_encoder(settings.model, runtime=settings.runtime))
    m = index.manifest
    embedded = m.get("embedded")
    print(
        f"Index in {settings.index_path}: {m['collection']['articles']} articles,"
        f" {m['chunks']} chunks, {m['sentences']} sentences ({m['model']}, built {m['created_at']}"
        + (
            f" in {m['build_seconds']:.1f} s, embedding {embedded['chunks']} chunks and"
            f" {embedded['sentences']} sentences; the rest kept from the index it replaced"
            if embedded
            else ""
        )
        + ")"
        + (
            f"; {len(warnings)} files or records skipped (see the warnings above)"
            if warnings
            else ""
        )
    )
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    from rag.engine import Engine
    from rag.questions import check_question
    from rag.serialize import answer_to_dict

    check_question(args.question)
    engine = Engine.open(_settings(args, rebuild="never" if args.no_rebuild else "auto"))
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

    serve(_settings(args), host=args.host, port=args.port)
    return 0


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

    p = sub.add_parser("index", help="build or refresh the index of a collection")
    p.add_argument("paths", nargs="*", help="files or folders (default: the shipped collection)")
    p.add_argument("--rebuild", action="store_true", help="rebuild even if the index is current")
    common(p)
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("ask", help="ask a question")
    p.add_argument("question")
    p.add_argument(
        "--corpus", dest="paths", action="append", metavar="PATH", help="collection (repeatable)"
    )
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
    p.add_argument(
        "--corpus", dest="paths", action="append", metavar="PATH", help="collection (repeatable)"
    )
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
