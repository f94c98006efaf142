#!/usr/bin/env bash
# The standard benchmark suite (`make bench`): ingest/search speed, the reranker on TREC DL19, retrieval on
# dbpedia-entity-5k, answers on CMU WikiQA (single and in conversations), follow-up rewriting on CANARD. The limits
# keep it within an hour on a 2-core CPU machine.
# Every step writes its report (JSON, Markdown table, PNG plot) into $RESULTS, which the app's Evaluation page reads.
#
#   RESULTS=data/results DATASETS=../shared/datasets bash bench/suite.sh
set -euo pipefail
cd "$(dirname "$0")/.."

RESULTS=${RESULTS:-data/results}
DATASETS=${DATASETS:-../shared/datasets}
SIFT=${SIFT:-.venv/bin/sift}
PY=${PY:-.venv/bin/python}
mkdir -p "$RESULTS"
started=$(date +%s)

step() {  # step NAME COMMAND...: run it, say how long it took
  local t0=$(date +%s)
  echo "== $1" >&2
  "${@:2}"
  echo "== $1: $(( $(date +%s) - t0 )) s" >&2
}

step "ingest and search" "$PY" bench/ingest_search.py --out "$RESULTS/ingest-search-$(date +%Y%m%d-%H%M%S).json" >/dev/null
# 10 of DL19's 43 queries: the generative strategy and the multi-criteria mode take 10-20 s a query here.
step "rerank on trec-dl19" "$SIFT" eval rerank --trec "$DATASETS/trec-dl19" --candidates 20 --limit 10 \
  --mode none --mode relevance:logits --mode relevance:generative --mode rebel-one-turn:logits --out "$RESULTS"
step "retrieval on dbpedia-entity-5k" "$SIFT" eval retrieval --beir "$DATASETS/dbpedia-entity-5k" \
  --mode none --mode relevance:logits --out "$RESULTS"
step "answers on cmu-wikiqa-s10" "$SIFT" eval qa --cmu "$DATASETS/cmu-wikiqa-s10" --limit 30 \
  --mode none --mode relevance:logits --out "$RESULTS"
# Conversations with mode none only: three runs of the same questions (single, conversations, 0.1's rewriter).
step "answers in conversations on cmu-wikiqa-s10" "$SIFT" eval qa --cmu "$DATASETS/cmu-wikiqa-s10" --limit 30 \
  --conversations --mode none --out "$RESULTS"
# All of CANARD for the rewriter without an LLM, then a sample for the methods that call it.
step "follow-ups on canard-dev" "$SIFT" eval rewrite --canard "$DATASETS/canard-dev" --method referent --out "$RESULTS"
step "follow-ups with the LLM on canard-dev" "$SIFT" eval rewrite --canard "$DATASETS/canard-dev" --limit 200 \
  --out "$RESULTS"

echo
echo "Done in $(( ($(date +%s) - started) / 60 )) min. Results are in $RESULTS/ (JSON reports, Markdown tables, PNG"
echo "quality-vs-time plots); the app's Evaluation page shows them."
