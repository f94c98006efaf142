"""``sift eval retrieval``: each retrieval mode (dense, lexical, hybrid) and each rerank mode on a BEIR collection.

The corpus is ingested into a scratch store (one document per BEIR entry, its title as heading), each judged query is
retrieved once per retrieval mode (the top ``depth`` passages), and every rerank mode orders that same list: ``none``
keeps the retrieval order,
a rerank mode reorders the first ``candidates_k`` and keeps the rest below them. Passages map back to their BEIR
document, which ranks at its best passage. Reported: nDCG@10, Recall@10/100 and MRR@10 (ranx).

Example::

    >>> report = evaluate_retrieval(Settings(), Path("../shared/datasets/dbpedia-entity-5k"),
    ...                             [("none", None), ("relevance", "logits")], limit=10,
    ...                             retrievals=["dense", "hybrid:rrf"])                  # doctest: +SKIP
    >>> report.rows[0].metrics["ndcg@10"]                                                # doctest: +SKIP
    0.4312
    >>> parse_retrievals(["dense", "hybrid:minmax"], default_fusion="rrf")
    [('dense', None), ('hybrid', 'minmax')]
"""

from __future__ import annotations

import csv
import json
import logging
import time
from pathlib import Path

from sift.app.config import Settings
from sift.app.evals.common import EvalProgress, ingest_dataset, mean, scratch_sift
from sift.app.evals.metrics import RANKING_METRICS, ranking_metrics
from sift.app.evals.reports import Report, ReportRow
from sift.ingestion.ingest import IngestItem
from sift.retrieval.fusion import FUSIONS
from sift.retrieval.hybrid import RETRIEVAL_MODES, Retriever

logger = logging.getLogger(__name__)

CORPUS = "beir"


def load_beir(folder: Path) -> tuple[list[dict], dict[str, str], dict[str, dict[str, int]]]:
    """(corpus entries, queries by id, qrels) from ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/test.tsv``."""
    paths = [folder / "corpus.jsonl", folder / "queries.jsonl", folder / "qrels" / "test.tsv"]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} is not a BEIR folder: no {', '.join(missing)}")
    corpus = _read_jsonl(paths[0])
    queries = {q["_id"]: q["text"] for q in _read_jsonl(paths[1])}
    qrels: dict[str, dict[str, int]] = {}
    with paths[2].open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            qrels.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
    return corpus, queries, qrels


def _read_jsonl(path: Path) -> list[dict]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path} line {number} is not valid JSON: {exc.msg}") from None
    return rows


def beir_items(corpus: list[dict]) -> tuple[list[IngestItem], dict[str, str]]:
    """One Markdown document per entry, named by position (BEIR ids such as ``<dbpedia:X>`` are not file names),
    and the map from document name back to BEIR id."""
    items, ids = [], {}
    for i, entry in enumerate(corpus):
        name = f"doc-{i:06d}.md"
        text = f"# {entry['title']}\n\n{entry['text']}" if entry.get("title") else entry["text"]
        items.append(IngestItem.from_bytes(name, text.encode("utf-8")))
        ids[name] = entry["_id"]
    return items, ids


def parse_retrievals(specs: list[str], default_fusion: str) -> list[tuple[str, str | None]]:
    """``mode`` or ``hybrid:fusion`` -> (mode, fusion); only hybrid has a fusion."""
    parsed = []
    for spec in specs:
        mode, _, fusion = spec.partition(":")
        if mode not in RETRIEVAL_MODES:
            raise ValueError(f"Unknown retrieval mode {mode!r}; choose from {', '.join(RETRIEVAL_MODES)}.")
        if fusion and (mode != "hybrid" or fusion not in FUSIONS):
            raise ValueError(f"{spec!r}: only hybrid takes a fusion, one of {', '.join(FUSIONS)}.")
        parsed.append((mode, (fusion or default_fusion) if mode == "hybrid" else None))
    return list(dict.fromkeys(parsed))


