"""``sift serve`` as a client meets it: a real server in a subprocess on a free port, over a temporary data directory,
with the packaged models, called with httpx and the ``openai`` client library.

One server serves the module's tests in order (upload, then questions about what was uploaded); the restart test
starts its own. Answers are kept short (few candidates, few tokens): the models are slow on 2 cores.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from openai import OpenAI

from sift.app.config import Settings
from sift.app.generation import without_citations
from sift.app.model_choice import ModelChoice
from sift.app.models import language_model
from sift.app.pipeline import Sift
from tests.conftest import SAMPLE_CORPUS
from tests.openai_standin import serve
from tests.serving import Server, sse_events

pytestmark = pytest.mark.slow

QUESTION = "Who designed the Pharos of Alexandria?"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = Server(tmp_path_factory.mktemp("api") / "data").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def lights(server) -> str:
    """A corpus with two sample files in it, uploaded through the API."""
    assert server.http.post("/corpora", json={"name": "lights"}).status_code == 201
    files = [("files", (p.name, p.read_bytes())) for p in sorted(SAMPLE_CORPUS.glob("*.md"))]
    job = server.wait_for_job(server.http.post("/corpora/lights/uploads", files=files).json()["id"])
    assert [f["status"] for f in job["files"]] == ["added", "added"]
    return "lights"


def test_the_openapi_schema_documents_the_endpoints(server):
    schema = server.http.get("/openapi.json").json()
    for path in (
        "/corpora/{name}/uploads",
        "/jobs/{job_id}",
        "/search",
        "/ask",
        "/ask/stream",
        "/traces/{trace_id}",
        "/corpora/{name}/conversations",
        "/v1/chat/completions",
        "/v1/models",
        "/v1/rerank",
    ):
        assert path in schema["paths"], path
    ask = schema["components"]["schemas"]["AskRequest"]["properties"]
    assert "conversation_id" in ask and ask["retrieval"]["description"]


def test_an_upload_is_a_job_with_a_result_per_file(server, lights):
    hostile, original = "../../../etc/x\u202e.md", (SAMPLE_CORPUS / "lighthouse-keepers-daily-life.txt").read_bytes()
    files = [
        ("files", (hostile, b"# Keepers\nThe keeper trimmed the wick at dusk and dawn.")),
        ("files", ("empty.txt", b"")),
        ("files", ("broken.pdf", b"%PDF-1.4 this is not a PDF")),
        ("files", ("history-of-lighthouses.md", (SAMPLE_CORPUS / "history-of-lighthouses.md").read_bytes())),
        ("files", ("keepers.txt", original)),
    ]
    accepted = server.http.post(f"/corpora/{lights}/uploads", files=files)
    assert accepted.status_code == 202
    job = server.wait_for_job(accepted.json()["id"])

    assert job["status"] == "done"
    results = {f["name"]: f for f in job["files"]}
    assert [f["name"] for f in job["files"]] == [name for _, (name, _) in files]
    stored_as = results[hostile]["source"]
    assert results[hostile]["status"] == "added" and stored_as == "etc/x.md"  # no escape, no hidden characters
    assert results["empty.txt"]["status"] == "failed" and "empty" in results["empty.txt"]["reason"]
    assert results["broken.pdf"]["status"] == "failed" and results["broken.pdf"]["reason"]
    assert results["history-of-lighthouses.md"]["status"] == "unchanged"
    assert results["keepers.txt"]["status"] == "added" and results["keepers.txt"]["chunks"] > 0
    assert not (server.data_dir / "uploads" / job["id"]).exists()  # deleted once the job ended

    documents = server.http.get(f"/corpora/{lights}/documents").json()
    assert sorted(d["source"] for d in documents) == sorted(
        [stored_as, "history-of-lighthouses.md", "keepers.txt", "light-characteristics.md"]
    )
    assert server.http.get(f"/corpora/{lights}/jobs").json()[0]["id"] == job["id"]

    removed = next(d for d in documents if d["source"] == stored_as)
    assert server.http.delete(f"/corpora/{lights}/documents/{removed['id']}").json() == {
        "deleted": stored_as,
        "documents": None,
    }


def test_search_returns_scored_passages(server, lights):
    found = server.http.post("/search", json={"corpus": lights, "query": "Pharos of Alexandria", "k": 3}).json()
    assert len(found["passages"]) == 3
    assert found["passages"][0]["source"] == "history-of-lighthouses.md"
    assert found["passages"][0]["score"] >= found["passages"][1]["score"]


def test_ask_as_json_then_its_trace(server, lights):
    answer = server.http.post("/ask", json={"corpus": lights, "question": QUESTION}).json()
    # The packaged 135M model's wording varies with the passages it is given: the test checks what it cites.
    assert answer["answered"] and answer["answer"].strip()
    assert answer["citations"][0]["source"] == "history-of-lighthouses.md"
    trace = server.http.get(f"/traces/{answer['trace_id']}").json()
    assert trace["query"] == QUESTION and trace["trace"]["candidates"]
    assert answer["trace_id"] in [t["id"] for t in server.http.get(f"/corpora/{lights}/traces").json()]


def test_ask_quotes_or_writes_as_asked(server, lights):
    quoted = server.http.post("/ask", json={"corpus": lights, "question": QUESTION, "answer_style": "extractive"})
    answer = quoted.json()
    assert answer["answer_style"] == "extractive" and isinstance(answer["answers_question"], bool)
    cited = answer["citations"][0]
    assert cited["source"] == "history-of-lighthouses.md" and "Pharos" in answer["answer"]
    assert without_citations(answer["answer"]) in " ".join(cited["text"].split())  # word for word
    refused = server.http.post("/ask", json={"corpus": lights, "question": QUESTION, "answer_style": "poetic"})
    assert refused.status_code == 422 and "answer_style" in refused.text


def test_ask_with_the_model_the_user_picked_in_the_app(server, lights):
    base_url, standin = serve(language_model(Settings()), model_name="smollm2")  # records what it is sent
    try:
        # With auth off every caller is the local user, whose choice the app keeps (the same database).
        Sift(Settings(data_dir=server.data_dir)).save_model_choice(
            ModelChoice("server", base_url=base_url, model="smollm2")
        )
        ask = {"corpus": lights, "question": QUESTION, "mode": "none"}
        plain = server.http.post("/ask", json=ask)
        assert plain.status_code == 200 and plain.json()["answer_style"] == "extractive"  # the settings' 135M model
        assert not standin.requests
        picked = server.http.post("/ask", json={**ask, "answer_model": "picked"})
        assert picked.status_code == 200, picked.text
        written = [body for path, body in standin.requests if path == "/v1/chat/completions" and body.get("stream")]
        assert written and QUESTION in written[0]["messages"][-1]["content"]  # the picked server wrote it
    finally:
        standin.shutdown()


def test_ask_streamed_in_a_stored_conversation(server, lights):
    conversation = server.http.post(f"/corpora/{lights}/conversations", json={"title": "Pharos"}).json()["id"]
    body = {"corpus": lights, "question": QUESTION, "conversation_id": conversation}
    with server.http.stream("POST", "/ask/stream", json=body) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response)

    names = [name for name, _ in events]
    assert names[0] == "status" and "token" in names and names[-1] == "answer"
    assert names.index("answer") > max(i for i, name in enumerate(names) if name == "token")
    answer = events[-1][1]
    assert answer["citations"] and answer["trace_id"] and answer["citations"][0]["evidence"] is not None
    messages = server.http.get(f"/corpora/{lights}/conversations/{conversation}/messages").json()
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert messages[1]["content"] == answer["answer"]


def test_chat_completions_with_the_openai_client(server, lights):
    client = OpenAI(base_url=server.url + "/v1", api_key="not-checked-yet", timeout=300)
    assert lights in [m.id for m in client.models.list()]

    first = client.chat.completions.create(model=lights, messages=[{"role": "user", "content": QUESTION}])
    reply = first.choices[0].message.content
    assert reply.strip() and first.choices[0].finish_reason == "stop"
    assert first.model_extra["citations"][0]["source"] == "history-of-lighthouses.md"

    history = [{"role": "user", "content": QUESTION}, {"role": "assistant", "content": reply}]
    stream = client.chat.completions.create(
        model=lights, stream=True, messages=[*history, {"role": "user", "content": "When was it built?"}]
    )
    chunks = list(stream)
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert streamed.strip() and chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[-1].model_extra["citations"]
    # The follow-up was read in the conversation: its trace's query names what "it" is.
    trace = server.http.get(f"/traces/{chunks[-1].model_extra['sift']['trace_id']}").json()
    assert "Pharos" in trace["query"]


def test_rerank_orders_documents_with_their_criteria(server):
    documents = [
        "Tide tables give the times of high and low water.",
        {"text": "The Pharos of Alexandria was designed by Sostratus of Cnidus."},
        "A Fresnel lens focuses the lamp of a lighthouse into a beam.",
    ]
    ranked = server.http.post("/v1/rerank", json={"query": QUESTION, "documents": documents, "top_n": 2}).json()
    results = ranked["results"]
    assert results[0]["index"] == 1 and len(results) == 2
    assert results[0]["relevance_score"] >= results[1]["relevance_score"]
    assert 0 < results[1]["relevance_score"] < 1
    assert results[0]["document"]["text"].startswith("The Pharos")
    assert {"relevance", "dense", "lexical"} <= set(results[0]["criteria"])


def test_malformed_requests_are_refused_and_change_nothing(server, lights):
    before = server.http.get(f"/corpora/{lights}/documents").json()
    http = server.http
    refused = {
        "/search without a query": http.post("/search", json={"corpus": lights}),
        "/search k=0": http.post("/search", json={"corpus": lights, "query": "x", "k": 0}),
        "unknown retrieval": http.post("/search", json={"corpus": lights, "query": "x", "retrieval": "magic"}),
        "not JSON": http.post("/ask", content=b"{", headers={"Content-Type": "application/json"}),
        "upload without files": http.post(f"/corpora/{lights}/uploads"),
        "rerank without documents": http.post("/v1/rerank", json={"query": "x", "documents": []}),
        "chat without messages": http.post("/v1/chat/completions", json={"model": lights, "messages": []}),
    }
    assert {what: r.status_code for what, r in refused.items()} == dict.fromkeys(refused, 422)

    long_question = http.post("/ask", json={"corpus": lights, "question": "why " * 1000})
    assert long_question.status_code == 400 and "characters long" in long_question.json()["detail"]
    assert http.post("/ask/stream", json={"corpus": lights, "question": "  "}).status_code == 400
    chat_ending_with_answer = http.post(
        "/v1/chat/completions", json={"model": lights, "messages": [{"role": "assistant", "content": "Hi"}]}
    )
    assert chat_ending_with_answer.status_code == 400
    assert http.post("/corpora", json={"name": "bell\arock"}).status_code == 400

    missing = {
        "corpus": http.get("/corpora/nowhere/documents"),
        "ask corpus": http.post("/ask", json={"corpus": "nowhere", "question": QUESTION}),
        "chat model": http.post(
            "/v1/chat/completions", json={"model": "nowhere", "messages": [{"role": "user", "content": QUESTION}]}
        ),
        "upload corpus": http.post("/corpora/nowhere/uploads", files=[("files", ("a.txt", b"a"))]),
        "document": http.delete(f"/corpora/{lights}/documents/999999"),
        "job": http.get("/jobs/0123456789abcdef"),
        "trace": http.get("/traces/999999"),
        "conversation": http.post("/ask", json={"corpus": lights, "question": QUESTION, "conversation_id": 999999}),
    }
    assert {what: r.status_code for what, r in missing.items()} == dict.fromkeys(missing, 404)
    assert all(r.json()["detail"] for r in missing.values())

    too_large = http.post(f"/corpora/{lights}/uploads", files=[("files", ("big.txt", b"a" * (2 * 2**20)))])
    assert too_large.status_code == 413 and "SIFT_MAX_UPLOAD_MB" in too_large.json()["detail"]
    assert http.get(f"/corpora/{lights}/documents").json() == before
    assert not any((server.data_dir / "uploads").iterdir())


def test_a_job_interrupted_by_kill_9_finishes_after_a_restart(tmp_path):
    server = Server(tmp_path / "data").start()
    try:
        server.http.post("/corpora", json={"name": "lights"})
        files = [("files", (p.name, p.read_bytes())) for p in sorted(SAMPLE_CORPUS.iterdir())]
        files += [
            ("files", (f"note-{i}.md", f"# Note {i}\n".encode() + b"The lamp was lit at dusk. " * 300))
            for i in range(6)
        ]
        job_id = server.http.post("/corpora/lights/uploads", files=files).json()["id"]
        assert len(list((server.data_dir / "uploads" / job_id).iterdir())) == len(files)  # saved before the 202

        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:  # kill once some files, not all, are stored
            job = server.http.get(f"/jobs/{job_id}").json()
            if any(f["status"] == "added" for f in job["files"]):
                break
            time.sleep(0.2)
        assert job["status"] == "running", job
        server.stop(signal.SIGKILL)
    finally:
        if server.process.poll() is None:
            server.stop(signal.SIGKILL)

    restarted = Server(server.data_dir, server.port).start()
    try:
        job = restarted.wait_for_job(job_id)
        assert job["status"] == "done" and job["attempts"] == 2
        # Results recorded before the kill are kept; a file stored in the instant between its commit and its
        # record would come back "unchanged" on the second run, which is true too.
        assert {f["status"] for f in job["files"]} <= {"added", "unchanged"}
        sources = [d["source"] for d in restarted.http.get("/corpora/lights/documents").json()]
        assert sorted(sources) == sorted(name for _, (name, _) in files)  # none lost, none twice
        assert not (restarted.data_dir / "uploads" / job_id).exists()
    finally:
        restarted.stop()


def test_a_job_whose_worker_is_killed_finishes_on_the_same_server(tmp_path):
    server = Server(tmp_path / "data").start()
    try:
        server.http.post("/corpora", json={"name": "lights"})
        files = [
            ("files", (f"note-{i}.md", f"# Note {i}\n".encode() + b"The lamp was lit at dusk. " * 300))
            for i in range(8)
        ]
        job_id = server.http.post("/corpora/lights/uploads", files=files).json()["id"]
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:  # kill the worker (not the server) once some files, not all, are stored
            job = server.http.get(f"/jobs/{job_id}").json()
            if any(f["status"] == "added" for f in job["files"]):
                break
            time.sleep(0.2)
        assert job["status"] == "running", job
        worker_pid = int((server.data_dir / "worker.lock").read_text())
        os.kill(worker_pid, signal.SIGKILL)

        job = server.wait_for_job(job_id)  # a new worker, started by the server, queues it again and finishes it
        assert job["status"] == "done" and job["attempts"] == 2
        assert {f["status"] for f in job["files"]} <= {"added", "unchanged"}
        sources = [d["source"] for d in server.http.get("/corpora/lights/documents").json()]
        assert sorted(sources) == sorted(name for _, (name, _) in files)  # none lost, none twice
        assert int((server.data_dir / "worker.lock").read_text()) != worker_pid
    finally:
        server.stop()


def test_refuses_to_listen_beyond_loopback(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "sift.app.cli", "serve", "--host", "0.0.0.0"],
        env={**os.environ, "SIFT_DATA_DIR": str(tmp_path / "data")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "Refusing to listen on 0.0.0.0 with auth off" in done.stderr
