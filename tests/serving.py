"""Real servers in subprocesses on free ports: ``sift serve`` for the API tests (tests/test_api.py,
tests/test_accounts_api.py), over a temporary data directory, with answers kept short (the packaged models are slow
on 2 cores); and llama-cpp-python's OpenAI-compatible server over the packaged SmolLM2 GGUF
(tests/test_llama_server.py), a server nobody here wrote."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

FAST_ANSWERS = {
    "SIFT_CANDIDATES_K": "8",
    "SIFT_RERANK_LLM_K": "4",
    "SIFT_ANSWER_TOP_N": "2",
    "SIFT_ANSWER_MAX_TOKENS": "48",
    "SIFT_MAX_UPLOAD_MB": "1",
}


class Server:
    """``sift serve`` in a subprocess, and an httpx client for it (on 127.0.0.1, whatever ``host`` it binds)."""

    def __init__(
        self, data_dir: Path, port: int | None = None, host: str = "127.0.0.1", env: dict[str, str] | None = None
    ):
        self.data_dir = data_dir
        self.port = port or free_port()
        self.host = host
        self.env = env or {}
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir.parent / f"serve-{self.port}.log"
        self.process: subprocess.Popen | None = None
        self.http = httpx.Client(base_url=self.url, timeout=300)

    def start(self) -> Server:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "SIFT_DATA_DIR": str(self.data_dir), **FAST_ANSWERS, **self.env}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "sift.app.cli", "serve", "--host", self.host, "--port", str(self.port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 300  # each worker loads its models before it serves (82 s on a busy machine)
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"sift serve exited:\n{self.log.read_text()[-3000:]}"
            try:  # the schema needs no key, so this answers whether auth is on or off
                if httpx.get(self.url + "/openapi.json", timeout=5).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.5)
        raise AssertionError(f"sift serve did not start:\n{self.log.read_text()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        self.process.send_signal(sig)
        self.process.wait(timeout=60)

    def wait_for_job(self, job_id: str, timeout: float = 240, headers: dict[str, str] | None = None) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.http.get(f"/jobs/{job_id}", headers=headers).json()
            if job["status"] in ("done", "failed"):
                return job
            time.sleep(0.5)
        raise AssertionError(f"job {job_id} still {job['status']} after {timeout} s: {job}")


class LlamaServer:
    """``python -m llama_cpp.server`` serving the packaged SmolLM2 GGUF as ``model`` on 127.0.0.1; ``url`` ends in /v1.

    Its chat template comes from the GGUF. ``--logits_all`` keeps every position's logits, which log-probabilities
    and echo need (its default in 0.3, not in older releases); one thread, as the machine is shared."""

    def __init__(self, log: Path, model: str = "smollm2", api_key: str | None = None):
        self.port = free_port()
        self.model = model
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.log = log
        self.api_key = api_key
        self.process: subprocess.Popen | None = None

    def start(self) -> LlamaServer:
        from sift.app.models import packaged_llm

        folder, gguf = packaged_llm()
        command = [sys.executable, "-m", "llama_cpp.server", "--model", str(folder / gguf), "--model_alias", self.model]
        command += ["--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", "2048", "--logits_all", "True"]
        command += ["--n_threads", "1", "--n_threads_batch", "1"] + (
            ["--api_key", self.api_key] if self.api_key else []
        )
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        deadline = time.monotonic() + 120  # it loads a 135M-parameter GGUF: seconds
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"llama_cpp.server exited:\n{self.log.read_text()[-3000:]}"
            try:
                if httpx.get(self.url + "/models", headers=headers, timeout=5).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.5)
        self.stop()
        raise AssertionError(f"llama_cpp.server did not start:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sse_events(response: httpx.Response) -> list[tuple[str, dict]]:
    events, name = [], None
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            events.append((name, json.loads(line.removeprefix("data: "))))
    return events