def evaluate_retrieval(
    settings: Settings,
    folder: Path,
    modes: list[tuple[str, str | None]],
    limit: int | None = None,
    depth: int = 100,
    on_progress: EvalProgress | None = None,
    command: str | None = None,
    retrievals: list[str] | None = None,
) -> Report:
    """Ranking quality and time per query of each retrieval mode (``retrievals``: ``dense``, ``lexical``,
    ``hybrid`` or ``hybrid:fusion``; default: the settings') under each rerank mode (``none``: retrieval order)."""
    retrieval_specs = parse_retrievals(retrievals or [settings.retrieval_mode], settings.retrieval_fusion)
    corpus, queries, qrels = load_beir(folder)
    judged = [q for q in queries if any(g > 0 for g in qrels.get(q, {}).values())][: limit or None]
    qrels = {q: qrels[q] for q in judged}
    sift = scratch_sift(settings, folder)
    items, beir_id = beir_items(corpus)
    ingest_dataset(sift, CORPUS, items, on_progress)

    report = Report.new(
        "retrieval",
        folder,
        "ndcg@10",
        command=command,
        setup={
            "documents": len(corpus),
            "queries": len(judged),
            "depth": depth,
            "candidates_k": settings.candidates_k,
            "embedding_model": settings.embedding_model,
            "llm_model": settings.llm_base_url or settings.llm_model,
            "index_type": settings.index_type,
        },
    )
    retrieved: dict[str, dict[str, list]] = {}  # retrieval mode -> query -> candidates
    retrieve_ms: dict[str, list[float]] = {}
    for retrieval, fusion in retrieval_specs:
        retriever = Retriever(sift.store, sift.embedder, retrieval, fusion or "rrf")
        variant = retrieval + (f":{fusion}" if fusion else "")
        retrieved[variant], retrieve_ms[variant] = {}, []
        for i, qid in enumerate(judged):
            start = time.perf_counter()
            retrieved[variant][qid] = retriever.search(queries[qid], CORPUS, depth)
            retrieve_ms[variant].append(1000 * (time.perf_counter() - start))
            if on_progress:
                on_progress(f"Retrieving ({variant})", i + 1, len(judged))

    for (mode, strategy), variant in ((m, v) for m in modes for v in retrieved):
        # No latency budget: an eval's figures must not depend on how busy the machine was.
        reranker = sift.reranker(mode, strategy, llm_budget_s=0) if mode != "none" else None
        run, rerank_ms = {}, []
        for i, qid in enumerate(judged):
            candidates = retrieved[variant][qid]
            head, tail = candidates[: settings.candidates_k], candidates[settings.candidates_k :]
            if reranker is not None:
                start = time.perf_counter()
                head = reranker.rerank(queries[qid], head).candidates
                rerank_ms.append(1000 * (time.perf_counter() - start))
            run[qid] = _document_scores([beir_id.get(c.source, c.source) for c in head + tail])
            if on_progress:
                on_progress(f"Ranking with {mode}" + (f" ({strategy})" if strategy else ""), i + 1, len(judged))
        timings = {"retrieve": mean(retrieve_ms[variant])} | ({"rerank": mean(rerank_ms)} if rerank_ms else {})
        report.rows.append(
            ReportRow(
                mode=mode,
                strategy=strategy,
                variant=variant,
                queries=len(judged),
                metrics=ranking_metrics(qrels, run, RANKING_METRICS),
                ms_per_query=round(sum(v for v in timings.values() if v), 1),
                timings_ms=timings,
            )
        )
    return report


def _document_scores(ranked_ids: list[str]) -> dict[str, float]:
    """A ranked list of passages' document ids -> {document: score}, each document at its best position."""
    scores: dict[str, float] = {}
    for position, doc in enumerate(ranked_ids):
        scores.setdefault(doc, float(len(ranked_ids) - position))
    return scores
