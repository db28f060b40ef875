"""What compact word-piece vectors cost in answers: float16 against int8 and product-quantized codes.

`python -m eval.pieces` builds one index of SQuAD 2.0's dev-half articles
(`squad2/dev-half-v2.0.json`, a development set: neither the shipped questions nor XQuAD's
held-out articles, which are test sets) with float16 word pieces, then asks its answerable
questions once per form, each time with the pieces replaced by their codes decoded (the
codec learnt on the index's own pieces, as a build learns it on its first block). It prints
answer hit@1, the share of questions whose first quoted sentence is the float16 run's, and
how far the late-interaction feature moved, per form.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time

import numpy as np

from eval.benchmark import DATASETS

DEV_HALF = DATASETS / "squad2" / "dev-half-v2.0.json"
SEED = 5


def main(argv: list[str] | None = None) -> int:
    """Run every form on the same questions and print one JSON line a form and a table."""
    from dataclasses import replace

    from embeddings import load_encoder
    from eval.distractors import as_articles
    from eval.harness import run_question
    from eval.metrics import score_question
    from eval.squad import convert
    from rag.build.indexing import build_index
    from rag.engine import Engine
    from rag.index.pieces import PieceCodec, forms
    from rag.index.store import content_tokens
    from rag.ingest.articles import Collection
    from rag.settings import ChunkSettings

    parser = argparse.ArgumentParser(prog="python -m eval.pieces", description=__doc__)
    parser.add_argument("--questions", type=int, default=600, help="answerable questions asked")
    parser.add_argument("--forms", default="", help="forms, comma-separated (default: all)")
    args = parser.parse_args(argv)
    if not DEV_HALF.is_file():
        print(f"SQuAD's dev half is not at {DEV_HALF}", file=sys.stderr)
        return 2
    records, qas = convert(json.loads(DEV_HALF.read_text(encoding="utf-8")))
    qas = [qa for qa in qas if qa["answers"]]
    qas = random.Random(SEED).sample(qas, min(args.questions, len(qas)))
    encoder = load_encoder()
    articles = tuple(as_articles(records))
    started = time.perf_counter()
    index = build_index(
        Collection(articles, (), "squad-dev-half", ()), encoder, ChunkSettings(), pieces=True
    )
    print(
        f"built {len(index.chunks)} chunks, {len(index.sentences)} sentences,"
        f" {len(index.token_vectors)} pieces in {time.perf_counter() - started:.0f} s",
        flush=True,
    )
    floats = np.asarray(index.token_vectors, np.float32)
    chosen = args.forms.split(",") if args.forms else list(forms(floats.shape[1]))
    # float16 first: every other form is compared with its answers.
    chosen = ["float16", *(f for f in chosen if f != "float16")]
    questions = [encoder.encode_query(qa["question"]) for qa in qas]
    first: dict[str, str] = {}
    rows = []
    for form in chosen:
        if form == "float16":
            vectors = index.token_vectors
        else:
            codec = PieceCodec.train(form, floats, seed=0)
            vectors = codec.decode(codec.encode(floats)).astype(np.float16)
        variant = replace(index, token_vectors=vectors)
        engine = Engine(variant, encoder)
        results = [run_question(engine, qa, "hybrid") for qa in qas]
        scores = [score_question(qa, r) for qa, r in zip(qas, results, strict=True)]
        tops = {r["id"]: (r["sentences"][0]["text"] if r["sentences"] else "") for r in results}
        if form == "float16":
            first = tops
        # The late-interaction feature (mean over question pieces of the best sentence piece)
        # for each question's gold article's first sentences, float16 against this form.
        moved = []
        for _, pieces, matrix in questions[:100]:
            q = content_tokens(pieces, matrix)
            for n in range(0, len(index.sentences), max(len(index.sentences) // 50, 1)):
                a, b = index.token_offsets[n], index.token_offsets[n + 1]
                exact = (floats[a:b] @ q.T).max(axis=0).mean() if b > a else 0.0
                coded = (
                    (np.asarray(vectors[a:b], np.float32) @ q.T).max(axis=0).mean()
                    if b > a
                    else 0.0
                )
                moved.append(abs(float(exact) - float(coded)))
        row = {
            "form": form,
            "bytes_a_piece": floats.shape[1] * 2
            if form == "float16"
            else (floats.shape[1] if form == "int8" else int(form[2:])),
            "answer_hit@1": round(float(np.mean([s["answer_hit@1"] for s in scores])), 4),
            "same_first_sentence": round(
                float(np.mean([tops[k] == first.get(k) for k in tops])), 4
            ),
            "feature_error_mean": round(float(np.mean(moved)), 5),
            "feature_error_max": round(float(np.max(moved)), 5),
            "questions": len(qas),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(
        "| form | bytes a piece | answer hit@1 | same first sentence | feature error mean | max |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['form']} | {r['bytes_a_piece']} | {r['answer_hit@1']:.4f} |"
            f" {r['same_first_sentence']:.4f} | {r['feature_error_mean']:.5f} |"
            f" {r['feature_error_max']:.5f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
