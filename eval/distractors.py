"""XQuAD hidden among distractor articles at growing sizes: answers, latency, memory, build.

`python -m eval.distractors --sizes 10000,100000` builds, for each size, one index of XQuAD's
48 articles plus distractor articles up to that many chunks, and asks it held-out XQuAD
questions (those of the 32 articles outside `squad2/dev-half-v2.0.json`) with the full
answer step. Each size is built and saved in one process; a fresh process then loads it as
`rag serve` does and asks the questions, so that the memory reported is what serving takes.

What is real and what is not:
- XQuAD's articles: real text, chunks and sentences embedded by the model.
- Distractors: real sentences (SQuAD 2.0's training sample and the shipped news articles,
  none from XQuAD's articles) drawn at random into articles of 8 paragraphs of 5 sentences,
  then chunked as any article is. Each sentence keeps its own real embedding; a distractor
  chunk's vector is the normalised mean of its sentences' embeddings, a stand-in for embedding
  it, which this machine could not do for 100k chunks in a benchmark's time (about 50 chunks
  a second).
- Near-duplicate detection is not run on distractors (their sentences repeat by design).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from eval.benchmark import DATASETS, peak_mb
from rag.index.pieces import DEFAULT_FORM

XQUAD = DATASETS / "xquad-en" / "xquad.en.json"
DEV_HALF = DATASETS / "squad2" / "dev-half-v2.0.json"
TRAIN_SAMPLE = DATASETS / "squad2" / "train-sample-v2.0.json"
SENTENCES_PER_ARTICLE = 40
QUESTIONS = 200
SEED = 11
CHILD_SECONDS = 3600


def as_articles(records: list[dict]) -> list:
    """Articles from JSON records (as `eval.squad.convert` makes them), unreadable ones left out."""
    from rag.ingest.articles import article_from_record

    out = []
    for record in records:
        article, _ = article_from_record(record, "benchmark")
        if article is not None:
            out.append(article)
    return out


def xquad() -> tuple[list, list[dict]]:
    """XQuAD's 48 articles, and the questions of its 32 held-out articles (seeded sample)."""
    from eval.squad import convert, without_titles

    data = json.loads(XQUAD.read_text(encoding="utf-8"))
    articles, _ = convert(data)
    dev = json.loads(DEV_HALF.read_text(encoding="utf-8"))["data"]
    _, qas = convert({**data, "data": without_titles(data["data"], [a["title"] for a in dev])})
    qas = [qa for qa in qas if qa["answers"]]
    return as_articles(articles), random.Random(SEED).sample(qas, min(QUESTIONS, len(qas)))


def pool() -> list[str]:
    """The real sentences distractors are made of."""
    from eval.squad import convert
    from rag.ingest.files import load_collection
    from rag.sentences import split_sentences

    articles, _ = convert(json.loads(TRAIN_SAMPLE.read_text(encoding="utf-8")))
    texts = [a["text"] for a in articles] + [a.text for a in load_collection().articles]
    found = {t[s:e] for t in texts for s, e in split_sentences(t)}
    # Whole sentences only, so that they split back apart when put side by side.
    return sorted(s for s in found if len(s.split()) >= 4 and s[0].isupper() and s[-1] in '.!?"”’')


def _distractors(sentences: list[str], start: int, rng: random.Random) -> list[dict]:
    picked = rng.sample(sentences, SENTENCES_PER_ARTICLE)
    paragraphs = [" ".join(picked[i : i + 5]) for i in range(0, len(picked), 5)]
    return [
        {
            "id": f"distractor-{start}",
            "title": f"Distractor {start}",
            "text": "\n\n".join(paragraphs),
        }
    ]


def embed_once(work: Path) -> Path:
    """Embed XQuAD's chunks and sentences and the pool's sentences; saved for every size."""
    from embeddings import load_encoder
    from rag.build.chunking import chunk_articles
    from rag.settings import ChunkSettings

    encoder = load_encoder()
    articles, _ = xquad()
    chunks = chunk_articles(articles, encoder.count_tokens, ChunkSettings())
    by_id = {a.id: a for a in articles}
    sentences = sorted(
        {by_id[c.article_id].text[s:e] for c in chunks for s, e in c.sentences} | set(pool())
    )
    started = time.perf_counter()
    chunk_vectors = encoder.encode([c.text for c in chunks])
    sentence_vectors, pieces, offsets = embed_sentences(encoder, sentences)
    seconds = time.perf_counter() - started
    path = work / "embedded.npz"
    np.savez(
        path,
        chunk_texts=np.array([c.text for c in chunks], dtype=object),
        chunk_vectors=chunk_vectors.astype(np.float32),
        sentences=np.array(sentences, dtype=object),
        sentence_vectors=sentence_vectors.astype(np.float32),
        pieces=pieces,
        piece_offsets=offsets,
        seconds=seconds,
    )
    return path


