"""Logins, corpus names and text the service cannot take, probed as a hostile user would (issue 25, item 7).

What a user saw: an unknown user name was refused in ~1 ms and a real one in 290-670 ms, so the login form told which
names exist; failed logins were counted in one process's memory (another app process, or a restart, forgot them) and
per name or per address, so behind a proxy one person's typos locked out everyone and anyone could lock the admin
out; a client's X-Forwarded-For was believed from any loopback peer without being configured; `POST /corpora` with
another user's private corpus name answered 403 "taken by a corpus you cannot edit", which README said no answer
gives away; a lone surrogate ("\\ud800") in a question gave a 500 on /ask and chat completions and a silently dropped
stream, and a NUL in a question, a conversation title or a corpus name a 500 on PostgreSQL.

What is checked, with real `sift serve` processes (auth on), real app processes (the Streamlit login form, in a
subprocess and in Chromium) and real Accounts, on SQLite and PostgreSQL: the time to refuse an unknown name against a
known one; failures counted in the database across processes, per name and address and per address; the forwarded
address believed only from `trusted_proxies`; a taken name answered the same whether or not the user can see its
corpus; and 400s that say what is wrong for every text field, before a stream starts.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import uuid

import httpx
import pytest
from sqlalchemy import text

from sift.app.config import Settings
from sift.app.login_limits import TooManyAttempts
from sift.app.pipeline import Sift
from tests.conftest import POSTGRES_ADMIN_URL, REPO, _postgres_admin
from tests.serving import Server, free_port

HOME = str(REPO / "ui" / "Home.py")
PASSWORDS = {"root": "root's password", "alice": "alice's password", "bob": "bob's password", "carol": "carol's pw"}
ROLES = {"root": "admin", "alice": "editor", "bob": "reader", "carol": "editor"}


def with_users(settings: Settings) -> Sift:
    sift = Sift(settings)
    for name, role in ROLES.items():
        sift.accounts.add_user(name, PASSWORDS[name], role)
    return sift


# ------------------------------------------------------------------------------------------ login timing


def test_an_unknown_name_takes_as_long_to_refuse_as_a_wrong_password(any_db_settings, record_property):
    roomy = {"login_max_failures": 1000, "login_max_failures_per_address": 1000}  # timing, not limits, here
    accounts = with_users(Settings(**{**any_db_settings.model_dump(), **roomy})).accounts

    def refused_in(name: str) -> float:
        started = time.perf_counter()
        assert accounts.authenticate(name, "a guess", "198.51.100.7") is None
        return time.perf_counter() - started

    refused_in("alice"), refused_in("nobody")  # first calls pay for imports and connections
    known = statistics.median(refused_in("alice") for _ in range(7))
    unknown = statistics.median(refused_in(f"nobody-{i}") for i in range(7))
    record_property("refused_ms", {"known name": round(known * 1000, 1), "unknown name": round(unknown * 1000, 1)})
    assert unknown >= 0.5 * known, f"unknown {unknown * 1000:.1f} ms, known {known * 1000:.1f} ms"


# ------------------------------------------------------------------------------------------ login limits

# One login-form session of the real app (ui/Home.py under Streamlit's AppTest), in its own process: logs in as
# argv[1] with each password in argv[2:], and prints what the form answered each time.
LOGIN_PROCESS = (
    f"HOME = {HOME!r}\n"
    """
import json, sys
from streamlit.testing.v1 import AppTest
answers = []
for password in sys.argv[2:]:
    at = AppTest.from_file(HOME, default_timeout=120).run()
    at.text_input[0].input(sys.argv[1])
    at.text_input[1].input(password)
    at.button[0].click().run()
    assert not at.exception, at.exception
    answers.append([e.value for e in at.error] or [t.value for t in at.title])
