"""Re-score saved benchmark traces under other composite weights, offline (no model run): how each signal and
blend does on TREC DL. Reads bench/results/*.json written by bench/rerank_table.py; prints JSON lines.

Diversity (MMR) depends on the order being built and on embeddings the trace does not hold, so it is left out here.

Example::

    PYTHONPATH=. python bench/rerank_weights.py bench/results/relevance_logits_query-likelihood_k20_n12.json
"""

from __future__ import annotations

import argparse
import itertools
import json
from functools import lru_cache
from pathlib import Path

import numpy as np
from ranx import Qrels, Run, evaluate

from sift.rerank.composite import zscore
from sift.rerank.evaluation import RerankEvaluation, load_trec


@lru_cache(maxsize=2)
def _data(trec: str):
    queries, qrels_path = load_trec(trec)
    return {q["query"]: q["hits"] for q in queries}, Qrels.from_file(qrels_path, kind="trec").to_dict()


def ndcg_for(report: RerankEvaluation, weights: dict[str, float], trec: str) -> float:
    hits_by_query, qrels = _data(trec)
    run = {}
    for trace in report.traces:
        hits = hits_by_query[trace.query]
        rows = sorted(trace.candidates, key=lambda r: r.retrieval_rank)
        k = len(rows)
        composite = np.zeros(k)
        for name, w in weights.items():
            raw = np.array(
                [next((c.score for c in r.criteria if c.name == name), None) or np.nan for r in rows], dtype=float
            )
            composite += w * zscore(raw)
        order = sorted(range(k), key=lambda i: (-round(composite[i], 9), i))
        scores = {str(hits[i]["docid"]): float(k - r) for r, i in enumerate(order)}
        scores |= {str(h["docid"]): -1000.0 - j for j, h in enumerate(hits[k:])}
        run[str(hits[0]["qid"])] = scores
    judged = Qrels({q: qrels[q] for q in run})
    return round(float(evaluate(judged, Run(run), "ndcg@10")), 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+")
    parser.add_argument(
        "--trec", default=str(Path(__file__).resolve().parents[2] / "shared" / "datasets" / "trec-dl19")
    )
    parser.add_argument("--grid", default="0,0.25,0.5,1", help="weights tried for each criterion")
    args = parser.parse_args()
    grid = [float(x) for x in args.grid.split(",")]
    for path in args.reports:
        report = RerankEvaluation.model_validate_json(Path(path).read_text())
        names = sorted({c.name for t in report.traces for r in t.candidates for c in r.criteria} - {"diversity"})
        results = []
        for combo in itertools.product(grid, repeat=len(names)):
            if not any(combo):
                continue
            weights = dict(zip(names, combo, strict=True))
            results.append((ndcg_for(report, weights, args.trec), weights))
        results.sort(key=lambda x: -x[0])
        singles = {n: ndcg_for(report, {n: 1.0}, args.trec) for n in names}
        print(
            json.dumps({"report": path, "queries": len(report.traces), "single_signal": singles, "best": results[:5]})
        )


if __name__ == "__main__":
    main()
