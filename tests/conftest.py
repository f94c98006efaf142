"""Shared fixtures: settings over a temporary data directory, the real embedding model, and real databases
(SQLite always; PostgreSQL on 127.0.0.1:5432, one fresh database per test)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
import uuid
import warnings
from pathlib import Path

import pytest

# Tests configure Sift explicitly; a developer's own SIFT_* settings or sift.toml must not leak in.
for _name in [n for n in os.environ if n.startswith("SIFT_") and not n.startswith("SIFT_TEST_")]:
    del os.environ[_name]

from sift.app.config import Settings
from sift.app.models import embedding_model
from tests.serving import LlamaServer

REPO = Path(__file__).resolve().parent.parent
SAMPLE_CORPUS = REPO / "sample_corpus"
DATASETS = REPO.parent / "shared" / "datasets"
POSTGRES_ADMIN_URL = os.environ.get("SIFT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def datasets() -> Path:
    """../shared/datasets beside the checkout (trec-dl19, dbpedia-entity-5k, cmu-wikiqa-s10)."""
    if not (DATASETS / "trec-dl19").is_dir():
        reason = f"no datasets at {DATASETS}"
        if os.environ.get("SIFT_TEST_REQUIRE_DATASETS"):
            pytest.fail(reason)
        pytest.skip(reason)
    return DATASETS


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture(scope="module")
def one_torch_thread():
    """For tests that embed a passage at a time: threads gain nothing on such small inputs and, on a busy 2-core
    machine, OpenMP barriers made every embedding ~20x slower."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def embedder():
    return embedding_model(Settings())


def _postgres_admin():
    from sqlalchemy import create_engine
    from sqlalchemy.exc import OperationalError

    engine = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        engine.dispose()
        reason = f"no PostgreSQL server at {POSTGRES_ADMIN_URL}: {str(exc).splitlines()[0]}"
        if os.environ.get("SIFT_TEST_REQUIRE_POSTGRES"):
            pytest.fail(reason)
        pytest.skip(reason)
    return engine


@pytest.fixture
def postgres_server() -> str:
    """The admin URL of the PostgreSQL server (for a test that makes its own databases)."""
    _postgres_admin().dispose()
    return POSTGRES_ADMIN_URL


@pytest.fixture
def postgres_url():
    """A fresh, empty PostgreSQL database, dropped after the test."""
    from sqlalchemy import text

    admin = _postgres_admin()
    name = f"sift_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db_settings(request, tmp_path) -> Settings:
    """Settings over SQLite, then over PostgreSQL: storage tests run against both."""
    if request.param == "sqlite":
        return Settings(data_dir=tmp_path / "data")
    return Settings(data_dir=tmp_path / "data", database_url=request.getfixturevalue("postgres_url"))


@pytest.fixture(scope="session")
def pgvector_server():
    """One PostgreSQL server with the pgvector extension for the whole session (the pgserver wheel bundles both),
    in a temporary folder, stopped and deleted at the end. Debian's PostgreSQL here has no pgvector.

    Its folder is its own, not under pytest's base folder: pytest deletes old runs' folders there (another run may
    do so mid-session), and run as root pgserver serves as an unprivileged user, who cannot enter pytest's 0700
    folders."""
    try:
        with warnings.catch_warnings():  # platformdirs: no XDG_RUNTIME_DIR on a server
            warnings.simplefilter("ignore")
            import pgserver

            folder = Path(tempfile.mkdtemp(prefix="sift-test-pgserver-"))
            folder.chmod(0o755)
            server = pgserver.get_server(folder / "pgdata", cleanup_mode="delete")
    except Exception as exc:  # any failure to start means the pgvector tests cannot run: say why
        reason = f"pgserver could not start a PostgreSQL with pgvector: {type(exc).__name__}: {exc}"
        if os.environ.get("SIFT_TEST_REQUIRE_POSTGRES"):
            pytest.fail(reason)
        pytest.skip(reason)
    yield server
    server.cleanup()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def pgvector_url(pgvector_server) -> str:
    """A fresh database on the pgvector server, dropped after the test."""
    name = f"sift_test_{uuid.uuid4().hex[:12]}"
    pgvector_server.psql(f'CREATE DATABASE "{name}";')
    yield pgvector_server.get_uri(name).replace("postgresql://", "postgresql+psycopg://", 1)
    pgvector_server.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE);')


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory) -> LlamaServer:
    """llama-cpp-python's OpenAI-compatible server over the packaged SmolLM2 GGUF, for the whole session, stopped at
    the end (a dev dependency: ``pip install -e '.[dev]'`` compiles it)."""
    server = LlamaServer(tmp_path_factory.mktemp("llama-server") / "server.log").start()
    yield server
    server.stop()


