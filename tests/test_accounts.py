"""Accounts and keys (``sift.app.accounts``) on SQLite and PostgreSQL: nothing secret stored in clear, roles and
shares, a recreated corpus starting with no shares, failed logins limited; and the ``sift user`` / ``sift key`` /
``sift share`` commands run as a user runs them."""

from __future__ import annotations

import hashlib
import json
import time

import pytest
from sqlalchemy import text

from sift.app.accounts import AccountError, CorpusNameTaken
from sift.app.config import Settings
from sift.app.login_limits import TooManyAttempts
from sift.app.pipeline import Sift
from tests.test_cli import sift as run_sift


@pytest.fixture
def accounts(any_db_settings):
    return Sift(any_db_settings).accounts


def test_passwords_and_keys_are_stored_only_hashed(accounts):
    accounts.add_user("alice", "correct horse battery", "editor")
    created = accounts.create_key("alice", "laptop")

    with accounts.store.engine.connect() as connection:
        users = [dict(r._mapping) for r in connection.execute(text("SELECT * FROM users"))]
        keys = [dict(r._mapping) for r in connection.execute(text("SELECT * FROM api_keys"))]
    stored = json.dumps(users + keys, default=str)
    assert "correct horse battery" not in stored and created.secret not in stored
    assert users[0]["password_hash"].startswith("$argon2id$")
    assert keys[0]["key_hash"] == hashlib.sha256(created.secret.encode()).hexdigest()
    assert created.key.hint == created.secret[:12]  # enough to tell keys apart, far too little to use one

    assert accounts.authenticate("alice", "correct horse battery").name == "alice"
    assert accounts.authenticate("alice", "wrong") is None and accounts.authenticate("nobody", "x") is None


