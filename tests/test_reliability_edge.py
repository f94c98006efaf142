"""The HTTP edge of ``sift serve`` under hostile callers: what a request must pass before its body is read.

What users saw: an unauthenticated 500 MB JSON body took the server from 1.3 to 2.8 GB before its 401; a 600 MB
multipart body was spooled to disk before its 401; an editor's 120 MB upload (over the 50 MB limit) was refused only
after all of it had arrived. With auth off (the loopback default) any web page could reach the server: a foreign Host
header (DNS rebinding) got the corpus list, and a cross-origin form post queued an upload job.

Checked here, against real ``sift serve`` processes (auth on over PostgreSQL, with users and keys; auth off over
SQLite): the 401 and the 413 arrive while the client has sent only headers and a small part of the body (it then
sends nothing more and waits), and the server's peak memory stays where it was; a foreign Host answers 421 and a
state-changing request from a foreign Origin 403, changing nothing; the Streamlit app states its own XSRF and CORS
protections.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import tomllib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from sift.app.config import Settings
from sift.app.pipeline import Sift
from tests.conftest import POSTGRES_ADMIN_URL, REPO, _postgres_admin
from tests.serving import Server, free_port

pytestmark = pytest.mark.slow

MiB = 2**20
SEND_AT_MOST = 32 * MiB  # the body a test sends before it stops and waits for the answer: more than TCP buffers hold
ANSWER_WAIT_S = 60  # after that, how long it waits: an answer that needs the rest of the body never comes
PEAK_GROWTH_LIMIT = 100 * MiB  # generous: the bodies sent are 32 MiB at most, declared in hundreds of MiB


@dataclass
class Answer:
    status: int
    body: dict
    sent: int  # body bytes the client had sent when the answer came

    @property
    def detail(self) -> str:
        return self.body["detail"]


def answer_to_a_part(port: int, head: bytes, body: Iterator[bytes]) -> Answer:
    """Send ``head`` and then ``body``'s chunks, up to SEND_AT_MOST bytes, and return the server's answer, read by a
    thread as soon as it comes (while the client still sends). Fails when none comes within ANSWER_WAIT_S of the
    client's last byte: the server is waiting for the rest of a body it should have refused."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=ANSWER_WAIT_S)
    answered, response = threading.Event(), bytearray()

    def read() -> None:
        try:
            while chunk := sock.recv(65536):
                response.extend(chunk)
        except OSError:  # the server reset the connection after its answer, or the wait ran out
            pass
        answered.set()

    reader = threading.Thread(target=read, daemon=True)
    sent = 0
    try:
        sock.sendall(head)
        reader.start()
        for chunk in body:
            if answered.is_set() or response or sent >= SEND_AT_MOST:
                break
            sock.sendall(chunk)
            sent += len(chunk)
    except OSError:  # refused mid-body: the server answered and closed while the client was still sending
        pass
    reader.join(ANSWER_WAIT_S + 5)
    sock.close()
    head_part, _, content = bytes(response).partition(b"\r\n\r\n")
    assert head_part, f"no answer after {sent / MiB:.1f} MiB of the body: the server waits for the rest of it"
    status = int(head_part.split(b" ", 2)[1])
    return Answer(status, json.loads(content), sent)


def zeros(chunk: int = MiB) -> Iterator[bytes]:
    while True:
        yield b"0" * chunk


