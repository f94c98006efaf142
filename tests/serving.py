"""``sift serve`` in a subprocess for the API tests (tests/test_api.py, tests/test_accounts_api.py): a real server on
a free port over a temporary data directory, with answers kept short (the packaged models are slow on 2 cores)."""

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