print(json.dumps(answers))
"""
)


def log_in_from_another_process(settings: Settings, name: str, *passwords: str) -> list[list[str]]:
    env = {
        **os.environ,
        "SIFT_DATA_DIR": str(settings.data_dir),
        "SIFT_AUTH": "true",
        "SIFT_APP_PRELOAD_MODELS": "false",
        "SIFT_LOGIN_MAX_FAILURES": "3",
        **({"SIFT_DATABASE_URL": settings.database_url} if settings.database_url else {}),
    }
    done = subprocess.run(
        [sys.executable, "-c", LOGIN_PROCESS, name, *passwords],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_failed_logins_are_counted_in_the_database_so_another_app_process_refuses_too(any_db_settings):
    with_users(any_db_settings)
    wrong = ["Wrong user name or password."]
    assert log_in_from_another_process(any_db_settings, "alice", "guess 1", "guess 2", "guess 3") == [wrong] * 3

    # A second app process (or the first one restarted) refuses alice, her right password too, and says how long
    # to wait; bob, logging in from the same (local) address, is not locked out by her failures.
    [refused] = log_in_from_another_process(any_db_settings, "alice", PASSWORDS["alice"])
    assert len(refused) == 1 and refused[0].startswith("Too many failed logins") and "wait" in refused[0]
    assert log_in_from_another_process(any_db_settings, "bob", PASSWORDS["bob"]) == [["Chat"]]
    with Sift(any_db_settings).store.engine.connect() as connection:
        stored = connection.execute(text("SELECT * FROM login_failures")).mappings().all()
    assert len(stored) == 3 and "alice" not in json.dumps([dict(r) for r in stored])  # names kept hashed


def test_failures_count_per_name_and_address_so_nobody_locks_out_others(any_db_settings):
    limits = {"login_max_failures": 3, "login_max_failures_per_address": 6}
    accounts = with_users(Settings(**{**any_db_settings.model_dump(), **limits})).accounts
    proxy = "192.0.2.1"  # an untrusted proxy: every user behind it has its address
    for _ in range(3):
        assert accounts.authenticate("alice", "a guess", proxy) is None

    with pytest.raises(TooManyAttempts, match=r"Too many failed logins .*wait \d+ s"):
        accounts.authenticate("alice", PASSWORDS["alice"], proxy)  # the right password too, from there
    assert accounts.authenticate("bob", PASSWORDS["bob"], proxy).name == "bob"  # behind the same proxy
    assert accounts.authenticate("alice", PASSWORDS["alice"], "203.0.113.20").name == "alice"  # from elsewhere

    # Guessing the admin's password from one address does not lock the admin out of their own.
    for _ in range(3):
        assert accounts.authenticate("root", "a guess", "198.51.100.66") is None
    assert accounts.authenticate("root", PASSWORDS["root"], "203.0.113.30").name == "root"

    # One address trying many names is refused for every name once it has failed 6 times.
    for i in range(6):
        assert accounts.authenticate(f"name-{i}", "a guess", "198.51.100.99") is None
    with pytest.raises(TooManyAttempts):
        accounts.authenticate("bob", PASSWORDS["bob"], "198.51.100.99")
    assert accounts.authenticate("bob", PASSWORDS["bob"], "198.51.100.100").name == "bob"


# ------------------------------------------------------------------------------------------ the API


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(request, tmp_path_factory):
    """`sift serve` with auth on over each database, with the four users' keys; alice owns "lights" (shared with
    carol to read), carol owns the private "vault". The PostgreSQL server trusts proxies in 127.0.0.0/8."""
    data_dir = tmp_path_factory.mktemp(f"login-{request.param}") / "data"
    database, env = None, {"SIFT_AUTH": "true"}
    if request.param == "postgresql":
        admin = _postgres_admin()
        database = f"sift_test_{uuid.uuid4().hex[:12]}"
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{database}"'))
        env["SIFT_DATABASE_URL"] = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{database}"
        env["SIFT_TRUSTED_PROXIES"] = '["127.0.0.0/8"]'
    sift = with_users(Settings(data_dir=data_dir, database_url=env.get("SIFT_DATABASE_URL")))
    keys = {name: {"Authorization": f"Bearer {sift.accounts.create_key(name).secret}"} for name in ROLES}
    sift.accounts.create_corpus(sift.accounts.user("alice"), "lights")
    sift.accounts.create_corpus(sift.accounts.user("carol"), "vault")
    sift.accounts.share("lights", "carol", "read")
    sift.store.engine.dispose()
    server = Server(data_dir, env=env).start()
    yield request.param, server, keys
    server.stop()
    if database:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()


def test_a_taken_name_is_answered_the_same_whether_or_not_its_corpus_can_be_seen(served):
    _, server, keys = served
    http = server.http
    hidden = http.post("/corpora", json={"name": "vault"}, headers=keys["alice"])  # carol's, private
    visible = http.post("/corpora", json={"name": "lights"}, headers=keys["carol"])  # alice's, shared to read
    assert (hidden.status_code, visible.status_code) == (409, 409)
    assert hidden.json()["detail"] == visible.json()["detail"].replace("'lights'", "'vault'")
    assert "cannot edit" not in hidden.json()["detail"] and "carol" not in hidden.json()["detail"]
    assert http.post("/corpora", json={"name": "lights"}, headers=keys["alice"]).status_code == 201  # her own
    assert (
        http.post("/corpora", json={"name": f"free-{uuid.uuid4().hex[:6]}"}, headers=keys["alice"]).status_code == 201
    )
    readme = " ".join((REPO / "README.md").read_text().split())  # as it reads, whatever the line breaks
    assert "creating a name already in use answers 409" in readme and "not given away" in readme


def post_raw(server: Server, path: str, body: dict, headers: dict, **extra):
    """The body as a client's JSON encoder writes it: a lone surrogate as the escape \\ud800, a NUL as \\u0000."""
    content = json.dumps(body).encode()
    return server.http.post(path, content=content, headers={**headers, "Content-Type": "application/json", **extra})


