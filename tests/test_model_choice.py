"""Each user's answering model: kept per user in SQL (a new Sift finds it, another user's stays), checked before it
is kept (a local path that holds no model is refused in words), its API key masked and never logged, and used: a
question from the user who chose a server is written by that server (the stand-in records what it is sent), another
user's by the packaged model, and ``answer_style = auto`` follows the model."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import func, select

from sift.app.accounts import LOCAL_ADMIN
from sift.app.config import Settings
from sift.app.model_choice import ModelChoice, ModelChoiceRow
from sift.app.models import language_model, packaged_llm
from sift.app.pipeline import Sift
from sift.rerank.llm import ModelNotFound
from tests.conftest import SAMPLE_CORPUS
from tests.openai_standin import serve

QUESTION = "Who designed the Pharos of Alexandria?"
SECRET = "sk-test-0123456789abcdef"


def test_each_user_keeps_their_own_choice(settings):
    settings = settings.model_copy(update={"answer_model_pickers": "everyone"})  # the default: only admins pick
    sift = Sift(settings)
    alice = sift.accounts.add_user("alice", "alice's password", "reader")
    bob = sift.accounts.add_user("bob", "bob's password", "editor")
    typed = ModelChoice("server", base_url=" http://gpu-box:8000/v1/ ", model=" qwen ", api_key=SECRET)
    kept = sift.save_model_choice(typed, alice)
    assert kept == ModelChoice("server", base_url="http://gpu-box:8000/v1", model="qwen", api_key=SECRET)

    restarted = Sift(settings)  # another process over the same database
    assert restarted.model_choice(alice) == kept
    assert restarted.model_choice(bob) == ModelChoice() == restarted.model_choice(LOCAL_ADMIN)
    folder, gguf = packaged_llm()
    restarted.save_model_choice(ModelChoice("local", path=str(folder / gguf)), LOCAL_ADMIN)
    restarted.save_model_choice(ModelChoice("local", path=str(folder)), bob)
    assert restarted.model_choice(alice) == kept  # neither changed hers
    assert restarted.model_choice(LOCAL_ADMIN).path == str(folder / gguf)
    # A choice is replaced, not added to: one row per user.
    restarted.save_model_choice(ModelChoice(), alice)
    assert restarted.model_choice(alice) == ModelChoice()
    with restarted.history.engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(ModelChoiceRow)) == 3
        restarted.accounts.remove_user("bob")  # the choice goes with its user
        assert connection.scalar(select(func.count()).select_from(ModelChoiceRow)) == 2
        assert connection.scalar(select(ModelChoiceRow.user_id).where(ModelChoiceRow.kind == "local")) is None


def test_only_admins_pick_unless_everyone_may(tmp_path):
    data = tmp_path / "data"
    everyone = Sift(Settings(data_dir=data, answer_model_pickers="everyone"))
    alice = everyone.accounts.add_user("alice", "alice's password", "editor")
    admin = everyone.accounts.add_user("root", "root's password", "admin")
    server = ModelChoice("server", base_url="http://gpu-box:8000/v1", model="qwen")
    everyone.save_model_choice(server, alice)

    admins = Sift(Settings(data_dir=data))  # the default
    assert not admins.may_pick_models(alice) and admins.may_pick_models(admin)
    assert admins.model_choice(alice) == ModelChoice()  # what she picked before is no longer used
    with pytest.raises(PermissionError, match=r"Only admins pick the answering model here \(alice is editor\)"):
        admins.save_model_choice(server, alice)
    assert admins.save_model_choice(server, admin) == admins.model_choice(admin) == server
    assert everyone.model_choice(alice) == server  # kept, should the setting change back


def test_a_local_path_must_hold_a_model(settings, tmp_path):
    sift = Sift(settings)
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("not a model")
    (tmp_path / "no-weights").mkdir()
    (tmp_path / "no-weights" / "config.json").write_text("{}")
    (tmp_path / "two").mkdir()
    for name in ("a.gguf", "b.gguf"):
        (tmp_path / "two" / name).write_bytes(b"GGUF")
    refusals = {
        "missing": "There is no folder or file {path} on the server.",
        "empty": "{path} holds no model: neither a Hugging Face config.json nor a .gguf file.",
        "notes.txt": "{path} is a file but not a GGUF model (.gguf); name it, or a model folder.",
        "no-weights": "{path} has a config.json but no weights (.safetensors or .bin files).",
        "two": "{path} holds 2 GGUF files (a.gguf, b.gguf): name the one to use.",
    }
    for name, reason in refusals.items():
        path = tmp_path / name
        with pytest.raises(ModelNotFound) as refused:
            sift.save_model_choice(ModelChoice("local", path=str(path)))
        assert str(refused.value) == reason.format(path=path)
    with pytest.raises(ValueError, match="starts with http:// or https://"):
        sift.save_model_choice(ModelChoice("server", base_url="gpu-box:8000/v1", model="qwen"))
    with pytest.raises(ValueError, match="Name the model the server serves"):
        sift.save_model_choice(ModelChoice("server", base_url="http://gpu-box:8000/v1", model=" "))
    assert sift.model_choice() == ModelChoice()  # nothing refused was kept

    # A folder with one GGUF file is that file; its settings name the folder and the file.
    folder, gguf = packaged_llm()
    chosen = sift.save_model_choice(ModelChoice("local", path=str(folder)))
    picked = chosen.settings_for(settings)
    assert (picked.llm_model, picked.llm_gguf_file, picked.llm_base_url) == (str(folder), gguf, None)


def test_the_key_is_masked_and_never_logged(settings, caplog):
    sift = Sift(settings)
    caplog.set_level(logging.DEBUG)
    kept = sift.save_model_choice(
        ModelChoice("server", base_url="http://gpu-box:8000/v1", model="qwen", api_key=SECRET)
    )
    assert kept.masked_key == "sk-…cdef" and SECRET not in repr(kept) and SECRET not in f"{kept}"
    assert "local answers with qwen at http://gpu-box:8000/v1" in caplog.text
    assert sift.answer_model(kept).name == "qwen at http://gpu-box:8000/v1"
    lm = sift.quote_scorer(model=kept).lm  # the server's client, built with the key
    assert lm.api_key == SECRET and SECRET not in repr(lm)
    assert SECRET not in caplog.text


def test_chosen_models_are_kept_built_a_few_at_a_time(settings):
    """Up to three chosen models stay built beside the configured one, so a question does not load its weights
    again, and a fourth choice lets the least recently used go."""
    sift = Sift(settings)
    servers = [ModelChoice("server", base_url=f"http://gpu-{n}:8000/v1", model="qwen") for n in range(4)]
    for choice in servers:
        assert sift.quote_scorer(model=choice).lm.base_url == choice.base_url
    assert list(sift._answer_models) == servers[1:]
    sift.answer_model(servers[1])  # used again: now the most recent
    sift.answer_model(servers[0])
    assert list(sift._answer_models) == [servers[3], servers[1], servers[0]]
    assert sift.answer_model(servers[0]).auto_style == "generative"  # a server's size is not known


@pytest.mark.slow
def test_a_question_is_answered_by_the_model_its_user_chose(tmp_path):
    llm = language_model(Settings())  # the packaged model, also behind the stand-in server
    base_url, server = serve(llm, model_name="smollm2", api_key="k")
    try:
        sift = Sift(
            Settings(
                data_dir=tmp_path / "data",
                candidates_k=8,
                answer_top_n=2,
                answer_max_tokens=48,
                answer_model_pickers="everyone",
            )
        )
        sift.ingest_paths([SAMPLE_CORPUS / "history-of-lighthouses.md"], "lights")
        alice = sift.accounts.add_user("alice", "alice's password", "reader")
        bob = sift.accounts.add_user("bob", "bob's password", "reader")
        sift.save_model_choice(ModelChoice("server", base_url=base_url, model="smollm2", api_key="k"), alice)
        assert sift.answer_model(sift.model_choice(bob), load=True).auto_line == (
            "Auto: quotes (the model has 135M parameters, under 1B)"
        )

        # Reranking stays on the configured model (mode none here, to keep the test short): only the answer moves.
        answered = sift.ask(QUESTION, "lights", user=alice, model=sift.model_choice(alice), mode="none")
        sent = list(server.requests)
        written = [body for path, body in sent if path == "/v1/chat/completions" and body.get("stream")]
        # auto with a server's model: it writes (streamed), its answer checked (the quote scorer reads no
        # likelihood by default: answer_quote_llm_sentences 0, so no echoed completions).
        assert written and QUESTION in written[0]["messages"][-1]["content"]
        assert not any(path == "/v1/completions" and body.get("echo") for path, body in sent)
        assert answered.model_summary is not None or answered.style == "generative"

        other = sift.ask(QUESTION, "lights", user=bob, model=sift.model_choice(bob), mode="none")
        assert len(server.requests) == len(sent)  # bob's question never reached alice's server
        assert other.style == "extractive" and other.model_summary is None  # auto with 135M parameters: a quote
        assert "Sostratus" in " ".join(c.text for c in other.citations)
    finally:
        server.shutdown()