def embed_sentences(encoder, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sentences' vectors and content word-piece vectors (float16, with where each starts)."""
    from rag.index.store import content_tokens

    vectors = np.zeros((len(texts), encoder.dimension), np.float32)
    rows, counts = [], []
    for first in range(0, len(texts), 2048):
        found, tokens = encoder.encode_with_tokens(texts[first : first + 2048])
        vectors[first : first + len(found)] = found
        for p, v in tokens:
            kept = content_tokens(p, v).astype(np.float16)
            rows.append(kept)
            counts.append(len(kept))
    offsets = np.zeros(len(texts) + 1, np.int64)
    offsets[1:] = np.cumsum(counts)
    pieces = np.concatenate(rows) if rows else np.zeros((0, encoder.dimension), np.float16)
    return vectors, pieces, offsets


def _counter(encoder):
    # Distractors repeat the pool's sentences: each is counted once.
    known: dict[str, int] = {}

    def count(texts):
        missing = [t for t in dict.fromkeys(texts) if t not in known]
        if missing:
            known.update(zip(missing, encoder.count_tokens(missing), strict=True))
        return [known[t] for t in texts]

    return count


def build(
    size: int,
    embedded: Path,
    directory: Path,
    *,
    exact_limit: int | None = None,
    form: str | None = None,
) -> dict:
    """Build and save the index of one size (run in its own process).

    With a word-piece `form` the build streams as `rag.build.indexing` does past
    `PIECES_LIMIT`: sentence and chunk vectors and coded word pieces are written to files a
    block at a time. Without one it is the earlier path: every vector in memory, no word
    pieces stored (a question encodes its candidate sentences).

    Returns:
        Its counts, build time, peak memory while building, and recall@10 of the chunk
        search against exact search for the questions.
    """
    from embeddings import load_encoder
    from rag.build.chunking import chunk_articles
    from rag.build.indexing import assemble_index, sentence_refs
    from rag.index.pieces import PieceCodec, PieceWriter, RowWriter
    from rag.index.store import save_index
    from rag.index.tables import RowFile
    from rag.index.vectors import EXACT_LIMIT, build_vectors
    from rag.settings import ChunkSettings

    saved = np.load(embedded, allow_pickle=True)
    known_chunks = dict(zip(saved["chunk_texts"], saved["chunk_vectors"], strict=True))
    pool_texts = list(saved["sentences"])
    pool_vectors = saved["sentence_vectors"].astype(np.float16)
    pool_pieces, pool_offsets = saved["pieces"], saved["piece_offsets"]
    encoder = load_encoder()
    count = _counter(encoder)
    real, qas = xquad()
    sentences_pool = pool()
    started = time.perf_counter()
    rng = random.Random(SEED)
    articles = list(real)
    settings = ChunkSettings()
    chunks = chunk_articles(articles, count, settings)
    while len(chunks) < size:
        extra = as_articles(_distractors(sentences_pool, len(articles), rng))
        articles += extra
        more = chunk_articles(extra, count, settings)
        chunks += [replace(c, id=len(chunks) + i) for i, c in enumerate(more)]
    by_id = {a.id: a for a in articles}
    del articles
    refs = sentence_refs(chunks)

    def text(ref) -> str:
        return by_id[ref.article_id].text[ref.start : ref.end]

    number = {t: n for n, t in enumerate(pool_texts)}
    # Pool sentences that the splitter joins with their neighbour in a new paragraph: few.
    unknown = sorted({text(r) for r in refs} - number.keys())
    if unknown:
        vectors, pieces, offsets = embed_sentences(encoder, unknown)
        number.update((t, len(pool_texts) + i) for i, t in enumerate(unknown))
        pool_vectors = np.concatenate([pool_vectors, vectors.astype(np.float16)])
        pool_offsets = np.concatenate([pool_offsets[:-1], offsets + pool_offsets[-1]])
        pool_pieces = np.concatenate([pool_pieces, pieces])
    scratch = directory.with_name(directory.name + "-scratch")
    scratch.mkdir(parents=True, exist_ok=True)
    dimension = encoder.dimension
    compact = None
    if form:
        # Learnt on the pool's pieces (what a build's first block would be) and each pool
        # sentence coded once: a distractor sentence's codes are its pool sentence's.
        codec = PieceCodec.train(form, pool_pieces, seed=SEED)
        pool_codes = codec.encode(pool_pieces)
        writer = PieceWriter(scratch / "pieces", form=form, dimension=dimension, codec=codec)
        sentence_file = RowWriter(scratch / "sentences.npy", dimension, np.float16)
        chunk_file = RowWriter(scratch / "chunks.npy", dimension, np.float32)
    else:
        sentence_vectors = np.empty((len(refs), dimension), np.float16)
        chunk_vectors = np.empty((len(chunks), dimension), np.float32)
    block = 65_536
    for first in range(0, len(refs), block):
        numbers = np.array([number[text(r)] for r in refs[first : first + block]])
        if not form:
            sentence_vectors[first : first + len(numbers)] = pool_vectors[numbers]
            continue
        sentence_file.append(pool_vectors[numbers])
        starts, ends = pool_offsets[numbers], pool_offsets[numbers + 1]
        rows = np.concatenate([np.arange(a, b) for a, b in zip(starts, ends, strict=True)])
        writer.add_codes(pool_codes[rows], (ends - starts).tolist())
    for first in range(0, len(chunks), block):
        out = np.empty((len(chunks[first : first + block]), dimension), np.float32)
        for n, chunk in enumerate(chunks[first : first + block]):
            vector = known_chunks.get(chunk.text)
            if vector is None:
                article = by_id[chunk.article_id].text
                # The float16 copies the index keeps, as the snapshot would hold them.
                rows = pool_vectors[[number[article[s:e]] for s, e in chunk.sentences]]
                vector = rows.astype(np.float32).mean(axis=0)
                vector /= np.linalg.norm(vector)
            out[n] = vector
        if form:
            chunk_file.append(out)
        else:
            chunk_vectors[first : first + len(out)] = out
    del pool_vectors, pool_pieces, number
    if form:
        sentence_file.close()
        chunk_file.close()
        compact = writer.close()
        sentence_vectors = RowFile(scratch / "sentences.npy")
        chunk_vectors = np.load(scratch / "chunks.npy", mmap_mode="r")
    vectors = build_vectors(chunk_vectors, exact_limit=exact_limit or EXACT_LIMIT)
    index = assemble_index(
        by_id,
        chunks,
        vectors,
        refs,
        (text(r) for r in refs),
        sentence_vectors,
        compact=compact,
        model=encoder.name,
        dimension=encoder.dimension,
        chunking=asdict(settings),
        collection={"fingerprint": f"distractors-{size}", "sources": [], "articles": len(by_id)},
        embedded={"chunks": 0, "sentences": len(unknown)},
        started=started,
        duplicates=False,
    )
    row = {
        "size": size,
        "chunks": len(chunks),
        "articles": len(by_id),
        "sentences": len(refs),
        "mode": "exact" if vectors.exact else "ivf-sq8",
        "pieces": form or "per question",
        "stored_pieces": int(compact.offsets[-1]) if compact is not None else 0,
        "encoded_here": len(unknown),
    }
    del chunks, refs, sentence_vectors
    save_index(index, directory)
    del index, compact
    shutil.rmtree(scratch, ignore_errors=True)
    row["build_s"] = round(time.perf_counter() - started, 1)
    row["build_rss_mb"] = round(peak_mb())
    row["index_mb"] = round(
        sum(p.stat().st_size for p in directory.rglob("*") if p.is_file()) / 1e6
    )
    recall = 1.0
    if not vectors.exact:
        flat = build_vectors(np.asarray(chunk_vectors), exact_limit=len(chunk_vectors))
        hits = 0
        for qa in qas:
            q, _, _ = encoder.encode_query(qa["question"])
            hits += len(set(vectors.search(q, 10)[0]) & set(flat.search(q, 10)[0]))
        recall = hits / (10 * len(qas))
    row["recall@10"] = round(recall, 3)
    return row


def serve(directory: Path) -> dict:
    """Load the saved index as `rag serve` does and ask it the questions (run in its own
    process, so that its resident memory is what serving takes)."""
    from embeddings import load_encoder
    from eval.harness import run_question
    from eval.metrics import percentile, score_question
    from rag.engine import Engine
    from rag.index.store import load_index

    started = time.perf_counter()
    engine = Engine(load_index(directory), load_encoder())
    loaded = time.perf_counter() - started
    _, qas = xquad()
    engine.ask(qas[0]["question"])
    results = [run_question(engine, qa, "hybrid") for qa in qas]
    scores = [score_question(qa, r) for qa, r in zip(qas, results, strict=True)]
    latencies = [r["latency_ms"] for r in results]
    return {
        "load_s": round(loaded, 1),
        "rss_mb": round(peak_mb("self", "VmRSS")),
        # Of which the process's own memory, and pages of the index's files it has read.
        "rss_anon_mb": round(peak_mb("self", "RssAnon")),
        "rss_file_mb": round(peak_mb("self", "RssFile")),
        "peak_rss_mb": round(peak_mb()),
        "p50_ms": round(percentile(latencies, 50), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
        "answer_hit@1": round(float(np.mean([s["answer_hit@1"] for s in scores])), 3),
        "first_citation": round(float(np.mean([s["first_citation_gold"] for s in scores])), 3),
        "refused": round(float(np.mean([s["refused"] for s in scores])), 3),
        "questions": len(qas),
    }


def table(rows: list[dict]) -> str:
    """The rows as a Markdown table."""
    columns = [
        ("chunks", "chunks"),
        ("mode", "search"),
        ("pieces", "word pieces"),
        ("build_s", "build s"),
        ("build_rss_mb", "build peak MB"),
        ("index_mb", "index MB on disk"),
        ("load_s", "load s"),
        ("rss_mb", "serving RSS MB"),
        ("rss_anon_mb", "of which not file-backed MB"),
        ("recall@10", "recall@10"),
        ("p50_ms", "p50 ms"),
        ("p95_ms", "p95 ms"),
        ("answer_hit@1", "answer hit@1"),
        ("first_citation", "first citation"),
        ("refused", "refused"),
    ]
    lines = [
        "| " + " | ".join(h for _, h in columns) + " |",
        "|" + "---|" * len(columns),
    ]
    for row in rows:
        cells = [f"{row[k]:,}" if isinstance(row[k], int) else str(row[k]) for k, _ in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _child(*args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "eval.distractors", "--child", *args],
        capture_output=True,
        text=True,
        timeout=CHILD_SECONDS,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    """Run the sizes asked for, each built and then served in its own process, and print
    the table."""
    parser = argparse.ArgumentParser(prog="python -m eval.distractors", description=__doc__)
    parser.add_argument("--sizes", default="10000,100000", help="chunk counts, comma-separated")
    parser.add_argument(
        "--approximate",
        action="store_true",
        help="also run each size with the approximate (IVF) chunk index forced",
    )
    parser.add_argument(
        "--pieces",
        default=f"{DEFAULT_FORM},none",
        help="how word pieces are kept, comma-separated, each run at every size: a compact"
        " form (int8, pq48, ...), or none (the earlier path: encoded per question)",
    )
    parser.add_argument(
        "--work", type=Path, help="folder for the indexes (default: a temporary one)"
    )
    parser.add_argument(
        "--embedded", type=Path, help="reuse the embeddings an earlier run saved (embedded.npz)"
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        if args.child[0] == "build":
            size, embedded, exact, directory, form = args.child[1:]
            row = build(
                int(size),
                Path(embedded),
                Path(directory),
                exact_limit=int(exact) or None,
                form=None if form == "none" else form,
            )
        else:
            row = serve(Path(args.child[1]))
        print(json.dumps(row))
        return 0
    if not XQUAD.is_file():
        print(f"XQuAD is not at {XQUAD}", file=sys.stderr)
        return 2
    rows = []
    with tempfile.TemporaryDirectory(dir=args.work) as work:
        embedded = args.embedded or embed_once(Path(work))
        seconds = float(np.load(embedded, allow_pickle=True)["seconds"])
        print(
            f"embedded XQuAD's chunks and the distractor sentences in {seconds:.0f} s", flush=True
        )
        runs = [(int(s), 0) for s in args.sizes.split(",")]
        if args.approximate:
            runs += [(size, 1) for size, _ in list(runs)]
        runs = [(size, forced, form) for size, forced in runs for form in args.pieces.split(",")]
        for size, forced, form in runs:
            directory = Path(work) / f"index-{size}-{forced}-{form}"
            try:
                row = _child("build", str(size), str(embedded), str(forced), str(directory), form)
                row.update(_child("serve", str(directory)))
            except RuntimeError as e:
                print(e, file=sys.stderr)
                return 1
            finally:
                shutil.rmtree(directory, ignore_errors=True)
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
