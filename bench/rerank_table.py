"""Benchmark every rerank mode x strategy on TREC DL (nDCG@10, ms/query, tokens, passages/s), printing JSON.

Each configuration's report includes the baselines measured in the same run over the same queries (BM25 order, the
embedding similarity alone) and the model's prefill rate measured before and after, so the logit strategy's distance
from the prefill floor is read off directly. Traces are saved to bench/results/ so weights can be re-tuned offline
(bench/rerank_weights.py) without running the model again.

Example::

    PYTHONPATH=. python bench/rerank_table.py --candidates 20 --limit 10 --configs relevance:logits none
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from sift.app.config import Settings
from sift.app.reranker import build_reranker
from sift.rerank.evaluation import evaluate_rerank

ALL = [
    "none",
    "relevance:logits",
    "relevance:generative",
    "rebel-one-turn:logits",
    "rebel-one-turn:generative",
    "rebel-two-turn:logits",
    "rebel-two-turn:generative",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--trec", default=str(Path(__file__).resolve().parents[2] / "shared" / "datasets" / "trec-dl19")
    )
    parser.add_argument("--candidates", type=int, default=20)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--configs", nargs="*", default=ALL, help="mode[:strategy] ...")
    parser.add_argument("--relevance-method", default=None, choices=["query-likelihood", "judge"])
    parser.add_argument("--out", default="bench/results")
    args = parser.parse_args()
    settings = Settings()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for config in args.configs:
        mode, _, strategy = config.partition(":")
        reranker = build_reranker(settings, mode, strategy or None)
        if args.relevance_method:
            reranker.relevance_method = args.relevance_method
        found = evaluate_rerank(reranker, args.trec, args.candidates, args.limit, keep_traces=True)
        name = f"{config.replace(':', '_')}_{found.relevance_method or ''}_k{args.candidates}_n{found.queries}"
        (out / f"{name}.json").write_text(found.model_dump_json())
        figures = found.model_dump(mode="json", exclude={"traces"})
        print(json.dumps({"config": config, **figures, "finished": time.strftime("%H:%M:%S")}), flush=True)


if __name__ == "__main__":
    main()