def settings_for(backend: str, request, tmp_path: Path) -> Settings:
    """Settings over a fresh store of that backend: sqlite (FAISS files), postgresql (FAISS files, Debian's server),
    pgvector (vectors in PostgreSQL, pgserver's server)."""
    data_dir = tmp_path / "data"
    if backend == "pgvector":
        return Settings(
            data_dir=data_dir, database_url=request.getfixturevalue("pgvector_url"), vector_store="pgvector"
        )
    if backend == "postgresql":
        return Settings(data_dir=data_dir, database_url=request.getfixturevalue("postgres_url"))
    return Settings(data_dir=data_dir)


@pytest.fixture(params=["sqlite", "postgresql", "pgvector"])
def store_settings(request, tmp_path) -> Settings:
    """any_db_settings and pgvector (PostgreSQL from pgserver, vectors in it): the storage tests run on all three."""
    return settings_for(request.param, request, tmp_path)


@pytest.fixture(params=["sqlite", "pgvector"])
def backend_settings(request, tmp_path) -> Settings:
    """The two vector stores: FAISS files beside SQLite, then pgvector in PostgreSQL (pgserver)."""
    return settings_for(request.param, request, tmp_path)


@pytest.fixture
def eval_settings(tmp_path, monkeypatch) -> Settings:
    monkeypatch.setenv("SIFT_DATA_DIR", str(tmp_path / "data"))
    return Settings()


@pytest.fixture(scope="session")
def beir_slice(datasets, tmp_path_factory) -> Path:
    """Three judged dbpedia queries; the corpus is their judged entries plus 40 others (well under 100)."""
    source = datasets / "dbpedia-entity-5k"
    folder = tmp_path_factory.mktemp("beir") / "dbpedia-slice"
    (folder / "qrels").mkdir(parents=True)
    with (source / "qrels" / "test.tsv").open() as f:
        judged = list(csv.DictReader(f, delimiter="\t"))
    queries = list(dict.fromkeys(r["query-id"] for r in judged if int(r["score"]) > 0))[:3]
    kept = [r for r in judged if r["query-id"] in queries]
    wanted = {r["corpus-id"] for r in kept}
    corpus = [json.loads(line) for line in (source / "corpus.jsonl").read_text().splitlines()]
    chosen = [d for d in corpus if d["_id"] in wanted][:50] + [d for d in corpus if d["_id"] not in wanted][:40]
    (folder / "corpus.jsonl").write_text("\n".join(json.dumps(d) for d in chosen))
    (folder / "queries.jsonl").write_text(
        "\n".join(
            line for line in (source / "queries.jsonl").read_text().splitlines() if json.loads(line)["_id"] in queries
        )
    )
    kept_ids = {d["_id"] for d in chosen}
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n"
        + "".join(f"{r['query-id']}\t{r['corpus-id']}\t{r['score']}\n" for r in kept if r["corpus-id"] in kept_ids)
    )
    return folder


def log_in(name: str):
    """The app's login page, filled in as ``name`` with the password ``"<name>'s password"``: the Chat page."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "ui" / "Home.py"), default_timeout=60).run()
    at.text_input[0].input(name)
    at.text_input[1].input(f"{name}'s password")
    at.button[0].click().run()
    assert not at.exception and [t.value for t in at.title] == ["Chat"], (at.exception, at.error)
    return at
