"""``sift serve`` with auth on, as its clients meet it: a real server in a subprocess, bound to 0.0.0.0 (allowed
because auth is on) and called on 127.0.0.1, with three users' keys.

alice (editor) owns "lights" and shares it with bob (reader) to read; carol (editor) owns "vault". A corpus a key
cannot read answers 404, like one that does not exist (its name is not given away); one it reads but may not change,
or a role that lacks the right, answers 403; a name in use, 409.
"""

from __future__ import annotations

import pytest
from openai import OpenAI

from sift.app.config import Settings
from sift.app.pipeline import Sift
from tests.conftest import SAMPLE_CORPUS
from tests.serving import Server

pytestmark = pytest.mark.slow

QUESTION = "Who designed the Pharos of Alexandria?"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("auth-api") / "data"


@pytest.fixture(scope="module")
def keys(data_dir) -> dict[str, str]:
    accounts = Sift(Settings(data_dir=data_dir)).accounts
    for name, role in [("alice", "editor"), ("bob", "reader"), ("carol", "editor")]:
        accounts.add_user(name, f"{name}'s password", role)
    return {name: accounts.create_key(name).secret for name in ("alice", "bob", "carol")}


@pytest.fixture(scope="module")
def server(data_dir, keys):
    server = Server(data_dir, host="0.0.0.0", env={"SIFT_AUTH": "true"}).start()  # it answers on 127.0.0.1
    yield server
    server.stop()


def as_user(name: str, keys: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {keys[name]}"}


@pytest.fixture(scope="module")
def corpora(server, keys, data_dir):
    """alice's "lights" with the two sample Markdown files, shared with bob to read; carol's "vault", one file."""
    http = server.http
    files = [("files", (p.name, p.read_bytes())) for p in sorted(SAMPLE_CORPUS.glob("*.md"))]
    for user, corpus, upload in [("alice", "lights", files), ("carol", "vault", [("files", ("v.md", b"# Vault"))])]:
        headers = as_user(user, keys)
        assert http.post("/corpora", json={"name": corpus}, headers=headers).status_code == 201
        accepted = http.post(f"/corpora/{corpus}/uploads", files=upload, headers=headers)
        assert accepted.status_code == 202, accepted.text
        job = server.wait_for_job(accepted.json()["id"], headers=headers)
        assert job["status"] == "done" and {f["status"] for f in job["files"]} == {"added"}
    Sift(Settings(data_dir=data_dir)).accounts.share("lights", "bob", "read")
    return {"vault_job": job["id"]}


def test_every_endpoint_needs_a_valid_key(server, corpora):
    http = server.http
    calls = {
        "corpora": lambda h: http.get("/corpora", headers=h),
        "models": lambda h: http.get("/v1/models", headers=h),
        "search": lambda h: http.post("/search", json={"corpus": "lights", "query": "lamp"}, headers=h),
        "rerank": lambda h: http.post("/v1/rerank", json={"query": "x", "documents": ["a"]}, headers=h),
        "chat": lambda h: http.post(
            "/v1/chat/completions", json={"model": "lights", "messages": [{"role": "user", "content": "x"}]}, headers=h
        ),
        "upload": lambda h: http.post("/corpora/lights/uploads", files=[("files", ("a.txt", b"a"))], headers=h),
    }
    for headers in (None, {"Authorization": "Bearer sift_not-a-key"}, {"Authorization": "Basic YTpi"}):
        answered = {name: call(headers) for name, call in calls.items()}
        assert {name: r.status_code for name, r in answered.items()} == dict.fromkeys(calls, 401), headers
        assert answered["corpora"].headers["www-authenticate"] == "Bearer"

    schema = http.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key: `sift key create --user NAME`.",
    }
    assert schema["paths"]["/v1/chat/completions"]["post"]["security"] == [{"HTTPBearer": []}]


