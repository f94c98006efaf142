"""Inspector, "why these passages": for the latest answer or any past query of the corpus, every candidate's
retrieval rank and final rank, each criterion's score, the composite, the weights used, and the passage text.

The page owns the choice of query and passage; the table and chart are built from the trace by ui.inspector_view.
"""

import logging

import pandas as pd
import streamlit as st

from sift.ui.inspector_view import (
    budget_caption,
    candidate_rows,
    change_colour,
    llm_scored_caption,
    llm_stage_label,
    passage_label,
    rank_movement_chart,
    weight_rows,
    weights_caption,
)
from sift.ui.markdown import escape
from sift.ui.state import current_corpus, sift

logger = logging.getLogger("sift.ui.app_pages.inspector")  # run as a script: __name__ is "__main__"

st.title("Why these passages?")
corpus = current_corpus()
traces = sift().traces(corpus) if corpus else []
if not traces:
    st.info(
        "No questions asked of this corpus yet: ask one on the Chat page, then see here how its passages were ranked."
    )
    st.stop()

by_id = {t.id: t for t in traces}
asked = st.query_params.get("trace")  # set by an answer's "Why these passages?" link
ids = list(by_id)
picked = st.selectbox(
    "Query",
    ids,
    index=ids.index(int(asked)) if asked in map(str, ids) else 0,
    format_func=lambda i: f"{by_id[i].query[:100]} · {by_id[i].mode} · {by_id[i].created_at:%d %b %H:%M}",
)
trace = by_id[picked].trace
candidates = trace.candidates

promoted = sum(c.rank_change > 0 for c in candidates)
demoted = sum(c.rank_change < 0 for c in candidates)
with st.container(horizontal=True):
    st.metric("Mode", trace.mode, border=True)
    st.metric("Strategy", trace.strategy or "–", border=True)
    st.metric("Candidates", len(candidates), border=True)
    st.metric("LLM-scored", "–" if trace.llm_k is None else trace.llm_k, border=True)
    st.metric("Promoted / demoted", f"{promoted} / {demoted}", border=True)
    st.metric("Rerank time", f"{trace.timings_ms.get('total', 0) / 1000:.1f} s", border=True)
    if trace.llm_seconds is not None:
        st.metric("LLM stage", llm_stage_label(trace.llm_seconds, trace.llm_budget_s), border=True)
if trace.model:
    st.caption(escape(f"Scored by {trace.model}."))
if scored := llm_scored_caption(trace.llm_k, len(candidates)):
    st.caption(scored)
if budget := budget_caption(trace):
    st.caption(budget)
for note in trace.notes:  # a fallback (a server without log-probabilities...): seen before the ranking it explains
    st.warning(escape(note))

st.subheader("Ranks and scores")
rows = pd.DataFrame(candidate_rows(trace))
numbers = [*trace.criterion_names(), "composite"]
st.dataframe(
    rows.style.map(change_colour, subset=["change"]).format("{:.3f}", subset=numbers, na_rep="–"),
    hide_index=True,
    height=38 + 35 * len(rows),
)
st.caption(
    "Each criterion's score is on its own scale; the composite adds the criteria's z-scores, weighted, within a "
    "stage: the LLM-scored passages are normalised among themselves and placed first."
)

chart, weights = st.columns(2, gap="large")
with chart:
    st.subheader("Rank movement")
    st.altair_chart(rank_movement_chart(trace), width="stretch")
with weights:
    st.subheader("Criteria and weights")
    st.dataframe(weight_rows(trace), hide_index=True)
    if fitted := weights_caption(trace):
        st.caption(fitted)
    if trace.inferred:
        st.subheader("Inferred for this query")
        st.json(trace.inferred.model_dump(mode="json"))

st.subheader("Passage text")
by_chunk = {c.chunk_id: c for c in sorted(candidates, key=lambda c: c.final_rank)}
chosen = by_chunk[
    st.selectbox(
        "Passage",
        list(by_chunk),
        format_func=lambda i: (
            f"#{by_chunk[i].final_rank} (was #{by_chunk[i].retrieval_rank}) {passage_label(by_chunk[i])}"
        ),
    )
]
text = sift().passage_texts(corpus, [chosen.chunk_id]).get(chosen.chunk_id)  # the corpus's passages only
st.caption(escape(f"{chosen.title or chosen.source} · document {chosen.document_id}"))
st.text(text if text is not None else "This passage is no longer in the corpus.")
