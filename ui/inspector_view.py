"""What the Inspector shows of a rerank trace: the rank table, the rank-movement chart, the criteria and weights.
Pure functions of the trace, so they are tested without a browser."""

from __future__ import annotations

import logging

import altair as alt
import pandas as pd

from sift.app.pipeline import RerankTrace, TraceCandidate

logger = logging.getLogger(__name__)

PROMOTED, DEMOTED, UNCHANGED = "promoted", "demoted", "unchanged"
MOVEMENT_COLOURS = {PROMOTED: "#1b7f3b", DEMOTED: "#c62828", UNCHANGED: "#8a8a8a"}
RETRIEVAL_SIDE, FINAL_SIDE = "retrieval rank", "final rank"


def change_label(rank_change: int) -> str:
    """``rank_change`` is retrieval rank minus final rank: positive means the reranker moved the passage up.

    >>> change_label(3), change_label(-2), change_label(0)
    ('▲3', '▼2', '–')
    """
    if rank_change > 0:
        return f"▲{rank_change}"
    if rank_change < 0:
        return f"▼{-rank_change}"
    return "–"


def movement(rank_change: int) -> str:
    return PROMOTED if rank_change > 0 else DEMOTED if rank_change < 0 else UNCHANGED


def change_colour(label: str) -> str:
    """CSS for a change cell: promoted green, demoted red."""
    if label.startswith("▲"):
        return f"color: {MOVEMENT_COLOURS[PROMOTED]}; font-weight: 600"
    if label.startswith("▼"):
        return f"color: {MOVEMENT_COLOURS[DEMOTED]}; font-weight: 600"
    return ""


def passage_label(candidate: TraceCandidate) -> str:
    return f"{candidate.source} · passage {candidate.chunk_id}"


def candidate_rows(trace: RerankTrace) -> list[dict]:
    """One row per candidate, best first: its ranks before and after, the change, the stage that placed it (the LLM,
    or the first-stage signals alone; "–" in a trace from before the cascade), each criterion's score on its own
    scale (empty where the criterion fell back or did not score it), and the composite the final order sorts by."""
    names = trace.criterion_names()
    rows = []
    for c in sorted(trace.candidates, key=lambda c: c.final_rank):
        scores = {s.name: s.score for s in c.criteria}
        rows.append(
            {
                "final rank": c.final_rank,
                "retrieval rank": c.retrieval_rank,
                "change": change_label(c.rank_change),
                "passage": passage_label(c),
                "stage": c.stage or "–",
                **{name: scores.get(name) for name in names},
                "composite": c.composite,
            }
        )
    return rows


def llm_scored_caption(llm_k: int | None, passages: int) -> str | None:
    """How many of a trace's passages the LLM scored; None when it scored none or the trace does not say (traces
    from before the cascade).

    >>> llm_scored_caption(20, 100)
    'The LLM scored the best 20 of 100 passages by the first-stage signals; the rest keep that order below them.'
    >>> llm_scored_caption(20, 20), llm_scored_caption(None, 20)
    ('The LLM scored all 20 passages.', None)
    """
    if not llm_k:
        return None
    if llm_k >= passages:
        return f"The LLM scored all {passages} passages."
    return (
        f"The LLM scored the best {llm_k} of {passages} passages by the first-stage signals; "
        "the rest keep that order below them."
    )


def llm_stage_label(seconds: float, budget_s: float | None) -> str:
    """The LLM stage's time, against its budget where it had one.

    >>> llm_stage_label(1.234, 1.5), llm_stage_label(5.71, None)
    ('1.2 s of 1.5 s', '5.7 s')
    """
    return f"{seconds:.1f} s" + (f" of {budget_s:g} s" if budget_s else "")


