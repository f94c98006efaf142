"""Evaluation: the latest eval reports (table and quality-vs-time plot), and a small run started from the page.

Full runs belong to the command line (``sift eval ...``, ``make bench``); both write into the same results folder,
so their reports show here too.
"""

import logging

import pandas as pd
import streamlit as st

from sift.app.evals import EVALS, default_dataset, reports, run_eval
from sift.app.evals.reports import table_rows
from sift.ui.markdown import escape
from sift.ui.state import leave_notice, show_notice, sift

logger = logging.getLogger("sift.ui.app_pages.evaluation")  # run as a script: __name__ is "__main__"

PICKED = "picked-report"  # session-state key: the report to show first (the one just written)


def run_small_eval(kind: str, dataset: str, modes: list[str], limit: int) -> None:
    bar = st.progress(0.0, text="Starting…")

    def on_progress(stage: str, done: int, total: int) -> None:
        bar.progress(done / max(total, 1), text=escape(f"{stage}: {done} of {total}"))

    try:
        files = run_eval(sift().settings, kind, dataset, modes, limit, on_progress)
    except Exception as exc:  # a readable line for the user, the traceback to the log
        logger.error("An evaluation run failed", exc_info=exc)
        leave_notice("error", f"The evaluation stopped: {exc}")
    else:
        st.session_state[PICKED] = files.stem
        leave_notice("success", f"Report written to {files.json}.")
    st.rerun()


st.title("Evaluation")
show_notice()
settings = sift().settings
found = reports(settings)
if not found:
    st.info(
        f"No reports in {settings.resolved_results_dir()} yet. Start a small run below, or run `make bench` "
        "(the standard suite) or `sift eval ...` on the command line."
    )
else:
    stems = [f.stem for f in found]
    picked = st.selectbox(
        "Report",
        range(len(found)),
        index=stems.index(st.session_state[PICKED]) if st.session_state.get(PICKED) in stems else 0,
        format_func=lambda i: stems[i],
    )
    files = found[picked]
    report = files.load()
    st.caption(
        escape(
            f"{report.kind} on {report.dataset} · {report.created.isoformat()} · "
            + ", ".join(f"{k} {v}" for k, v in report.setup.items())
        )
    )
    st.dataframe(pd.DataFrame(table_rows(report)), hide_index=True)
    if files.plot.is_file():
        st.image(str(files.plot), width=720, caption=f"{report.quality_metric} against time per query")
    if report.command:
        st.code(report.command, language="bash")
    examples = [e.model_dump() | {"mode": r.label} for r in report.rows for e in r.examples]  # with style, variant
    if examples:
        with st.expander("Example answers"):
            st.dataframe(pd.DataFrame(examples), hide_index=True)

st.header("Run a small evaluation")
kind = st.radio("What to measure", list(EVALS), format_func=lambda k: EVALS[k][0])
dataset = st.text_input("Dataset folder", str(default_dataset(settings, kind)))
choices = ["none"] + [f"{m}:{s}" for m in sift().llm_rerank_modes for s in sift().rerank_strategies]
modes = st.multiselect(
    "Modes",
    choices,
    default=["none", f"{settings.rerank_mode}:{settings.rerank_strategy}"]
    if settings.rerank_mode != "none"
    else ["none"],
)
limit = st.number_input(
    "Queries / questions",
    min_value=1,
    max_value=1000,
    value=5,
    help="A small run takes about 5-15 s per query and mode on a 2-core CPU.",
)
if st.button("Run", type="primary", disabled=not modes):
    run_small_eval(kind, dataset, modes, int(limit))
