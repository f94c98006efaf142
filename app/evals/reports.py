"""Eval reports: one JSON file, one Markdown table and one quality-vs-time plot (PNG) per run, in a results folder.

Every eval (rerank, retrieval, qa) returns the same ``Report``, so one writer, one reader and one plot serve them
all; its JSON is the file's, and files written by earlier releases load::

    {"kind": "retrieval", "dataset": "dbpedia-entity-5k", "created": "2026-11-22T21:40:00", "command": "sift eval ...",
     "quality_metric": "ndcg@10", "setup": {...}, "machine": {...},
     "rows": [{"mode": "none", "strategy": null, "queries": 40, "ms_per_query": 14.2,
               "metrics": {"ndcg@10": 0.41, ...}, "timings_ms": {"retrieve": 14.2}, ...}, ...]}

Example::

    >>> row = ReportRow(mode="relevance", strategy="logits", queries=2,
    ...                 metrics={"f1": 0.31, "exact_match": float("nan")}, ms_per_query=4100.0, timings_ms={})
    >>> row.label, row.metrics["exact_match"]
    ('relevance:logits', None)
    >>> row.model_copy(update={"style": "extractive", "variant": "single"}).label
    'relevance:logits [extractive] (single)'
    >>> files = write_report(report, Path("data/results"))       # doctest: +SKIP
    >>> files.json.name                                          # doctest: +SKIP
    'retrieval-dbpedia-entity-5k-20261122-214000.json'
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, SerializerFunctionWrapHandler, model_serializer

from sift.rerank.evaluation import Figure, Machine

logger = logging.getLogger(__name__)

STAGES = ("rewrite", "retrieve", "rerank", "generate")
"""The pipeline's stages in order: the order of the time columns."""
MAX_COLUMNS = 12
"""The most columns a report's table has before it is turned: a line per figure, a column per mode / strategy."""


class _Measured(BaseModel):
    """A model that writes only the fields it was given, so that one written before a field existed reads back the
    same, and one with no such figure does not say it measured it (as null)."""

    @model_serializer(mode="wrap")
    def _measured_only(self, handler: SerializerFunctionWrapHandler) -> dict:
        return {name: value for name, value in handler(self).items() if name in self.model_fields_set}


class AnswerExample(_Measured):
    """One question the QA eval asked, shown beside the figures."""

    question: str
    answer: str
    references: list[str]
    contains_reference: bool | None = None  # the answer contains a reference (None in reports from before)
    f1: float
    cited: list[str]  # the cited passages' sources


class ReportRow(_Measured):
    """One mode / strategy's figures. Fields with a default are figures only some evals measure; a row writes only
    the fields it was given (a retrieval row carrying "citations": null and "examples": [] would say it measured
    them)."""

    mode: str
    strategy: str | None
    style: str | None = None  # the QA eval's answer style ("extractive", ...); None: the pipeline's own choice
    variant: str | None = None  # how the questions were asked, where an eval asks them several ways
    queries: int
    metrics: dict[str, Figure]
    ms_per_query: Figure
    timings_ms: dict[str, Figure] = {}  # stage -> mean ms per query
    # the rerank eval's
    ms_per_query_median: Figure = None
    tokens_per_query: Figure = None
    llm_scored_per_query: Figure = None  # passages the LLM scored, mean per query (the cascade, the budget)
    passages_per_s: Figure = None
    prefill_tokens_per_s: Figure = None
    prefill_floor_ratio: Figure = None
    weights: dict[str, float] | None = None
    speedup: Figure = None  # how many times faster than the report's yardstick row (setup "speedup_against")
    # the QA eval's
    citations: int | None = None
    examples: list[AnswerExample] = []

    @property
    def label(self) -> str:
        """``mode:strategy [style] (variant)``, each part where the row has it."""
        return (
            self.mode
            + (f":{self.strategy}" if self.strategy else "")
            + (f" [{self.style}]" if self.style else "")
            + (f" ({self.variant})" if self.variant else "")
        )


class Report(BaseModel):
    """One eval run: what was measured, on what, how (``setup``: the settings that shape the figures) and where."""

    kind: str
    dataset: str
    dataset_path: str
    created: datetime
    command: str | None = None
    quality_metric: str  # the metric the plot puts against time
    setup: dict[str, str | int | float | None]
    machine: Machine = Machine()
    rows: list[ReportRow] = []

    @classmethod
    def new(
        cls,
        kind: str,
        dataset: str | Path,
        quality_metric: str,
        setup: dict[str, str | int | float | None],
        command: str | None = None,
    ) -> Report:
        """An empty report, dated now, on this machine; evals append one row per mode / strategy."""
        return cls(
            kind=kind,
            dataset=Path(dataset).name,
            dataset_path=str(Path(dataset).resolve()),
            created=datetime.now().replace(microsecond=0),
            command=command,
            quality_metric=quality_metric,
            setup=setup,
            machine=Machine.current(),
        )


@dataclass(frozen=True)
class ReportFiles:
    """Where one report was written."""

    json: Path
    markdown: Path
    plot: Path

    @property
    def stem(self) -> str:
        return self.json.stem

    def load(self) -> Report:
        return Report.model_validate_json(self.json.read_text())


