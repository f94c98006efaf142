"""schemathesis against ``sift serve``'s own OpenAPI schema, on a real server (``tests/serving.py``) with a corpus.

schemathesis' own command runs every phase (coverage, fuzzing, stateful sequences that follow the schema's links)
with a bounded number of cases per operation, in deterministic mode so a run is repeatable:
- malformed requests (wrong types, missing fields, values out of range, bodies that are not JSON, unknown enum
  values) must each be refused with a 4xx, never a 500, and say why in ``detail``;
- well-formed requests with made-up values (corpus names, ids, questions) must never get a 500 either.
The stateful phase follows links from one response into the next request, so it may delete what it created or
listed: that refusals change nothing is tests/test_api.py's to check.
(pytest 9 cannot run schemathesis' own pytest plugin, hence its command.)
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import SAMPLE_CORPUS
from tests.serving import Server

pytestmark = pytest.mark.slow

SCHEMATHESIS = Path(sys.executable).parent / "st"
# Each well-formed rerank request runs the LLM over up to 1,000 made-up documents of up to 10,000 characters:
# tests/test_api.py covers that endpoint with real ones; malformed rerank requests are refused before the model.
LLM_OVER_MADE_UP_DOCUMENTS = "/v1/rerank"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = Server(tmp_path_factory.mktemp("schema") / "data").start()
    assert server.http.post("/corpora", json={"name": "lights"}).status_code == 201
    files = [("files", (p.name, p.read_bytes())) for p in sorted(SAMPLE_CORPUS.glob("*.md"))]
    server.wait_for_job(server.http.post("/corpora/lights/uploads", files=files).json()["id"])
    yield server
    server.stop()


def schemathesis_run(server: Server, *options: str) -> str:
    command = [str(SCHEMATHESIS), "run", f"{server.url}/openapi.json", "--generation-deterministic"]
    command += ["--request-timeout", "300", "--max-failures", "10", "--no-color", *options]
    run = subprocess.run(command, capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    return run.stdout


def every_case_passed(report: str) -> bool:
    counts = re.search(r"(\d+) generated, (\d+) passed", report)
    return bool(counts) and counts[1] == counts[2] and int(counts[1]) > 100


def test_every_malformed_request_gets_a_4xx_with_its_reason(server):
    report = schemathesis_run(
        server, "--mode", "negative", "--max-examples", "30", "--checks", "not_a_server_error,negative_data_rejection"
    )
    assert every_case_passed(report) and "Tested: 19" in report, report[-3000:]
    # Each refusal says why (schemathesis checks the status; the reason is Sift's promise).
    refused = [
        server.http.post("/search", json={"corpus": "lights", "query": 3}),
        server.http.post("/ask", json={"question": "Who?"}),
        server.http.post("/v1/rerank", json={"query": "x", "documents": "not a list"}),
        server.http.get("/jobs/" + "x" * 40),
    ]
    assert all(400 <= r.status_code < 500 and r.json()["detail"] for r in refused), [r.text for r in refused]


def test_no_well_formed_request_gets_a_500(server):
    report = schemathesis_run(
        server,
        "--mode",
        "positive",
        "--max-examples",
        "15",
        "--checks",
        "not_a_server_error",
        "--exclude-path",
        LLM_OVER_MADE_UP_DOCUMENTS,
    )
    assert every_case_passed(report) and "Tested: 18" in report, report[-3000:]
    assert httpx.get(f"{server.url}/corpora").status_code == 200  # the server is still up and answering
