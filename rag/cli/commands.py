"""The `rag` commands that index a collection, change it, list it and ask it questions."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from rag.cli.output import Bars, format_answer, format_listed, format_update
from rag.errors import CollectionError
from rag.serialize import source_label
from rag.service import open_engine
from rag.settings import ANSWERERS, DEFAULT_COLLECTION, METHODS, ChunkSettings, Settings


def settings_from_args(args: argparse.Namespace, *, rebuild: str = "auto") -> Settings:
    """The settings a command's arguments name (the shipped collection when no path is given).

    Raises:
        CollectionError: A path given does not exist.
    """
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
        encoder_runtime=getattr(args, "encoder_runtime", None),
        milvus=getattr(args, "milvus", None),
    )


def _report(change) -> int:
    # Make the change with progress bars, and say what it did.
    with Bars() as bars:
        index, update = change(bars)
    print(format_update(update, {i: a.title for i, a in index.articles.items()}))
    return 0


def _update(settings: Settings, change) -> int:
    # The same, with the model loaded first.
    from embeddings import load_encoder

    encoder = load_encoder(settings.model, runtime=settings.encoder_backend)
    return _report(lambda bars: change(encoder, bars))


def cmd_index(args: argparse.Namespace) -> int:
    from rag.build.updates import index_in_batch, open_index

    settings = settings_from_args(args, rebuild="always" if args.rebuild else "auto")
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

    settings = settings_from_args(args)
    collection = current_collection(settings)
    with Bars() as bars:
        manifest = build_snapshot(
            collection,
            Path(args.out),
            model=settings.model,
            chunking=settings.chunking,
            runtime=settings.encoder_backend,
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
    from rag.build.sources import read_sources
    from rag.build.updates import add_articles

    settings = settings_from_args(args)
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

    settings = settings_from_args(args)
    return _update(
        settings, lambda encoder, bars: remove_articles(settings, encoder, args.ids, progress=bars)
    )


def cmd_list(args: argparse.Namespace) -> int:
    from rag.index.store import load_index
    from rag.listing import ArticleFilter, list_articles

    index = load_index(settings_from_args(args).index_path)
    wanted = ArticleFilter(
        args.title, args.date_from, args.date_to, args.author, args.limit, args.offset
    )
    page = list_articles(index.articles, wanted)
    for article in page.articles:
        date = article.date.isoformat() if article.date else "no date   "
        print(f"{date}  {article.id}  {article.title}  [{source_label(article)}]")
    print(format_listed(page, wanted.filtered), file=sys.stderr)
    return 0


def cmd_feedback(args: argparse.Namespace) -> int:
    from rag.feedback import FEEDBACK_FILE, feedback_questions, read_feedback, write_questions

    source = settings_from_args(args).index_path / FEEDBACK_FILE
    export = feedback_questions(read_feedback(source))
    write_questions(Path(args.file), export.questions)
    print(
        f"Wrote {len(export.questions)} questions to {args.file} from the verdicts in {source}"
        f" ({export.skipped} 'wrong' verdicts without a chosen quote skipped: they do not say"
        f" which sentence answers; {export.replaced} replaced by a later verdict on the same"
        f" question). Run them: rag eval --qa {args.file}"
    )
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    from rag.answer.question import check_question
    from rag.serialize import answer_to_dict

    check_question(args.question)
    engine = open_engine(settings_from_args(args, rebuild="never" if args.no_rebuild else "auto"))
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
