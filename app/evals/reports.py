"""Eval reports: one JSON file, one Markdown table and one quality-vs-time plot (PNG) per run, in a results folder.

Every eval (rerank, retrieval, qa) returns the same shape, so one writer, one reader and one plot serve them all::

    {"kind": "retrieval", "dataset": "dbpedia-entity-5k", "created": "2026-11-22T21:40:00", "command": "sift eval ...",
     "quality_metric": "ndcg@10", "setup": {...}, "machine": {...},
     "rows": [{"mode": "none", "strategy": null, "queries": 40, "ms_per_query": 14.2,
               "metrics": {"ndcg@10": 0.41, ...}, "timings_ms": {"retrieve": 14.2}, ...}, ...]}

Example::

    >>> files = write_report(report, Path("data/results"))       # doctest: +SKIP
    >>> files.json.name                                          # doctest: +SKIP
    'retrieval-dbpedia-entity-5k-20261122-214000.json'
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sift.rerank.evaluation import machine_info

STAGES = ("rewrite", "retrieve", "rerank", "generate")
"""The pipeline's stages in order: the order of the time columns."""


@dataclass(frozen=True)
class ReportFiles:
    """Where one report was written."""

    json: Path
    markdown: Path
    plot: Path

    @property
    def stem(self) -> str:
        return self.json.stem

    def load(self) -> dict:
        return json.loads(self.json.read_text())


def new_report(kind: str, dataset: str | Path, quality_metric: str, setup: dict, command: str | None = None) -> dict:
    """An empty report; evals append one row per mode / strategy."""
    return {"kind": kind, "dataset": Path(dataset).name, "dataset_path": str(Path(dataset).resolve()),
            "created": datetime.now().isoformat(timespec="seconds"), "command": command,
            "quality_metric": quality_metric, "setup": setup, "machine": machine_info(), "rows": []}


def row_label(row: dict) -> str:
    return row["mode"] + (f":{row['strategy']}" if row.get("strategy") else "")


def table_rows(report: dict) -> list[dict]:
    """One dict per mode / strategy: every metric any row has, the time per query, then per stage in pipeline order
    (None where a row lacks a value)."""
    rows = report["rows"]
    metrics = list(dict.fromkeys(m for r in rows for m in r["metrics"]))
    stages = sorted(dict.fromkeys(s for r in rows for s in r.get("timings_ms", {})),
                    key=lambda s: STAGES.index(s) if s in STAGES else len(STAGES))
    return [{"mode:strategy": row_label(r), "queries": r["queries"], **{m: r["metrics"].get(m) for m in metrics},
             "ms/query": r["ms_per_query"], **{f"{s} ms": r.get("timings_ms", {}).get(s) for s in stages}}
            for r in rows]


def markdown_table(report: dict) -> str:
    """The report as a Markdown table: one line per mode / strategy, every metric, time per query."""
    rows = table_rows(report)
    header = list(rows[0]) if rows else ["mode:strategy", "queries", "ms/query"]
    lines = [f"### {report['kind']} on {report['dataset']} ({report['created']})", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        # times in whole milliseconds, metrics to 4 places
        cells = [_cell(value, 0 if name.endswith("ms") or name == "ms/query" else 4) for name, value in row.items()]
        lines.append("| " + " | ".join(cells) + " |")
    if report.get("command"):
        lines += ["", f"Command: `{report['command']}`"]
    machine = report.get("machine") or {}
    lines.append(f"Machine: {machine.get('cpu_count')} CPUs, GPU {machine.get('gpu') or 'none'}, "
                 f"torch {machine.get('torch')}.")
    return "\n".join(lines) + "\n"


def _cell(value, digits: int = 4) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def plot(report: dict, path: Path) -> None:
    """Quality against time per query, one labelled point per mode / strategy (REBEL's trade-off figure)."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a server
    import matplotlib.pyplot as plt

    metric = report["quality_metric"]
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for r in report["rows"]:
        x, y = max(r["ms_per_query"], 0.01), r["metrics"].get(metric)
        if y is None:
            continue
        ax.scatter([x], [y], s=40)
        ax.annotate(row_label(r), (x, y), textcoords="offset points", xytext=(6, 4), fontsize=8)
    # Baselines measured beside every row (e.g. "ndcg@10 bm25" in the rerank eval) as dashed lines.
    baselines = {name: value for r in report["rows"] for name, value in r["metrics"].items()
                 if name.startswith(f"{metric} ") and value is not None}
    for name, value in baselines.items():
        ax.axhline(value, linestyle="--", linewidth=0.8, color="grey")
        ax.annotate(name.removeprefix(f"{metric} "), (0, value), xycoords=("axes fraction", "data"),
                    textcoords="offset points", xytext=(4, 3), fontsize=7, color="grey")
    ax.set_xscale("log")
    ax.margins(x=0.2)
    ax.set_xlabel("time per query (ms, log scale)")
    ax.set_ylabel(metric)
    ax.set_title(f"{report['kind']} on {report['dataset']}: quality vs. time", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_report(report: dict, folder: Path) -> ReportFiles:
    """Write ``<kind>-<dataset>-<time>.json/.md/.png`` into ``folder`` (created if needed)."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = report["created"].replace("-", "").replace(":", "").replace("T", "-")
    stem = f"{report['kind']}-{report['dataset']}-{stamp}"
    files = ReportFiles(folder / f"{stem}.json", folder / f"{stem}.md", folder / f"{stem}.png")
    files.json.write_text(json.dumps(report, indent=2))
    files.markdown.write_text(markdown_table(report))
    plot(report, files.plot)
    return files


def list_reports(folder: Path) -> list[ReportFiles]:
    """Reports in ``folder``, newest first (by the time in their name)."""
    if not folder.is_dir():
        return []
    found = [ReportFiles(j, j.with_suffix(".md"), j.with_suffix(".png")) for j in folder.glob("*.json")
             if j.with_suffix(".md").is_file()]  # other JSON (e.g. bench/ingest_search.py's) is not a report
    return sorted(found, key=lambda f: f.stem.rsplit("-", 2)[-2:], reverse=True)
