"""The first question of a fresh process: is its LLM stage sized by this machine (calibrated) or by a guess?

    .venv/bin/python bench/first_question.py --out docs/results/first-question.json     # ~5 min on 2 cores

Each measurement is a new process (as a server start, the app's start or one ``sift ask`` is) that builds the
settings' reranker and asks one sample question with the default latency budget. ``guess`` sizes the budget by the
first guess of 1,000 tokens/s, as Sift did before ``Reranker.calibrate``; ``calibrated`` measures the rate first.
Both run quiet, then ``busy``: beside two CPU-bound processes at normal priority (any other program on the user's
machine), the two variants taking turns. Prints one JSON object (also to --out): per row the tokens/s the budget was
sized with, the passages the LLM scored, the LLM stage's seconds against the budget, and the seconds to build the
reranker (model loading, plus the calibration where there is one); and the machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ingest_search import emit, load_average, log, machine

from sift.app.config import Settings
from sift.app.pipeline import Sift
from sift.rerank.reranker import Reranker

REPO = Path(__file__).resolve().parent.parent
QUESTION = "How does a Fresnel lens concentrate light?"


def one_question(data_dir: Path, variant: str) -> dict:
    """In this process: build the reranker, ask, and report how the LLM stage was sized and how long it took."""
    if variant == "guess":
        Reranker.calibrate = lambda self: None  # the first question sized by FIRST_TOKENS_PER_S, as before
    sift = Sift(Settings(data_dir=data_dir))
    started = time.perf_counter()
    sift.reranker()
    built = time.perf_counter() - started
    trace = sift.ask(QUESTION, corpus="sample").rerank
    return {
        "variant": variant,
        "sized_with_tokens_per_s": round(trace.prefill_tokens_per_s),
        "llm_scored": trace.llm_k,
        "llm_stage_s": round(trace.llm_seconds, 2),
        "budget_s": trace.llm_budget_s,
        "reranker_built_s": round(built, 2),
    }


def measure(data_dir: Path, condition: str, rounds: int) -> list[dict]:
    rows = []
    for _ in range(rounds):
        for variant in ("guess", "calibrated"):
            command = [sys.executable, __file__, "--one", variant, "--data-dir", str(data_dir)]
            load = load_average()[0]
            out = subprocess.run(command, capture_output=True, text=True, check=True, cwd=REPO).stdout
            rows.append({"condition": condition, "load_average": load, **json.loads(out.splitlines()[-1])})
            log(f"{condition} {rows[-1]}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="questions per variant and condition")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--one", choices=["guess", "calibrated"], help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_question(args.data_dir, args.one)))
        return

    data_dir = Path(tempfile.mkdtemp(prefix="sift-first-question-")) / "data"
    settings = Settings(data_dir=data_dir)
    report = {"machine": machine(settings), "question": QUESTION, "rows": []}
    Sift(settings).ingest_paths(sorted((REPO / "sample_corpus").iterdir()), "sample")
    report["rows"] += measure(data_dir, "quiet", args.rounds)
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        time.sleep(5)
        report["rows"] += measure(data_dir, "busy", args.rounds)
    finally:
        for burner in burners:
            burner.kill()
    report["machine"]["load_average_end"] = load_average()
    emit(report, args.out)


if __name__ == "__main__":
    main()