def table_rows(report: Report) -> list[dict[str, str | int | float | None]]:
    """The table's lines, one per mode / strategy (column -> value): every metric any row has, the time per query,
    then per stage in pipeline order (None where a row lacks a value); in a report measured against a yardstick,
    the passages the LLM scored and the tokens per query, and each row's speed-up over it, last."""
    rows = report.rows
    metrics = list(dict.fromkeys(m for r in rows for m in r.metrics))
    stages = sorted(
        dict.fromkeys(s for r in rows for s in r.timings_ms),
        key=lambda s: STAGES.index(s) if s in STAGES else len(STAGES),
    )
    against = report.setup.get("speedup_against")
    return [
        {
            "mode:strategy": r.label,
            "queries": r.queries,
            **{m: r.metrics.get(m) for m in metrics},
            "ms/query": r.ms_per_query,
            **{f"{s} ms": r.timings_ms.get(s) for s in stages},
            **(
                {
                    "LLM-scored/query": r.llm_scored_per_query,
                    "tokens/query": r.tokens_per_query,
                    f"× faster than {against}": r.speedup,
                }
                if against
                else {}
            ),
        }
        for r in rows
    ]


def markdown_table(report: Report) -> str:
    """The report as a Markdown table: one line per mode / strategy, every metric, time per query; with more than
    ``MAX_COLUMNS`` of them (the QA eval's), one line per figure and a column per mode / strategy, which a terminal
    shows without wrapping."""
    rows = table_rows(report)
    header = list(rows[0]) if rows else ["mode:strategy", "queries", "ms/query"]
    lines = [f"### {report.kind} on {report.dataset} ({report.created.isoformat()})", ""]
    if len(header) > MAX_COLUMNS:
        lines += [
            "| " + " | ".join([header[0], *(str(r[header[0]]) for r in rows)]) + " |",
            "|---|" + "---|" * len(rows),
        ]
        lines += [
            "| " + " | ".join([name, *(_cell(r[name], _digits(name)) for r in rows)]) + " |" for name in header[1:]
        ]
    else:
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for row in rows:
            cells = [_cell(value, _digits(name)) for name, value in row.items()]
            lines.append("| " + " | ".join(cells) + " |")
    if report.command:
        lines += ["", f"Command: `{report.command}`"]
    machine = report.machine
    lines.append(f"Machine: {machine.cpu_count} CPUs, GPU {machine.gpu or 'none'}, torch {machine.torch}.")
    return "\n".join(lines) + "\n"


def _digits(column: str) -> int:
    """Times and tokens in whole units, passage counts to 1 place, speed-ups to 2, metrics to 4."""
    if column.endswith("ms") or column in ("ms/query", "tokens/query"):
        return 0
    if column == "LLM-scored/query":
        return 1
    return 2 if column.startswith("× ") else 4


def _cell(value: str | int | float | None, digits: int = 4) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def plot(report: Report, path: Path) -> None:
    """Quality against time per query, one labelled point per mode / strategy (REBEL's trade-off figure)."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a server
    import matplotlib.pyplot as plt

    metric = report.quality_metric
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for r in report.rows:
        y = r.metrics.get(metric)
        if y is None or r.ms_per_query is None:
            continue
        x = max(r.ms_per_query, 0.01)
        ax.scatter([x], [y], s=40)
        ax.annotate(r.label, (x, y), textcoords="offset points", xytext=(6, 4), fontsize=8)
    # Baselines measured beside every row (e.g. "ndcg@10 bm25" in the rerank eval) as dashed lines.
    baselines = {
        name: value
        for r in report.rows
        for name, value in r.metrics.items()
        if name.startswith(f"{metric} ") and value is not None
    }
    for name, value in baselines.items():
        ax.axhline(value, linestyle="--", linewidth=0.8, color="grey")
        ax.annotate(
            name.removeprefix(f"{metric} "),
            (0, value),
            xycoords=("axes fraction", "data"),
            textcoords="offset points",
            xytext=(4, 3),
            fontsize=7,
            color="grey",
        )
    ax.set_xscale("log")
    ax.margins(x=0.2)
    ax.set_xlabel("time per query (ms, log scale)")
    ax.set_ylabel(metric)
    ax.set_title(f"{report.kind} on {report.dataset}: quality vs. time", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_report(report: Report, folder: Path) -> ReportFiles:
    """Write ``<kind>-<dataset>-<time>.json/.md/.png`` into ``folder`` (created if needed)."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{report.kind}-{report.dataset}-{report.created:%Y%m%d-%H%M%S}"
    files = ReportFiles(folder / f"{stem}.json", folder / f"{stem}.md", folder / f"{stem}.png")
    files.json.write_text(report.model_dump_json(indent=2))
    files.markdown.write_text(markdown_table(report))
    plot(report, files.plot)
    logger.info("Wrote the %s report to %s", report.kind, files.json)
    return files


def list_reports(folder: Path) -> list[ReportFiles]:
    """Reports in ``folder``, newest first (by the time in their name)."""
    if not folder.is_dir():
        return []
    found = [
        ReportFiles(j, j.with_suffix(".md"), j.with_suffix(".png"))
        for j in folder.glob("*.json")
        if j.with_suffix(".md").is_file()
    ]  # other JSON (e.g. bench/ingest_search.py's) is not a report
    return sorted(found, key=lambda f: f.stem.rsplit("-", 2)[-2:], reverse=True)
