"""How much BM25 should hybrid retrieval weigh beside MiniLM? A sweep of the lexical ranking's weight in each fusion.

    .venv/bin/python bench/fusion_weights.py --out /tmp/fusion.json     # ~5 min on 2 cores (5,000 + 4,300 embeddings)

Two judged collections from ../shared/datasets, each with both first-stage signals for every candidate:

dbpedia     dbpedia-entity-5k, its 40 judged queries over the 5,000 entities (each as Sift's eval ingests it: the title
            as heading, one passage): the dense top 100 (MiniLM cosine over all 5,000) and the lexical top 100 (Sift's
            BM25 index, ``ingestion.lexical``), fused, as hybrid retrieval does.
dl19        TREC DL19, its 43 queries over their BM25 top 100 (Anserini's scores as shipped) with MiniLM's cosine for
            each: the fusion reorders those 100, as the reranker's first stage does.

Fusion is ``retrieval.fusion``'s (reciprocal rank, min-max or z-score sums) with the dense signal weighing 1 and the
lexical one each --weights value (0: dense alone; 1: Sift's hybrid). Prints one JSON object (also to --out): nDCG@10
(ranx) per collection, fusion and weight, with the machine; and for dbpedia what each signal's top 10 holds (relevant,
judged non-relevant for the query, not judged for it), which says why BM25 lowers nDCG@10 there: the 5,000 entities
are mostly the queries' judging pools, whose non-relevant members matched the queries' words.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
from ingest_search import emit, machine
from ranx import Qrels, Run, evaluate

from sift.app.config import Settings
from sift.app.evals.retrieval import load_beir
from sift.app.models import embedding_model
from sift.ingestion.lexical import LexicalIndex
from sift.rerank.evaluation import load_trec
from sift.retrieval.fusion import FUSIONS, normalised_sum, reciprocal_rank

DEPTH = 100


def fused_order(dense: dict[int, float], lexical: dict[int, float], fusion: str, weight: float) -> list[int]:
    """The candidates best first; ties keep the dense order."""
    weights = [1.0, weight]
    if fusion == "rrf":
        rankings = [sorted(signal, key=signal.get, reverse=True) for signal in (dense, lexical)]
        scores = reciprocal_rank(rankings, weights=weights)
    else:
        scores = normalised_sum([dense, lexical], fusion, weights)
    return sorted(scores, key=lambda i: (-scores[i], -dense.get(i, -1.0)))


def dbpedia(folder: Path, encode) -> tuple[Qrels, list, Callable[[str, int], str]]:
    """Qrels; per judged query (qid, dense, lexical), each a score for every candidate of the dense and the lexical
    top 100; and the document id of a query's candidate."""
    corpus, queries, qrels = load_beir(folder)
    judged = [q for q in queries if any(g > 0 for g in qrels.get(q, {}).values())]
    texts = [f"# {e['title']}\n\n{e['text']}" if e.get("title") else e["text"] for e in corpus]
    passages, index = encode(texts), LexicalIndex.build(list(range(len(texts))), texts)
    rows = []
    for qid, query_vector in zip(judged, encode([queries[q] for q in judged]), strict=True):
        cosine, bm25 = passages @ query_vector, index.all_scores(queries[qid])
        top = np.union1d(np.argsort(-cosine)[:DEPTH], [i for i in np.argsort(-bm25)[:DEPTH] if bm25[i] > 0])
        rows.append((qid, {int(i): float(cosine[i]) for i in top}, {int(i): float(bm25[i]) for i in top}))
    return Qrels({q: qrels[q] for q in judged}), rows, lambda qid, i: corpus[i]["_id"]


def dl19(folder: Path, encode) -> tuple[Qrels, list, Callable[[str, int], str]]:
    """The same for TREC DL19's judged queries over their BM25 top 100 (Anserini's scores as the lexical signal)."""
    queries, qrels_path = load_trec(folder)
    qrels = Qrels.from_file(qrels_path, kind="trec")
    judged, rows, docids = set(qrels.keys()), [], {}
    for item in queries:
        hits = item["hits"][:DEPTH]
        qid = str(hits[0]["qid"])
        if qid in judged:
            cosine = encode([h["content"] for h in hits]) @ encode([item["query"]])[0]
            rows.append((qid, dict(enumerate(map(float, cosine))), {j: float(h["score"]) for j, h in enumerate(hits)}))
            docids[qid] = [str(h["docid"]) for h in hits]
    return qrels, rows, lambda qid, i: docids[qid][i]


def sweep(
    qrels: Qrels, rows: list, document: Callable[[str, int], str], weights: list[float]
) -> dict[str, dict[str, float]]:
    """nDCG@10 per fusion and lexical weight."""
    figures = {}
    for fusion in FUSIONS:
        figures[fusion] = {}
        for weight in weights:
            run = {}
            for qid, dense, lexical in rows:
                ids = [document(qid, i) for i in fused_order(dense, lexical, fusion, weight)[:DEPTH]]
                run[qid] = {doc: float(len(ids) - rank) for rank, doc in enumerate(ids)}
            figures[fusion][str(weight)] = round(float(evaluate(qrels, Run(run), "ndcg@10")), 4)
    return figures


def top10_makeup(qrels: Qrels, rows: list, document: Callable[[str, int], str]) -> dict[str, dict[str, float]]:
    """Per signal, the share of its top 10 documents that are relevant, judged non-relevant for the query, or not
    judged for it (which nDCG also counts as non-relevant)."""
    grades, makeup = qrels.to_dict(), {}
    for name, column in (("dense", 1), ("lexical", 2)):
        counts = dict.fromkeys(("relevant", "judged_non_relevant", "not_judged"), 0)
        for row in rows:
            qid, signal = row[0], row[column]
            for i in sorted(signal, key=signal.get, reverse=True)[:10]:
                grade = grades[qid].get(document(qid, i))
                counts["not_judged" if grade is None else "relevant" if grade > 0 else "judged_non_relevant"] += 1
        makeup[name] = {kind: round(n / (10 * len(rows)), 3) for kind, n in counts.items()}
    return makeup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="0,0.05,0.1,0.2,0.3,0.5,0.75,1", help="lexical weights, comma-separated")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    weights = [float(w) for w in args.weights.split(",")]
    settings = Settings()
    model = embedding_model(settings)

    def encode(texts: list[str]) -> np.ndarray:
        return np.asarray(model.encode(texts, batch_size=64, normalize_embeddings=True), dtype=np.float32)

    datasets = settings.datasets_dir
    report = {"machine": machine(settings), "weights": weights}
    for name, load in (
        ("dbpedia", partial(dbpedia, datasets / "dbpedia-entity-5k")),
        ("dl19", partial(dl19, datasets / "trec-dl19")),
    ):
        qrels, rows, document = load(encode)
        report[name] = sweep(qrels, rows, document, weights)
        if name == "dbpedia":
            report["dbpedia_top10"] = top10_makeup(qrels, rows, document)
    emit(report, args.out)


if __name__ == "__main__":
    main()
