"""Streamed answers whose reader goes away: a closed tab, a client timeout, a page change in the middle of an answer.

Seen by a user: a client that read two tokens of a streamed answer and left kept the model's lock until the garbage
collector found its generator, so every other question, chat completion and rerank waited for minutes; `sift serve`
then ignored SIGTERM, and a conversation kept the question with no mark that its answer was lost. Here, with the real
packaged model and a real `sift serve`: the model is free again as soon as a stream's reader is gone, a question
after twenty vanished readers is answered in its usual time, an interrupted answer is stored as one, a wait for the
model ends in a clear "busy" instead of a hang, and the server stops on SIGTERM.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import httpx
import pytest

from sift.app.config import Settings
from sift.app.models import language_model
from sift.rerank.llm import ModelBusy
from tests.conftest import SAMPLE_CORPUS
from tests.serving import Server

pytestmark = pytest.mark.slow

QUESTION = "Who designed the Pharos of Alexandria?"
MESSAGES = [{"role": "user", "content": "Write a long story about a lighthouse keeper and the sea."}]


# ---------------------------------------------------------------------------------------------- the model itself


@pytest.fixture(scope="module")
def llm():
    return language_model(Settings())


def test_a_stream_left_unread_does_not_keep_the_model(llm):
    stream = llm.stream(MESSAGES, max_new_tokens=64)
    assert next(stream) is not None and next(stream) is not None
    # The reader neither finishes nor closes it, and still holds it: the model comes free when generation ends.
    assert llm.lock.acquire(timeout=120), "the model stayed locked by a stream nobody reads"
    llm.lock.release()
    assert stream is not None


def test_a_closed_stream_stops_writing_at_once(llm):
    stream = llm.stream(MESSAGES, max_new_tokens=2000)
    next(stream)
    stream.close()
    started = time.monotonic()
    assert llm.lock.acquire(timeout=120)
    llm.lock.release()
    # 2,000 tokens take minutes on 2 cores; a stopped generation frees the model within a few tokens' time.
    assert time.monotonic() - started < 30


def test_a_wait_for_a_busy_model_ends_in_model_busy(llm):
    impatient = replace(llm, wait_s=0.5)  # as language_model(Settings(llm_wait_s=0.5)) builds it: the same lock
    assert impatient.lock is llm.lock
    held = threading.Event()
    done = threading.Event()

    def hold():
        with llm.lock:
            held.set()
            done.wait(30)

    threading.Thread(target=hold, daemon=True).start()
    held.wait(10)
    try:
        with pytest.raises(ModelBusy, match="busy"):
            impatient.chat(MESSAGES, max_new_tokens=4)
        with pytest.raises(ModelBusy):
            next(impatient.stream(MESSAGES, max_new_tokens=4))
    finally:
        done.set()


# ---------------------------------------------------------------------------------------------- sift serve


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # Written answers, token by token: a quote comes whole, with nothing to leave mid-way.
    env = {"SIFT_LLM_WAIT_S": "600", "SIFT_ANSWER_STYLE": "generative"}
    server = Server(tmp_path_factory.mktemp("streams") / "data", env=env).start()
    assert server.http.post("/corpora", json={"name": "lights"}).status_code == 201
    files = [("files", (p.name, p.read_bytes())) for p in sorted(SAMPLE_CORPUS.glob("*.md"))]
    job = server.wait_for_job(server.http.post("/corpora/lights/uploads", files=files).json()["id"])
    assert job["status"] == "done"
    yield server
    if server.process.poll() is None:
        server.stop(signal.SIGKILL)


def read_two_tokens_and_vanish(server: Server, body: dict) -> int:
    """Open a streamed answer, read until its second token, and drop the connection; the tokens read."""
    tokens = 0
    with httpx.Client(base_url=server.url, timeout=600) as client, client.stream("POST", "/ask/stream", json=body) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line == "event: token":
                tokens += 1
                if tokens == 2:
                    break
    return tokens


def timed_question(server: Server, timeout: float) -> float:
    started = time.monotonic()
    response = httpx.post(server.url + "/ask", json={"corpus": "lights", "question": QUESTION}, timeout=timeout)
    assert response.status_code == 200, response.text
    assert response.json()["citations"], response.json()
    return time.monotonic() - started


def test_twenty_readers_that_vanish_leave_the_next_question_its_usual_time(server):
    quiet = min(timed_question(server, 600) for _ in range(2))
    body = {"corpus": "lights", "question": QUESTION}
    with ThreadPoolExecutor(4) as pool:  # four at a time: they contend for the model as a busy server's clients do
        assert list(pool.map(lambda _: read_two_tokens_and_vanish(server, body), range(20))) == [2] * 20
    after = timed_question(server, max(120, 5 * quiet))
    assert after < 3 * quiet + 30, f"question alone {quiet:.1f} s; after 20 vanished readers {after:.1f} s"


def test_an_answer_whose_reader_vanished_is_stored_as_interrupted(server):
    conversation = server.http.post("/corpora/lights/conversations", json={"title": "left"}).json()["id"]
    read_two_tokens_and_vanish(server, {"corpus": "lights", "question": QUESTION, "conversation_id": conversation})
    deadline, messages = time.monotonic() + 120, []
    while time.monotonic() < deadline and len(messages) < 2:
        messages = server.http.get(f"/corpora/lights/conversations/{conversation}/messages").json()
        time.sleep(0.5)
    assert [m["role"] for m in messages] == ["user", "assistant"], messages
    assert messages[1]["details"]["interrupted"] is True and messages[1]["details"]["answered"] is False
    assert messages[1]["content"].startswith("Not answered")
    # The conversation goes on: the next question is answered, and reads no "not answered" as an earlier answer.
    answer = server.http.post(
        "/ask", json={"corpus": "lights", "question": QUESTION, "conversation_id": conversation}
    ).json()
    assert answer["citations"] and answer["standalone_question"] is None


def test_sigterm_stops_the_server_with_a_question_in_flight(server):
    for _ in range(3):
        read_two_tokens_and_vanish(server, {"corpus": "lights", "question": QUESTION})
    body = {"corpus": "lights", "question": QUESTION}
    threading.Thread(target=lambda: httpx.post(server.url + "/ask", json=body, timeout=600), daemon=True).start()
    time.sleep(1)
    server.process.send_signal(signal.SIGTERM)
    try:
        server.process.wait(timeout=90)
    except subprocess.TimeoutExpired:
        pytest.fail("sift serve did not stop on SIGTERM within 90 s")