def budget_caption(trace: RerankTrace) -> str | None:
    """What the latency budget did: the rate it was sized with and the time taken; None without a budget.

    >>> from sift.app.pipeline import RerankTrace
    >>> budget_caption(RerankTrace(query="q", mode="relevance", strategy="logits", model=None, weights={},
    ...                            criteria_methods={}, candidates=[], llm_k=4, llm_budget_s=1.5, llm_seconds=1.31,
    ...                            prefill_tokens_per_s=1020.4))
    'Latency budget 1.5 s: at the 1,020 tokens/s measured here, the LLM could score 4 passages; it took 1.31 s.'
    """
    if not trace.llm_budget_s or trace.llm_seconds is None:
        return None
    return (
        f"Latency budget {trace.llm_budget_s:g} s: at the {trace.prefill_tokens_per_s or 0:,.0f} tokens/s measured "
        f"here, the LLM could score {trace.llm_k} passage{'s' if trace.llm_k != 1 else ''}; it took "
        f"{trace.llm_seconds:.2f} s."
    )


def weights_caption(trace: RerankTrace) -> str | None:
    """Where the weights came from, when a fitted profile supplied them (``sift tune``).

    >>> from sift.app.pipeline import RerankTrace
    >>> weights_caption(RerankTrace(query="q", mode="relevance", strategy="logits", model=None, weights={},
    ...                             criteria_methods={}, candidates=[], weights_profile="6d9e99064531"))
    'Weights fitted for these models by `sift tune` (profile 6d9e99064531); weights set by hand override them.'
    """
    if not trace.weights_profile:
        return None
    return (
        f"Weights fitted for these models by `sift tune` (profile {trace.weights_profile}); weights set by hand "
        "override them."
    )


def weight_rows(trace: RerankTrace) -> list[dict]:
    """The criteria the composite weighed, with their weights and how each was scored."""
    return [
        {"criterion": name, "weight": weight, "scored by": trace.criteria_methods.get(name, "")}
        for name, weight in trace.weights.items()
    ]


def rank_movement_chart(trace: RerankTrace) -> alt.LayerChart:
    """A slope chart: each passage a line from its retrieval rank (left axis) to its final rank (right axis),
    coloured by whether the reranker promoted or demoted it."""
    points = []
    for c in trace.candidates:
        common = {
            "passage": passage_label(c),
            "retrieval": c.retrieval_rank,
            "final": c.final_rank,
            "change": change_label(c.rank_change),
            "movement": movement(c.rank_change),
        }
        points += [
            {**common, "side": RETRIEVAL_SIDE, "rank": c.retrieval_rank},
            {**common, "side": FINAL_SIDE, "rank": c.final_rank},
        ]
    count = max(len(trace.candidates), 1)
    ranks = alt.Scale(domain=[1, count], reverse=True, nice=False)  # rank 1 at the top
    ticks = list(range(1, count + 1))
    base = alt.Chart(pd.DataFrame(points)).encode(
        x=alt.X(
            "side:N",
            sort=[RETRIEVAL_SIDE, FINAL_SIDE],
            title=None,
            axis=alt.Axis(labelAngle=0, orient="top", labelFontSize=13),
            scale=alt.Scale(padding=0.15),
        ),
        color=alt.Color(
            "movement:N",
            title=None,
            scale=alt.Scale(domain=list(MOVEMENT_COLOURS), range=list(MOVEMENT_COLOURS.values())),
        ),
        tooltip=["passage", "retrieval", "final", "change"],
    )
    lines = base.mark_line(point=True, strokeWidth=2).encode(
        y=alt.Y("rank:Q", scale=ranks, axis=alt.Axis(title=RETRIEVAL_SIDE, values=ticks)), detail="passage:N"
    )
    # The same points again, for an axis on the right that reads as the final rank.
    right = base.mark_point(filled=True, size=50).encode(
        y=alt.Y("rank:Q", scale=ranks, axis=alt.Axis(title=FINAL_SIDE, orient="right", values=ticks))
    )
    return alt.layer(lines, right).resolve_axis(y="independent").properties(height=max(240, 22 * count))