def chunked(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Transfer-Encoding: chunked framing, with no last chunk: the body never ends by itself."""
    for chunk in chunks:
        yield b"%x\r\n%s\r\n" % (len(chunk), chunk)


def request_head(
    method: str, path: str, port: int, headers: dict[str, str], length: int | None = None, host: str | None = None
) -> bytes:
    framing = {"Content-Length": str(length)} if length is not None else {"Transfer-Encoding": "chunked"}
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host or f'127.0.0.1:{port}'}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in {**headers, **framing}.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


BOUNDARY = "sift-edge-boundary"
MULTIPART = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
JSON = {"Content-Type": "application/json"}


def one_file_upload(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """A multipart body of one file whose bytes are ``chunks`` (and never end)."""
    yield (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="big.txt"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    ).encode()
    yield from chunks


def json_body(chunks: Iterator[bytes]) -> Iterator[bytes]:
    yield b'{"corpus": "lights", "query": "'
    yield from chunks


class PeakMemory:
    """The server process's peak resident memory (VmHWM) over a block, the peak reset at its start."""

    def __init__(self, pid: int):
        self.pid = pid

    def _status(self, field: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise AssertionError(f"no {field} in /proc/{self.pid}/status")

    def __enter__(self) -> PeakMemory:
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")  # resets VmHWM to the present VmRSS
        self.before = self._status("VmRSS")
        return self

    def __exit__(self, *exc) -> None:
        self.peak, self.after = self._status("VmHWM"), self._status("VmRSS")

    def __str__(self) -> str:
        return f"RSS {self.before / MiB:.0f} MiB before, peak {self.peak / MiB:.0f} MiB, {self.after / MiB:.0f} after"


# --- auth on, over PostgreSQL, with an allowed host name --------------------------------------------------------


@pytest.fixture(scope="module")
def postgres_database():
    admin = _postgres_admin()
    name = f"sift_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="module")
def guarded(tmp_path_factory, postgres_database):
    """``sift serve`` with auth on over PostgreSQL, answering the name sift.example too: alice (editor) owns
    "lights", bob has no role beyond reader; files up to 1 MiB (tests/serving.py's FAST_ANSWERS)."""
    data_dir = tmp_path_factory.mktemp("edge-auth") / "data"
    accounts = Sift(Settings(data_dir=data_dir, database_url=postgres_database)).accounts
    accounts.add_user("alice", "alice's password", "editor")
    accounts.add_user("bob", "bob's password", "reader")
    keys = {name: accounts.create_key(name).secret for name in ("alice", "bob")}
    env = {"SIFT_AUTH": "true", "SIFT_DATABASE_URL": postgres_database, "SIFT_ALLOWED_HOSTS": '["sift.example"]'}
    server = Server(data_dir, host="0.0.0.0", env=env).start()
    assert server.http.post("/corpora", json={"name": "lights"}, headers=bearer(keys["alice"])).status_code == 201
    yield server, keys
    server.stop()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_an_unauthenticated_json_body_is_refused_before_it_is_read(guarded):
    server, _ = guarded
    for headers in ({}, bearer("sift_not-a-key")):
        with PeakMemory(server.process.pid) as memory:
            answer = answer_to_a_part(
                server.port, request_head("POST", "/search", server.port, {**JSON, **headers}, 500 * MiB), zeros()
            )
        assert answer.status == 401, answer
        assert answer.sent < SEND_AT_MOST, answer  # answered before the client had to stop sending
        assert memory.peak - memory.before < PEAK_GROWTH_LIMIT, str(memory)


def test_an_unauthenticated_upload_is_refused_before_it_is_spooled(guarded):
    server, _ = guarded
    declared = request_head("POST", "/corpora/lights/uploads", server.port, MULTIPART, 600 * MiB)
    streamed = request_head("POST", "/corpora/lights/uploads", server.port, MULTIPART)  # chunked: no length told
    for head, body in ((declared, one_file_upload(zeros())), (streamed, chunked(one_file_upload(zeros())))):
        with PeakMemory(server.process.pid) as memory:
            answer = answer_to_a_part(server.port, head, body)
        assert answer.status == 401 and answer.detail == "No API key was sent.", answer
        assert answer.sent < SEND_AT_MOST, answer
        assert memory.peak - memory.before < PEAK_GROWTH_LIMIT, str(memory)


def test_an_editors_upload_over_the_limits_is_refused_as_soon_as_it_is_known(guarded):
    server, keys = guarded
    alice = {**MULTIPART, **bearer(keys["alice"])}
    # One file of 120 MiB, under the request's limit (1 MiB x 1000 files) but over the file limit (1 MiB): refused
    # once its first MiB or so has arrived, not after all of it.
    head = request_head("POST", "/corpora/lights/uploads", server.port, alice, 120 * MiB)
    answer = answer_to_a_part(server.port, head, one_file_upload(zeros()))
    assert answer.status == 413 and "over the upload limit of 1.0 MiB" in answer.detail, answer
    assert answer.sent < SEND_AT_MOST, answer
    # A declared length over the whole request's limit: refused on the headers.
    head = request_head("POST", "/corpora/lights/uploads", server.port, alice, 2000 * MiB)
    answer = answer_to_a_part(server.port, head, one_file_upload(zeros()))
    assert answer.status == 413 and "SIFT_MAX_REQUEST_MB" in answer.detail, answer
    assert answer.sent < SEND_AT_MOST, answer
    assert server.http.get("/corpora/lights/jobs", headers=bearer(keys["alice"])).json() == []  # nothing queued

    # Within the limits, files together over the file limit still make one upload (each file is counted alone);
    # .bin files, which ingestion refuses at once, keep the worker's part short.
    files = [("files", (f"part{i}.bin", bytes([i]) * (9 * MiB // 10))) for i in range(3)]
    accepted = server.http.post("/corpora/lights/uploads", files=files, headers=bearer(keys["alice"]))
    assert accepted.status_code == 202, accepted.text
    # And a chunked upload becomes a job too.
    tides = [*one_file_upload(iter([b"# Tides\n\nThe moon pulls the sea.\n"])), f"\r\n--{BOUNDARY}--\r\n".encode()]
    head = request_head("POST", "/corpora/lights/uploads", server.port, alice)
    answer = answer_to_a_part(server.port, head, iter([*chunked(iter(tides)), b"0\r\n\r\n"]))
    assert answer.status == 202 and [f["name"] for f in answer.body["files"]] == ["big.txt"], answer


def test_a_json_body_over_its_limit_is_refused_declared_or_streamed(guarded):
    server, keys = guarded
    bob = {**JSON, **bearer(keys["bob"])}
    for head, body in (
        (request_head("POST", "/search", server.port, bob, 64 * MiB), json_body(zeros())),
        (request_head("POST", "/search", server.port, bob), chunked(json_body(zeros()))),
    ):
        answer = answer_to_a_part(server.port, head, body)
        assert answer.status == 413 and "SIFT_MAX_JSON_KB" in answer.detail, answer
        assert answer.sent < SEND_AT_MOST, answer
    within = server.http.post("/search", json={"corpus": "lights", "query": "moon"}, headers=bearer(keys["alice"]))
    assert within.status_code == 200, within.text


def test_with_auth_on_the_configured_host_names_are_enforced(guarded):
    server, keys = guarded
    alice = bearer(keys["alice"])
    assert server.http.get("/corpora", headers={**alice, "Host": "sift.example"}).status_code == 200
    assert server.http.get("/corpora", headers={**alice, "Host": "localhost"}).status_code == 200
    foreign = server.http.get("/corpora", headers={**alice, "Host": "rebound.example"})
    assert foreign.status_code == 421 and "rebound.example" in foreign.json()["detail"]

    posted = server.http.post("/corpora", json={"name": "forged"}, headers={**alice, "Origin": "http://evil.example"})
    assert posted.status_code == 403 and "http://evil.example" in posted.json()["detail"]
    own = server.http.post("/corpora", json={"name": "own"}, headers={**alice, "Origin": "https://sift.example"})
    assert own.status_code == 201
    assert {c["name"] for c in server.http.get("/corpora", headers=alice).json()} == {"lights", "own"}


# --- auth off, on loopback, over SQLite -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    """``sift serve`` as most run it: auth off, on 127.0.0.1, over SQLite, with the corpus "notes"."""
    server = Server(tmp_path_factory.mktemp("edge-local") / "data").start()
    assert server.http.post("/corpora", json={"name": "notes"}).status_code == 201
    yield server
    server.stop()


def test_with_auth_off_only_loopback_host_names_are_answered(local):
    for host in (f"127.0.0.1:{local.port}", f"localhost:{local.port}", f"[::1]:{local.port}", "LOCALHOST"):
        assert local.http.get("/corpora", headers={"Host": host}).json() == [{"name": "notes"}], host
    for host in (f"rebound.example:{local.port}", "127.0.0.1.nip.io", f"sift.example:{local.port}"):
        for path in ("/corpora", "/openapi.json"):
            refused = local.http.get(path, headers={"Host": host})
            assert refused.status_code == 421, (host, path, refused.text)
            assert "loopback" in refused.json()["detail"]


def test_with_auth_off_a_foreign_page_cannot_change_anything(local):
    http = local.http
    form_post = [("files", ("planted.md", b"# Planted\n\nBy a web page.\n"))]
    for origin in ("http://evil.example", "null", f"http://rebound.example:{local.port}"):
        uploaded = http.post("/corpora/notes/uploads", files=form_post, headers={"Origin": origin})
        assert uploaded.status_code == 403 and "cross-origin" in uploaded.json()["detail"], (origin, uploaded.text)
        created = http.post("/corpora", json={"name": "planted"}, headers={"Origin": origin})
        assert created.status_code == 403, origin
        assert http.delete("/corpora/notes", headers={"Origin": origin}).status_code == 403, origin
    assert http.get("/corpora/notes/jobs").json() == []  # no job queued
    assert http.get("/corpora").json() == [{"name": "notes"}]
    # Reading from anywhere is left to the browser's same-origin policy (no CORS headers are sent).
    assert http.get("/corpora", headers={"Origin": "http://evil.example"}).status_code == 200

    # This machine's own pages (another port of loopback, e.g. a local tool) and clients that send no Origin (curl,
    # the openai client) still change things.
    mine = http.post("/corpora/notes/uploads", files=form_post, headers={"Origin": "http://localhost:8501"})
    assert mine.status_code == 202, mine.text
    assert http.post("/corpora", json={"name": "second"}).status_code == 201


def websocket_handshake(port: int, host: str, origin: str) -> bytes:
    """The status line Streamlit's WebSocket (what a page's every widget and text travel through) answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            f"GET /_stcore/stream HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Protocol: streamlit\r\n\r\n".encode()
        )
        return sock.recv(4096).split(b"\r\n", 1)[0]


def test_with_auth_off_the_streamlit_app_answers_only_loopback_host_names(tmp_path):
    """``make run``'s Streamlit, given the host names by ``sift streamlit-hosts``: a page on a name rebound to
    127.0.0.1 gets no WebSocket, so none of the app."""
    env = {**os.environ, "SIFT_DATA_DIR": str(tmp_path / "data"), "SIFT_APP_PRELOAD_MODELS": "false"}
    hosts = subprocess.run(
        [sys.executable, "-m", "sift.app.cli", "streamlit-hosts"], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert "$(VENV)/bin/sift streamlit-hosts" in (REPO / "Makefile").read_text()  # what make run passes
    port = free_port()
    flags = ["--server.address", "127.0.0.1", "--server.port", str(port), "--server.headless", "true", *hosts]
    with (tmp_path / "streamlit.log").open("w") as log:
        app = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "ui/Home.py", *flags],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while httpx_health(port) != b"ok":
            assert app.poll() is None and time.monotonic() < deadline, (tmp_path / "streamlit.log").read_text()
            time.sleep(0.5)
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"):
            assert websocket_handshake(port, host, f"http://{host}") == b"HTTP/1.1 101 Switching Protocols", host
        rebound = f"rebound.example:{port}"
        assert websocket_handshake(port, rebound, f"http://{rebound}") == b"HTTP/1.1 403 Forbidden"
        # and, Streamlit's CORS: a foreign page's WebSocket to the loopback name
        assert websocket_handshake(port, f"127.0.0.1:{port}", "http://evil.example") == b"HTTP/1.1 403 Forbidden"
    finally:
        app.terminate()
        app.wait(timeout=30)


def httpx_health(port: int) -> bytes:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).content
    except httpx.TransportError:
        return b""


def test_the_streamlit_app_keeps_its_xsrf_and_cors_protections():
    """Streamlit's own defaults are on; the app's config states them, so that nobody turns them off unknowingly, and
    ``make run`` does not override them."""
    server = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())["server"]
    assert server["enableXsrfProtection"] is True
    assert server["enableCORS"] is True
    makefile = (REPO / "Makefile").read_text()
    assert "enableXsrfProtection" not in makefile and "enableCORS" not in makefile