@pytest.mark.parametrize(
    ("bad", "named"),
    [("\ud800", "a lone surrogate (U+D800)"), ("\x00", "a NUL character (U+0000)")],
    ids=["surrogate", "nul"],
)
def test_invalid_unicode_and_nul_are_refused_with_a_400_everywhere(served, bad, named):
    _, server, keys = served
    alice = keys["alice"]
    question = f"Who designed the Pharos{bad}?"
    chat = {"model": "lights", "messages": [{"role": "user", "content": question}]}
    answers = {
        "ask": post_raw(server, "/ask", {"corpus": "lights", "question": question}, alice),
        "ask stream": post_raw(server, "/ask/stream", {"corpus": "lights", "question": question}, alice),
        "ask, accept stream": post_raw(
            server, "/ask", {"corpus": "lights", "question": question}, alice, Accept="text/event-stream"
        ),
        "history": post_raw(
            server,
            "/ask",
            {"corpus": "lights", "question": "When?", "history": [{"role": "user", "content": question}]},
            alice,
        ),
        "chat": post_raw(server, "/v1/chat/completions", chat, alice),
        "chat stream": post_raw(server, "/v1/chat/completions", {**chat, "stream": True}, alice),
        "chat parts": post_raw(
            server,
            "/v1/chat/completions",
            {"model": "lights", "messages": [{"role": "user", "content": [{"type": "text", "text": question}]}]},
            alice,
        ),
        "search": post_raw(server, "/search", {"corpus": "lights", "query": question}, alice),
        "retrieval mode": post_raw(
            server, "/search", {"corpus": "lights", "query": "x", "retrieval": f"dense{bad}"}, alice
        ),
        "rerank": post_raw(server, "/v1/rerank", {"query": question, "documents": ["a", "b"]}, alice),
        "rerank document": post_raw(server, "/v1/rerank", {"query": "lamp", "documents": [question]}, alice),
        "title": post_raw(server, "/corpora/lights/conversations", {"title": f"Pharos{bad}"}, alice),
        "corpus name": post_raw(server, "/corpora", {"name": f"notes{bad}"}, alice),
        "corpus to ask": post_raw(server, "/ask", {"corpus": f"lights{bad}", "question": "Who?"}, alice),
        "chat model": post_raw(
            server,
            "/v1/chat/completions",
            {**chat, "model": f"lights{bad}", "messages": [{"role": "user", "content": "Who?"}]},
            alice,
        ),
    }
    codes = {what: r.status_code for what, r in answers.items()}
    assert codes == dict.fromkeys(answers, 400)
    for what, answer in answers.items():
        assert answer.headers["content-type"] == "application/json", what  # refused before any stream began
        assert named in answer.json()["detail"], (what, answer.json())
    if bad == "\x00":  # a surrogate cannot reach a path: its bytes are not UTF-8, and are read as U+FFFD
        in_path = server.http.get("/corpora/lights%00/documents", headers=alice)
        assert in_path.status_code == 400 and named in in_path.json()["detail"]
    # The server still answers, and stored nothing of the refused requests.
    assert server.http.get("/corpora/lights/conversations", headers=alice).json() == []
    assert not [c for c in server.http.get("/corpora", headers=alice).json() if c["name"].startswith("notes")]