def test_a_reader_searches_a_shared_corpus_but_cannot_change_it(server, keys, corpora):
    http, bob = server.http, as_user("bob", keys)
    assert http.get("/corpora", headers=bob).json() == [{"name": "lights"}]
    found = http.post("/search", json={"corpus": "lights", "query": "Pharos of Alexandria", "k": 2}, headers=bob)
    assert found.status_code == 200 and found.json()["passages"][0]["source"] == "history-of-lighthouses.md"

    upload = http.post("/corpora/lights/uploads", files=[("files", ("a.txt", b"a"))], headers=bob)
    assert upload.status_code == 403 and "bob (reader) cannot change corpus 'lights'" in upload.json()["detail"]
    document = http.get("/corpora/lights/documents", headers=bob).json()[0]["id"]
    assert http.delete(f"/corpora/lights/documents/{document}", headers=bob).status_code == 403
    assert http.delete("/corpora/lights", headers=bob).status_code == 403
    assert http.post("/corpora", json={"name": "mine"}, headers=bob).status_code == 403
    assert len(http.get("/corpora/lights/documents", headers=bob).json()) == 2  # nothing changed


def test_another_users_corpus_is_invisible(server, keys, corpora):
    http, alice, bob = server.http, as_user("alice", keys), as_user("bob", keys)
    assert http.get("/corpora", headers=alice).json() == [{"name": "lights"}]
    assert [m["id"] for m in http.get("/v1/models", headers=alice).json()["data"]] == ["lights"]
    hidden = {
        "documents": http.get("/corpora/vault/documents", headers=alice),
        "search": http.post("/search", json={"corpus": "vault", "query": "vault"}, headers=alice),
        "ask": http.post("/ask", json={"corpus": "vault", "question": "What is in it?"}, headers=alice),
        "upload": http.post("/corpora/vault/uploads", files=[("files", ("a.txt", b"a"))], headers=alice),
        "delete": http.delete("/corpora/vault", headers=alice),
        "jobs": http.get("/corpora/vault/jobs", headers=alice),
        "job": http.get(f"/jobs/{corpora['vault_job']}", headers=bob),
        "conversations": http.get("/corpora/vault/conversations", headers=bob),
        "take the name": http.post("/corpora", json={"name": "vault"}, headers=alice),
    }
    codes = {what: r.status_code for what, r in hidden.items()}
    assert codes == {**dict.fromkeys(hidden, 404), "take the name": 409}  # names are unique: "in use", no more
    # Told the same as a corpus that does not exist, without listing the corpora that do.
    assert hidden["documents"].json()["detail"] == "No corpus named 'vault' that you can read."
    assert http.get("/corpora/nowhere/documents", headers=alice).json()["detail"].startswith("No corpus named")
    assert "lights" not in hidden["search"].json()["detail"]


def test_the_openai_client_chats_with_a_key_and_its_trace_stays_private(server, keys, corpora):
    client = OpenAI(base_url=server.url + "/v1", api_key=keys["bob"], timeout=300)
    assert [m.id for m in client.models.list()] == ["lights"]
    reply = client.chat.completions.create(model="lights", messages=[{"role": "user", "content": QUESTION}])
    assert reply.choices[0].message.content.strip()
    assert reply.model_extra["citations"][0]["source"] == "history-of-lighthouses.md"

    trace = f"/traces/{reply.model_extra['sift']['trace_id']}"
    assert server.http.get(trace, headers=as_user("alice", keys)).status_code == 200  # the corpus's owner
    assert server.http.get(trace, headers=as_user("carol", keys)).status_code == 404


def test_a_revoked_key_is_refused_and_use_is_recorded(server, data_dir, corpora):
    accounts = Sift(Settings(data_dir=data_dir)).accounts
    created = accounts.create_key("alice", "ci")
    headers = {"Authorization": f"Bearer {created.secret}"}
    assert server.http.get("/corpora", headers=headers).status_code == 200
    assert next(k for k in accounts.keys("alice") if k.id == created.key.id).last_used_at is not None

    accounts.revoke_key(created.key.id)
    assert server.http.get("/corpora", headers=headers).status_code == 401