def test_failed_logins_lock_the_name_from_that_address_until_the_window_passes(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", login_max_failures=3, login_window_seconds=2)
    accounts = Sift(settings).accounts
    accounts.add_user("alice", "correct horse battery", "editor")
    accounts.add_user("bob", "bob's password", "reader")
    for _ in range(3):
        assert accounts.authenticate("alice", "a guess", "10.0.0.7") is None

    # The right password is refused too, from that address, with the time to wait.
    with pytest.raises(TooManyAttempts, match=r"Too many failed logins .*: wait [12] s") as refused:
        accounts.authenticate("alice", "correct horse battery", "10.0.0.7")
    # Another name from that address, and the name from another address, log in.
    assert accounts.authenticate("bob", "bob's password", "10.0.0.7").name == "bob"
    assert accounts.authenticate("alice", "correct horse battery", "10.0.0.8").name == "alice"

    time.sleep(refused.value.wait_seconds + 0.1)
    assert accounts.authenticate("alice", "correct horse battery", "10.0.0.7").name == "alice"


def test_guessing_names_counts_against_the_address(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", login_max_failures=2, login_max_failures_per_address=2)
    accounts = Sift(settings).accounts
    accounts.add_user("alice", "correct horse battery", "editor")
    for guess in ("root", "admin"):
        assert accounts.authenticate(guess, "x", "10.0.0.7") is None
    with pytest.raises(TooManyAttempts, match="from this address"):
        accounts.authenticate("alice", "correct horse battery", "10.0.0.7")
    assert accounts.authenticate("alice", "correct horse battery").name == "alice"  # from this machine


def test_a_trusted_proxy_that_is_not_an_address_is_refused_by_name():
    with pytest.raises(ValueError, match=r"trusted_proxies: 'proxy\.internal' is not an IP address or network"):
        Settings(trusted_proxies=["10.0.0.0/8", "proxy.internal"])


def test_a_key_names_its_user_records_its_use_and_stops_when_revoked(accounts):
    accounts.add_user("bob", "pw", "reader")
    created = accounts.create_key("bob")
    assert accounts.keys("bob")[0].last_used_at is None

    assert accounts.user_for_key(created.secret).name == "bob"
    assert accounts.keys("bob")[0].last_used_at is not None
    assert accounts.user_for_key(created.secret + "x") is None

    accounts.revoke_key(created.key.id)
    assert accounts.user_for_key(created.secret) is None
    assert accounts.keys()[0].revoked_at is not None


def test_roles_and_shares_decide_who_reads_and_edits(accounts):
    alice = accounts.add_user("alice", "pw", "editor")
    bob = accounts.add_user("bob", "pw", "reader")
    carol = accounts.add_user("carol", "pw", "editor")
    admin = accounts.add_user("root", "pw", "admin")
    accounts.create_corpus(alice, "notes")

    assert accounts.access(alice, "notes") == "owner" and accounts.can_manage(alice, "notes")
    assert not accounts.can_read(bob, "notes") and accounts.readable_corpora(bob) == []
    with pytest.raises(PermissionError):
        accounts.create_corpus(bob, "mine")  # readers create nothing
    with pytest.raises(CorpusNameTaken, match="'notes' is in use"):
        accounts.create_corpus(carol, "notes")  # a name taken by a corpus she cannot edit

    accounts.share("notes", "bob", "edit")
    assert accounts.can_read(bob, "notes") and not accounts.can_edit(bob, "notes")  # the role caps the share
    accounts.share("notes", "carol", "edit")
    assert accounts.can_edit(carol, "notes") and not accounts.can_manage(carol, "notes")
    assert accounts.readable_corpora(admin) == ["notes"] and accounts.can_manage(admin, "notes")

    accounts.set_role("bob", "editor")
    assert accounts.can_edit(accounts.user("bob"), "notes")
    accounts.remove_user("bob")
    assert [u.name for u in accounts.users()] == ["alice", "carol", "root"]
    with pytest.raises(AccountError, match="No user named 'bob'"):
        accounts.share("notes", "bob", "read")


def test_a_corpus_made_again_under_a_deleted_name_starts_with_no_shares(any_db_settings):
    sift = Sift(any_db_settings)
    alice = sift.accounts.add_user("alice", "pw", "editor")
    bob = sift.accounts.add_user("bob", "pw", "reader")
    sift.accounts.create_corpus(alice, "notes")
    sift.accounts.share("notes", "bob", "read")
    sift.delete_corpus("notes")

    carol = sift.accounts.add_user("carol", "pw", "editor")
    sift.accounts.create_corpus(carol, "notes")
    assert not sift.accounts.can_read(bob, "notes") and not sift.accounts.can_read(alice, "notes")
    assert sift.accounts.access(carol, "notes") == "owner"


def test_user_key_and_share_commands(tmp_path):
    data = tmp_path / "data"
    added = run_sift(data, "user", "add", "alice", "--role", "editor", "--password-stdin", input="s3cret pass\n")
    assert "Added alice (editor)" in added.stdout
    duplicate = run_sift(data, "user", "add", "alice", "--role", "reader", "--password-stdin", input="x\n", check=False)
    assert duplicate.returncode == 1 and "already a user named 'alice'" in duplicate.stderr
    wrong_role = run_sift(data, "user", "role", "alice", "wizard", check=False)
    assert wrong_role.returncode == 1 and "No role 'wizard'" in wrong_role.stderr

    key = run_sift(data, "key", "create", "--user", "alice", "--name", "laptop").stdout.strip()
    assert key.startswith("sift_") and len(key) > 40
    listed = json.loads(run_sift(data, "key", "list", "--user", "alice", "--json").stdout)
    assert [(k["name"], k["revoked_at"]) for k in listed] == [("laptop", None)] and key not in json.dumps(listed)
    run_sift(data, "key", "revoke", str(listed[0]["id"]))
    unknown = run_sift(data, "key", "create", "--user", "nobody", check=False)
    assert unknown.returncode == 1 and "No user named 'nobody'" in unknown.stderr

    sift = Sift(Settings(data_dir=data))
    sift.create_corpus("notes")
    assert "Shared notes with alice (edit)" in run_sift(data, "share", "notes", "--with", "alice", "--edit").stdout
    assert sift.accounts.can_edit(sift.accounts.user("alice"), "notes")
    assert sift.accounts.user_for_key(key) is None  # revoked
    assert json.loads(run_sift(data, "user", "list", "--json").stdout) == [{"name": "alice", "role": "editor"}]
    run_sift(data, "user", "remove", "alice")
    assert sift.accounts.users() == []