def test_a_forwarded_address_is_believed_only_from_a_configured_proxy(served):
    """What the server takes for the client's address, as its access log shows it."""
    database, server, keys = served
    # Without trusted_proxies, a client on 127.0.0.1 (which uvicorn by itself believes); with 127.0.0.0/8 trusted, a
    # proxy on 127.0.0.2 (which uvicorn by itself does not).
    peer = "127.0.0.2" if database == "postgresql" else "127.0.0.1"
    forwarded = "203.0.113.77"
    with httpx.Client(base_url=server.url, transport=httpx.HTTPTransport(local_address=peer)) as http:
        assert http.get("/corpora", headers={**keys["bob"], "X-Forwarded-For": forwarded}).status_code == 200
    time.sleep(0.5)  # the access log line is written as the response goes out
    logged = [line for line in server.log.read_text().splitlines() if '"GET /corpora HTTP/1.1" 200' in line]
    if database == "postgresql":  # a trusted proxy: the client is the one it names
        assert f"{forwarded}:" in logged[-1], logged[-1]
    else:  # no proxy configured: the header is the client's own claim, and the client is its connection
        assert f"{peer}:" in logged[-1] and forwarded not in logged[-1], logged[-1]


# ------------------------------------------------------------------------------------------ the app, in a browser


CHROMIUM = "/usr/bin/chromium"


def bob_after_alice_failed_in_a_browser(data_dir, trusted_proxies: str | None) -> str:
    """`streamlit run` as `make run` starts it, with a per-address limit of 3: alice fails 3 times through a proxy
    that says she is 198.51.100.5, then bob logs in through it as 198.51.100.6. What the form told bob."""
    from playwright.sync_api import sync_playwright

    with_users(Settings(data_dir=data_dir)).store.engine.dispose()
    env = {
        **os.environ,
        "SIFT_DATA_DIR": str(data_dir),
        "SIFT_AUTH": "true",
        "SIFT_APP_PRELOAD_MODELS": "false",
        "SIFT_LOGIN_MAX_FAILURES": "3",
        "SIFT_LOGIN_MAX_FAILURES_PER_ADDRESS": "3",
        **({"SIFT_TRUSTED_PROXIES": trusted_proxies} if trusted_proxies else {}),
    }
    allow = subprocess.run(
        [sys.executable, "-m", "sift.app.cli", "forwarded-allow-ips"], env=env, capture_output=True, text=True
    )
    if allow.returncode == 0:  # as the Makefile's run target hands it to Streamlit (where the command exists)
        env["FORWARDED_ALLOW_IPS"] = allow.stdout.strip()
    port = free_port()
    log_path = data_dir.parent / f"streamlit-{port}.log"
    command = [sys.executable, "-m", "streamlit", "run", HOME, "--server.address", "127.0.0.1"]
    command += ["--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    with log_path.open("w") as log:
        app = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])

            def log_in(name: str, password: str, address: str) -> str:
                page = browser.new_page(extra_http_headers={"X-Forwarded-For": address})
                page.set_default_timeout(120_000)
                deadline = time.monotonic() + 120
                while True:
                    try:
                        page.goto(f"http://127.0.0.1:{port}/")
                        break
                    except Exception:  # not listening yet
                        assert app.poll() is None and time.monotonic() < deadline, log_path.read_text()
                        time.sleep(1)
                page.get_by_role("textbox", name="User name").fill(name)
                page.get_by_role("textbox", name="Password").fill(password)
                page.get_by_role("button", name="Log in").click()
                answer = page.locator("[data-testid=stAlert], h1:has-text('Chat')").first
                answer.wait_for()
                said = answer.inner_text()
                page.close()
                return said

            for _ in range(3):
                assert "Wrong user name or password" in log_in("alice", "a guess", "198.51.100.5")
            said = log_in("bob", PASSWORDS["bob"], "198.51.100.6")
            browser.close()
    finally:
        app.terminate()
        app.wait(timeout=30)
    return said


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"no Chromium at {CHROMIUM}")
def test_the_login_form_believes_a_forwarded_address_only_from_a_trusted_proxy(tmp_path):
    # No proxy configured: both came from the one connection's address, which alice's failures locked.
    untrusted = bob_after_alice_failed_in_a_browser(tmp_path / "untrusted" / "data", None)
    assert untrusted.startswith("Too many failed logins from this address"), untrusted
    # The proxy on loopback trusted: bob's own address has no failures.
    assert bob_after_alice_failed_in_a_browser(tmp_path / "trusted" / "data", '["127.0.0.1"]') == "Chat"
