"""The face of Sift: one object the CLI and the UI call for every action (ingest, reindex, list, read, delete,
search, ask).

Models and the store are opened on first use and kept for the life of the object.

Example::

    >>> sift = Sift(Settings(data_dir="/tmp/sift-doc"))
    >>> results = sift.ingest_paths([Path("sample_corpus")], corpus="sample")  # doctest: +SKIP
    >>> sift.ask("Who designed the Pharos of Alexandria?", corpus="sample").citations[0].source  # doctest: +SKIP
    'sample_corpus/history-of-lighthouses.md'
"""

from __future__ import annotations

import collections.abc
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from pathlib import Path

from sift.app.accounts import LOCAL_ADMIN, Accounts, User
from sift.app.answering import (
    ANSWER_STYLES,
    DOES_NOT_ANSWER,
    MODEL_SUMMARY,
    QUOTE_UNSURE,
    auto_style_line,
    choose_style,
    parameter_count,
    quote_answer,
    support_chance,
)
from sift.app.config import Settings
from sift.app.documents import DocumentView, document_view
from sift.app.evidence import find_evidence
from sift.app.focus import focus_passages
from sift.app.followup import FollowUp, Turn, fuse, standalone_question, turns
from sift.app.generation import CANNOT_ANSWER, INTERRUPTED, UNCITED, Citation, Generator, finish
from sift.app.history import (
    Conversation,
    ConversationNotFound,
    History,
    MessageDetails,
    StoredMessage,
    StoredTrace,
)
from sift.app.limits import check_ask, check_question, question_budget, within_question_limit
from sift.app.login_limits import LoginGuard
from sift.app.model_choice import MODEL_KINDS, ModelChoice, ModelChoices
from sift.app.models import embedding_model, language_model, quote_identity
from sift.app.profiles import find_profile
from sift.app.quotes import Quote, QuoteScorer, asks_yes_or_no
from sift.app.reranker import build_reranker, weights_profile
from sift.ingestion.ingest import FileResult, IngestItem, IngestOptions, Ingestor, ProgressCallback, collect_files
from sift.ingestion.isolation import ParseLimits
from sift.ingestion.loaders import safe_source_name
from sift.ingestion.store import Store, StoredDocument, check_text
from sift.ingestion.vector_store import HnswParams
from sift.rerank import Mode, Reranker, RerankTrace, Strategy, TraceCandidate, starting_weights
from sift.rerank.llm import Message, ServerCapabilities, ServerLM
from sift.retrieval.hybrid import RETRIEVAL_MODES, Retriever
from sift.retrieval.types import Candidate

logger = logging.getLogger(__name__)

# The types the UI reads come from here, so that the UI need not know the packages below the app.
__all__ = [
    "CANNOT_ANSWER",
    "DOES_NOT_ANSWER",
    "MODEL_SUMMARY",
    "QUOTE_UNSURE",
    "UNCITED",
    "Answer",
    "AnswerModel",
    "Citation",
    "FileResult",
    "MessageDetails",
    "ModelChoice",
    "RerankTrace",
    "ServerCapabilities",
    "Sift",
    "Status",
    "Token",
    "TraceCandidate",
]

Rewriter = Callable[[str, list[Turn]], FollowUp]
"""What reads a question in its conversation (``ask_stream``'s default: ``followup.standalone_question``)."""

SAMPLE_CORPUS_DIR = Path(__file__).resolve().parent.parent / "sample_corpus"
SAMPLE_CORPUS_NAME = "sample"
ANSWER_MODELS_KEPT = 3  # users' chosen answering models kept loaded beside the configured one (least recent goes)


@dataclass
class Answer:
    """What ``ask`` returns: the answer, the passages it cites, and how it was reached."""

    question: str
    corpus: str
    text: str
    citations: list[Citation] = field(default_factory=list)
    answered: bool = True
    standalone_question: str | None = None  # what was searched for beside the question; None when nothing
    followup: FollowUp | None = None  # how the question was read in its conversation (method, reason)
    verified: bool = False  # every sentence of the answer is supported by a passage it cites (app/evidence.py)
    unsupported: list[str] = field(default_factory=list)  # the answer's sentences no cited passage supports
    style: str | None = None  # "extractive" (a quote of the passages) or "generative" (the model's words)
    addresses_question: bool | None = None  # False: no sentence it rests on is about the question (DOES_NOT_ANSWER)
    model_summary: str | None = None  # the model's words where a quote replaced them (auto), labelled as a summary
    rerank: RerankTrace | None = None  # why the passages were ordered as they were
    trace_id: int | None = None  # where that trace is kept in SQL
    timings_ms: dict[str, float] = field(default_factory=dict)

    def details(self) -> MessageDetails:
        """What a conversation keeps beside the answer's text."""
        return MessageDetails(
            citations=self.citations,
            trace_id=self.trace_id,
            answered=self.answered,
            standalone_question=self.standalone_question,
            verified=self.verified,
            unsupported=self.unsupported,
            followup=self.followup,
            style=self.style,
            addresses_question=self.addresses_question,
            model_summary=self.model_summary,
        )

    def to_dict(self) -> dict:
        """The stable JSON shape of ``sift ask --json`` (see README)."""
        return {
            "question": self.question,
            "standalone_question": self.standalone_question,
            "followup": asdict(self.followup) if self.followup else None,
            "corpus": self.corpus,
            "answer": self.text,
            "answered": self.answered,
            "verified": self.verified,
            "unsupported": self.unsupported,
            "answer_style": self.style,
            "answers_question": self.addresses_question,
            "model_summary": self.model_summary,
            "citations": [asdict(c) for c in self.citations],
            "rerank": self.rerank.model_dump(mode="json") if self.rerank else None,
            "trace_id": self.trace_id,
            "timings_ms": self.timings_ms,
        }

    @property
    def turn(self) -> Turn:
        """This exchange as the next question's conversation sees it."""
        return Turn(self.question, self.text, cited_titles(self.citations))


@dataclass(frozen=True)
class AnswerModel:
    """The model that writes a user's answers, as the app shows it: its name, its size (None: a server's, not
    known, or a local model not loaded yet: ``loaded``), the style ``answer_style = auto`` gives with it (None until
    it is known) and why, and the model that reranks."""

    name: str
    loaded: bool
    parameters: int | None
    auto_style: str | None
    auto_line: str
    reranker: str


@dataclass(frozen=True)
class _Answering:
    """What a choice of model answers with: its generator, and the quote weights fitted for it (None: defaults)."""

    generator: Generator
    quote_weights: dict[str, float] | None


@dataclass(frozen=True)
class Status:
    """A step of ``ask_stream`` in words, for a status line ("Reranking 20 passages…")."""

    text: str


@dataclass(frozen=True)
class Token:
    """A piece of the answer as the model writes it."""

    text: str


def open_store(settings: Settings, vector_store: str | None = None) -> Store:
    """The store the settings describe, with their vector store (or the one named: ``sift migrate-vectors``)."""
    return Store.open(
        settings.resolved_database_url(),
        settings.data_dir,
        settings.index_type,
        vector_store=vector_store or settings.vector_store,
        hnsw=HnswParams(settings.hnsw_m, settings.hnsw_ef_construction, settings.hnsw_ef_search),
        device=settings.resolved_device(),
    )


class Sift:
    """Everything a user can do with Sift, over one settings object."""

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or Settings()
        self._rerankers: dict[tuple[str, str], Reranker] = {}
        self._retrievers: dict[str, Retriever] = {}
        self._answer_models: collections.OrderedDict[ModelChoice, _Answering] = collections.OrderedDict()
        # A server's requests run in threads: two first questions at once must not each load the models.
        self._models_lock = threading.RLock()

    @cached_property
    def store(self) -> Store:
        return open_store(self.settings)

    @cached_property
    def history(self) -> History:
        """Conversations and traces, in the store's database (opened after the store: its tables come first)."""
        return History.open(self.store.engine)

    @cached_property
    def accounts(self) -> Accounts:
        """Users, keys and corpus access (their tables are migrated with the history's)."""
        guard = LoginGuard(
            self.history.engine,
            self.settings.login_max_failures,
            self.settings.login_max_failures_per_address,
            self.settings.login_window_seconds,
        )
        return Accounts(self.history.engine, self.store, guard)

    @cached_property
    def model_choices(self) -> ModelChoices:
        """Each user's answering model (migrated with the history's tables)."""
        return ModelChoices(self.history.engine)

    @cached_property
    def embedder(self):
        with self._models_lock:
            return embedding_model(self.settings)

    @property
    def retriever(self) -> Retriever:
        """The retriever of the settings' mode."""
        return self.retriever_for()

    def retriever_for(self, mode: str | None = None) -> Retriever:
        """The retriever of a mode (dense, lexical or hybrid; default: the settings'), built once per Sift."""
        mode = mode or self.settings.retrieval_mode
        with self._models_lock:
            if mode not in self._retrievers:
                self._retrievers[mode] = Retriever(self.store, self.embedder, mode, self.settings.retrieval_fusion)
            return self._retrievers[mode]

    retrieval_modes = RETRIEVAL_MODES  # the choices a user has (the UI's retrieval setting)
    answer_styles = ANSWER_STYLES  # and of answer style

    # ------------------------------------------------------------------------------------------ corpora

    def corpora(self) -> list[str]:
        return self.store.corpus_names()

    def documents(self, corpus: str) -> list[StoredDocument]:
        return self.store.documents(corpus)

    def ingest_paths(
        self, paths: list[Path], corpus: str, on_progress: ProgressCallback | None = None
    ) -> list[FileResult]:
        return self.ingest(collect_files(paths), corpus, on_progress)

    def ingest(
        self, items: list[IngestItem], corpus: str, on_progress: ProgressCallback | None = None
    ) -> list[FileResult]:
        return self._ingestor().ingest(corpus, items, on_progress)

    def reindex(self, corpus: str, on_progress: ProgressCallback | None = None) -> list[FileResult]:
        """Re-extract and re-embed every document of a corpus from its kept original file, with the current
        settings (after an extraction or chunking change). Each document is replaced in one transaction; one ingested
        before Sift kept originals fails with the reason."""
        self.store.corpus(corpus)  # a wrong name fails here, before the embedding model loads
        return self._ingestor().reindex(corpus, on_progress)

    def _ingestor(self) -> Ingestor:
        options = IngestOptions(
            chunk_size=self.settings.chunk_size,
            chunk_overlap=self.settings.chunk_overlap,
            embedding_batch_size=self.settings.embedding_batch_size,
            max_file_bytes=self.settings.max_upload_bytes,
            parse_limits=ParseLimits(self.settings.parse_cpu_seconds, self.settings.parse_memory_mb)
            if self.settings.parse_in_child
            else None,
        )
        return Ingestor(self.store, self.embedder, options)

    def create_corpus(self, name: str) -> str:
        return self.store.corpus(name, create=True).name

    def ingest_uploads(
        self,
        uploads: list[tuple[str, int, Callable[[], bytes]]],
        corpus: str,
        on_progress: ProgressCallback | None = None,
    ) -> list[FileResult]:
        """Ingest uploaded files given as (file name, size in bytes, read). The name is sanitised and the size
        checked against the limit before ``read`` is called."""
        items = [IngestItem(safe_source_name(name), size, read) for name, size, read in uploads]
        return self.ingest(items, corpus, on_progress)

    def document_view(self, corpus: str, document_id: int) -> DocumentView:
        """A document of the corpus: its text with every passage's place in it (to show a cited passage where it
        stands); raises DocumentNotFound, also for a document of another corpus."""
        return document_view(self.store, self.store.corpus(corpus).id, document_id, self.settings.max_upload_bytes)

    def delete_document(self, corpus: str, document_id: int) -> str:
        return self.store.delete_document(corpus, document_id)

    def delete_corpus(self, corpus: str) -> int:
        """Remove a corpus with its conversations and traces. Returns the number of documents it had."""
        corpus_id = self.store.corpus(corpus).id
        self.history.delete_corpus(corpus_id)
        self.accounts.forget_corpus(corpus_id)
        return self.store.delete_corpus(corpus)

    def ensure_sample_corpus(self, on_progress: ProgressCallback | None = None) -> list[FileResult] | None:
        """Ingest the bundled sample corpus when the store has no corpus at all; None when it has one."""
        if self.corpora():
            return None
        return self.ingest_paths(sorted(SAMPLE_CORPUS_DIR.iterdir()), SAMPLE_CORPUS_NAME, on_progress)

    # ------------------------------------------------------------------------------------------ questions

    def search(self, query: str, corpus: str, k: int | None = None, retrieval: str | None = None) -> list[Candidate]:
        """Passages for a query, by ``retrieval`` mode (dense, lexical or hybrid; default: the settings')."""
        if retrieval is not None and retrieval not in RETRIEVAL_MODES:
            raise ValueError(f"Unknown retrieval mode {retrieval!r}; choose from {', '.join(RETRIEVAL_MODES)}.")
        self.store.corpus(corpus)  # a wrong name fails here, before the embedding model loads
        check_text(query, "The query")
        return self.retriever_for(retrieval).search(query, corpus, k or self.settings.candidates_k)

    def reranker(
        self,
        mode: str | None = None,
        strategy: str | None = None,
        weights: dict[str, float] | None = None,
        llm_k: int | None = None,
        llm_budget_s: float | None = None,
    ) -> Reranker:
        """The reranker for a mode and strategy (default: the settings'), models loaded once per Sift; ``llm_k``
        (default: the settings') is how many candidates its LLM scores, ``llm_budget_s`` (default: the settings';
        0: none) how many seconds that may take. With a budget, the LLM's prefill rate is measured the first time
        (``Reranker.calibrate``: two passages)."""
        key = (mode or self.settings.rerank_mode, strategy or self.settings.rerank_strategy)
        budget = self.settings.rerank_llm_budget_s if llm_budget_s is None else llm_budget_s or None
        with self._models_lock:
            if key not in self._rerankers:
                self._rerankers[key] = build_reranker(self.settings, *key)
            reranker = self._rerankers[key]
            if budget is not None:  # once per model: the first budget is sized by this machine, not by a guess
                reranker.calibrate()
        if weights:
            reranker = replace(reranker, weights={**(reranker.weights or {}), **weights})
        return replace(reranker, llm_k=llm_k or reranker.llm_k, llm_budget_s=budget)

    # The choices a user has (the UI's rerank settings), so that the UI need not know the rerank package.
    rerank_modes = tuple(Mode)
    rerank_strategies = tuple(s for s in Strategy if not s.yardstick)  # REBEL's procedure is for `sift eval` only
    llm_rerank_modes = tuple(mode for mode in Mode if mode.uses_llm)  # the modes that have a strategy

    def rerank_weights(self, mode: str | None = None, strategy: str | None = None) -> dict[str, float]:
        """The composite weights a mode starts from here: its defaults, the weights profile fitted for these models
        over them (``sift tune``), the settings' weights over both."""
        mode = mode or self.settings.rerank_mode
        if mode == "none":
            return {}  # retrieval order: nothing is weighed
        return starting_weights(mode, weights_profile(self.settings, mode, strategy), self.settings.rerank_weights)

    @cached_property
    def generator(self) -> Generator:
        """The configured model's generator (the one the reranker shares its LLM with)."""
        with self._models_lock:
            return self._generator(self.settings)

    def _generator(self, settings: Settings) -> Generator:
        return Generator(
            language_model(settings),
            settings.answer_max_tokens,
            settings.answer_max_sentences,
            best_last=settings.answer_passage_order == "best_last",
        )

    def quote_scorer(self, weights: dict[str, float] | None = None, model: ModelChoice | None = None) -> QuoteScorer:
        """The scorer of the sentences a quote-first answer is chosen from, on the answering ``model``'s LLM
        (default: the configured one), with the weights ``sift tune-quotes`` fitted for these models (or ``weights``;
        its defaults where neither is there)."""
        answering = self._answering_with(model)
        return QuoteScorer(
            self.embedder,
            answering.generator.llm,
            answering.quote_weights if weights is None else weights,
            self.settings.answer_quote_llm_sentences,
        )

    # ------------------------------------------------------------------------------------------ answering models
    model_kinds = MODEL_KINDS  # the choices a user has (the UI's model picker)

    def model_choice(self, user: User = LOCAL_ADMIN) -> ModelChoice:
        """The model the user picked to write their answers (the configured one until they pick one, and for a user
        who may not pick: ``may_pick_models``)."""
        return self.model_choices.get(user) if self.may_pick_models(user) else ModelChoice()

    def may_pick_models(self, user: User = LOCAL_ADMIN) -> bool:
        """Whether the user may pick a local model or a server (``answer_model_pickers``: everyone, or admins)."""
        return user.is_admin or self.settings.answer_model_pickers == "everyone"

    def save_model_choice(self, choice: ModelChoice, user: User = LOCAL_ADMIN) -> ModelChoice:
        """Keep ``choice`` as the user's answering model, checked first (``ModelChoice.checked``: ValueError, or
        ModelNotFound for a local path that holds no model; PermissionError for a user who may not pick one:
        ``may_pick_models``); returns it as kept. Other users' choices stay.

        >>> Sift(Settings(data_dir="/tmp/sift-doc")).save_model_choice(ModelChoice("local", "/nowhere"))
        Traceback (most recent call last):
        sift.rerank.llm.base.ModelNotFound: There is no folder or file /nowhere on the server.
        """
        if not self.may_pick_models(user) and choice.kind != "configured":
            raise PermissionError(f"Only admins pick the answering model here ({user.name} is {user.role}).")
        checked = choice.checked()
        self.model_choices.save(user, checked)
        logger.info("%s answers with %s", user.name, checked.describe(self.settings))
        return checked

    def answer_model(self, model: ModelChoice | None = None, load: bool = True) -> AnswerModel:
        """The answering ``model`` (default: the configured one) in words: what ``answer_style = auto`` gives with
        it, and which model reranks (always the configured one). Its size is known once it is loaded: ``load``
        loads a local model that is not yet (seconds; a server's costs nothing), else the answer says it is not.

        >>> Sift(Settings(llm_base_url="http://gpu-box:8000/v1", llm_api_model="qwen")).answer_model().auto_style
        'generative'
        """
        model = model or ModelChoice()
        threshold = self.settings.answer_generative_min_parameters
        name, reranker = model.describe(self.settings), ModelChoice().describe(self.settings)
        if not load and not self._answering_built(model):
            line = f"Auto: decided once the model has loaded (quotes under {parameter_count(threshold)} parameters)"
            return AnswerModel(name, False, None, None, line, reranker)
        parameters = self._answering_with(model).generator.llm.parameters
        style = choose_style("auto", parameters, threshold)
        return AnswerModel(name, True, parameters, style, auto_style_line(parameters, threshold), reranker)

    def _answering_built(self, model: ModelChoice) -> bool:
        """Whether the choice's generator is built, or costs nothing to build (a server's: no weights)."""
        if model.kind == "configured":
            return "generator" in self.__dict__ or bool(self.settings.llm_base_url)
        return model.kind == "server" or model in self._answer_models

    def _answering_with(self, model: ModelChoice | None) -> _Answering:
        """The generator (and quote weights) of a choice, built once and kept while it is among the
        ``ANSWER_MODELS_KEPT`` most recently used: a question does not load the weights again."""
        if model is None or model.kind == "configured":
            return _Answering(self.generator, self._quote_weights)
        with self._models_lock:
            if model not in self._answer_models:
                settings = model.settings_for(self.settings)
                profile = find_profile(settings, quote_identity(settings))
                self._answer_models[model] = _Answering(self._generator(settings), profile.weights if profile else None)
                logger.info("Answering model %s ready", model.describe(self.settings))
                while len(self._answer_models) > ANSWER_MODELS_KEPT:
                    self._answer_models.popitem(last=False)
            self._answer_models.move_to_end(model)
            return self._answer_models[model]

    @cached_property
    def _quote_weights(self) -> dict[str, float] | None:
        """The quote profile's weights, read once per Sift rather than from disk every question."""
        profile = find_profile(self.settings, quote_identity(self.settings))
        return profile.weights if profile else None

    def load_models(self) -> float:
        """Load now the models a question uses (the embedder, the settings' reranker and the generator's LLM), rather
        than at the first question, and measure the LLM's prefill rate where a budget needs it; returns the seconds
        it took. A server's worker calls it once at start-up, so its first requests neither wait on the loading nor
        load anything twice.

        >>> Sift(Settings(data_dir="/tmp/sift-doc")).load_models()  # doctest: +SKIP
        2.7
        """
        started = time.perf_counter()
        with self._models_lock:
            self.retriever_for()
            self.reranker()
            _ = self.generator
        return round(time.perf_counter() - started, 1)

    def ask(self, question: str, corpus: str, history: list[Turn] | list[Message] | None = None, **options) -> Answer:
        """Answer a question (``ask_stream`` without the intermediate events)."""
        for event in self.ask_stream(question, corpus, history, **options):
            if isinstance(event, Answer):
                return event
        raise RuntimeError("ask_stream ended without an answer")

    def check_question(self, question: str) -> None:
        """Raise ValueError, with the reason in words, for a question Sift will not take (before any work is done).

        >>> Sift(Settings(max_question_chars=10)).check_question("How tall is the Eddystone lighthouse?")
        Traceback (most recent call last):
        sift.app.limits.LimitExceeded: The question is 37 characters long; the limit is 10 (SIFT_MAX_QUESTION_CHARS).
        """
        check_question(self.settings, question)

    def check_ask(
        self,
        question: str,
        history: list[Turn] | list[Message] | None = None,
        k: int | None = None,
        llm_k: int | None = None,
        top_n: int | None = None,
        strategy: str | None = None,
    ) -> None:
        """Raise ValueError (``sift.app.limits.LimitExceeded`` past one of the settings' limits, which it names) for a
        question, its history and options Sift will not take, before any work is done."""
        check_ask(self.settings, question, history, k, llm_k, top_n, strategy)

    def ask_stream(
        self,
        question: str,
        corpus: str,
        history: list[Turn] | list[Message] | None = None,
        k: int | None = None,
        top_n: int | None = None,
        mode: str | None = None,
        strategy: str | None = None,
        weights: dict[str, float] | None = None,
        llm_k: int | None = None,
        llm_budget_s: float | None = None,
        conversation_id: int | None = None,
        rewriter: Rewriter | None = None,
        retrieval: str | None = None,
        user: User = LOCAL_ADMIN,
        answer_style: str | None = None,
        model: ModelChoice | None = None,
    ) -> Iterator[Status | Token | Answer]:
        """Answer a question from a corpus, yielding Status events, then the answer's Tokens, then the Answer.

        Retrieval (``retrieval``: dense, lexical or hybrid; default: the settings') finds ``k`` candidates, the
        reranker (``mode``/``strategy``, default: the settings'; its LLM scoring the best ``llm_k`` of them by the
        first-stage signals, as many as fit ``llm_budget_s`` seconds: default the settings', 0 none, within the
        admin's ceiling: ``limits.question_budget``) reorders them and its trace is kept in SQL, and the answer is
        written from the first ``top_n`` in ``answer_style`` (auto, generative or extractive: ``sift.app.answering``;
        default: the settings') by ``model`` (a user's ``ModelChoice``; default: the configured model, which always
        reranks); ``check_ask`` refuses options past the settings' limits. The question's
        conversation is the stored one when ``conversation_id`` is given (the question and the answer are then
        stored in it), else ``history``: earlier ``Turn``s, or user/assistant messages. A question that points back
        into it ("When was it built?") is searched for both as asked and as ``rewriter`` makes it stand alone
        (default: ``followup.standalone_question``), and the two searches' passages are fused; the reranker and the
        generator read the standalone question. A conversation of another corpus, or one ``user`` may not see, raises
        ConversationNotFound before anything is stored.
        """
        self.check_ask(question, history if conversation_id is None else None, k, llm_k, top_n, strategy)
        corpus_id = self.store.corpus(corpus).id
        earlier = self.turns(corpus, conversation_id, user) if conversation_id is not None else _as_turns(history or [])
        asked = self._answer(
            question,
            corpus,
            corpus_id,
            earlier,
            k,
            top_n,
            mode,
            strategy,
            weights,
            llm_k,
            llm_budget_s,
            rewriter,
            retrieval,
            answer_style or self.settings.answer_style,
            model,
        )
        if conversation_id is None:
            yield (yield from asked)
            return
        self.history.add_message(conversation_id, "user", question)
        try:
            answer = yield from asked
        except GeneratorExit:  # the reader went away (a closed tab, a page change, a client timeout)
            self._not_answered(conversation_id, INTERRUPTED)
            raise
        except Exception as exc:
            self._not_answered(conversation_id, f"Not answered: {exc}")
            raise
        self.history.add_message(conversation_id, "assistant", answer.text, answer.details())
        yield answer

    def _not_answered(self, conversation_id: int, why: str) -> None:
        """The question stays stored; its answer says why there is none, so no reader takes the question for one
        still being answered."""
        details = MessageDetails(
            citations=[], trace_id=None, answered=False, standalone_question=None, interrupted=True
        )
        self.history.add_message(conversation_id, "assistant", why, details)

    def _answer(
        self,
        question: str,
        corpus: str,
        corpus_id: int,
        earlier: list[Turn],
        k: int | None,
        top_n: int | None,
        mode: str | None,
        strategy: str | None,
        weights: dict[str, float] | None,
        llm_k: int | None,
        llm_budget_s: float | None,
        rewriter: Rewriter | None,
        retrieval: str | None,
        answer_style: str,
        model: ModelChoice | None,
    ) -> collections.abc.Generator[Status | Token, None, Answer]:
        """``ask_stream``'s work, its events yielded and its answer returned (the caller stores and yields it)."""
        timings: dict[str, float] = {}
        clock = time.perf_counter()
        followup = FollowUp(question, question, "as asked", "first question")
        if earlier:
            yield Status("Reading the conversation…")
            followup = within_question_limit(self.settings, (rewriter or self._read_in_conversation)(question, earlier))
            timings["rewrite"] = _elapsed_ms(clock)
            logger.info(
                "Question %r read as %r (%s: %s)",
                question[:80],
                followup.standalone[:120],
                followup.method,
                followup.reason,
            )
        standalone = followup.standalone
        yield Status("Searching for " + " and ".join(f"“{text}”" for text in followup.searches) + "…")
        clock = time.perf_counter()
        candidates = fuse([self.search(text, corpus, k, retrieval) for text in followup.searches])
        timings["retrieve"] = _elapsed_ms(clock)

        supported = bool(candidates) and max(c.dense for c in candidates) >= self.settings.answer_min_similarity
        # Nothing close to the question: skip the LLM's scoring; the trace still records the retrieval order.
        budget = question_budget(self.settings, llm_budget_s) or 0  # 0: none, as reranker() takes it
        reranker = self.reranker(mode, strategy, weights, llm_k, budget) if supported else self.reranker("none")
        yield Status(
            f"Reranking {len(candidates)} passages ({reranker.mode}"
            + (f", {reranker.strategy}" if reranker.strategy else "")
            + ")…"
        )
        clock = time.perf_counter()
        reranked = reranker.rerank(standalone, candidates)
        timings["rerank"] = _elapsed_ms(clock)
        trace = reranked.trace
        trace_id = self.history.save_trace(corpus_id, trace)

        passages = reranked.candidates[: top_n or self.settings.answer_top_n]
        answer = Answer(
            question,
            corpus,
            CANNOT_ANSWER,
            answered=False,
            standalone_question=standalone if followup.rewritten else None,
            followup=followup,
            rerank=trace,
            trace_id=trace_id,
            timings_ms=timings,
        )
        if not supported:
            # Nothing in the corpus is close to the question: say so rather than let the model guess.
            yield Token(CANNOT_ANSWER)
            return answer
        if model is not None and not self._answering_built(model):  # a user's local model, for the first time here
            yield Status(f"Loading {model.describe(self.settings)}…")
        answering = self._answering_with(model)
        style = choose_style(
            answer_style, answering.generator.llm.parameters, self.settings.answer_generative_min_parameters
        )
        scorer = self.quote_scorer(model=model)
        quotes = None  # scored once per question: the written answer's check and the quote read the same scores
        if style == "generative":
            quotes = yield from self._write(standalone, passages, answer, answering.generator, scorer)
        if style == "extractive" or (answer_style == "auto" and not answer.verified):
            yield Status(f"Quoting the sentence that answers it from {len(passages)} passages…")
            if quotes is None:
                clock = time.perf_counter()
                quotes = scorer.score(standalone, passages)
                timings["quote"] = _elapsed_ms(clock)
            if quotes:
                settings = self.settings
                quoted = quote_answer(
                    standalone, quotes, passages, settings.answer_quote_sentences, settings.answer_quote_within
                )
                if style == "generative" and answer.answered:
                    answer.model_summary = answer.text  # what the model wrote, shown below the quote as its summary
                else:
                    yield Token(quoted.text)
                answer.text, answer.citations, answer.style = quoted.text, quoted.citations, "extractive"
                answer.answered, answer.unsupported = True, []
                # A quote is its passage's own words. It is verified where it confirms a yes-or-no question, or very
                # likely answers another (the scorer's chance, calibrated on CMU WikiQA): an unconfirmed quote never
                # says yes or no.
                answer.addresses_question = quoted.confirmed or quoted.chance >= settings.answer_quote_addresses
                answer.verified = quoted.confirmed or (
                    quoted.chance >= settings.answer_quote_verified and not asks_yes_or_no(standalone)
                )
        return answer

    def _write(
        self, question: str, passages: list[Candidate], answer: Answer, generator: Generator, scorer: QuoteScorer
    ) -> collections.abc.Generator[Status | Token, None, list[Quote] | None]:
        """The model writes the answer (streamed), which is then checked: grounded in what it cites, and about the
        question (the quote scorer's chance for the sentences that support it). Returns the scored sentences (None
        where the answer cites nothing, so nothing was scored)."""
        timings = answer.timings_ms
        yield Status(f"Writing the answer from {len(passages)} passages…")
        clock = time.perf_counter()
        pieces = []
        # The prompt holds each passage's sentences closest to the question; citations keep the whole passages.
        focused = focus_passages(question, passages, self.embedder, self.settings.answer_passage_sentences)
        with closing(generator.stream(question, focused)) as written:  # closed at once if the reader goes
            for piece in written:
                pieces.append(piece)
                yield Token(piece)
        grounded = finish("".join(pieces), passages, self.settings.answer_max_sentences)
        timings["generate"] = _elapsed_ms(clock)
        answer.text, answer.answered, answer.style = grounded.text, grounded.answered, "generative"
        if not grounded.answered:
            return None
        clock = time.perf_counter()
        evidence = find_evidence(grounded.text, {c.number: c.text for c in grounded.citations}, self.embedder)
        answer.citations = [replace(c, evidence=evidence.spans.get(c.number, [])) for c in grounded.citations]
        quotes = scorer.score(question, passages)
        timings["evidence"] = _elapsed_ms(clock)
        chance = support_chance(answer.citations, passages, quotes)
        answer.addresses_question = chance >= self.settings.answer_quote_addresses
        answer.verified = evidence.verified and answer.addresses_question
        answer.unsupported = evidence.unsupported
        return quotes

    def _read_in_conversation(self, question: str, earlier: list[Turn]) -> FollowUp:
        llm = self.generator.llm if self.settings.followup_llm_rewrite else None
        return standalone_question(question, earlier, llm)

    def turns(self, corpus: str, conversation_id: int, user: User = LOCAL_ADMIN) -> list[Turn]:
        """A stored conversation's exchanges so far: each question, its answer and the titles the answer cited."""
        return turns(
            (m.role, m.content, cited_titles(m.details.citations) if m.details else ())
            for m in self.messages(corpus, conversation_id, user)
            if not (m.details and m.details.interrupted)  # "not answered" says nothing a follow-up can point back to
        )

    # ------------------------------------------------------------------------------------------ history
    # Lookups by id take the corpus the caller is in (and the user, for conversations: each is its owner's), and
    # find nothing of another corpus. ``user`` is LOCAL_ADMIN for the CLI and with auth off; the API and the app
    # pass the user who is asking.

    def start_conversation(self, corpus: str, title: str, user: User = LOCAL_ADMIN) -> int:
        return self.history.start_conversation(self.store.corpus(corpus).id, check_text(title, "The title"), user.id)

    def conversations(self, corpus: str, user: User = LOCAL_ADMIN) -> list[Conversation]:
        """The corpus's conversations the user may see (their own), newest first."""
        return self.history.conversations(self.store.corpus(corpus).id, user)

    def conversation(self, corpus: str, conversation_id: int, user: User = LOCAL_ADMIN) -> Conversation:
        """A conversation of the corpus that the user may see; raises ConversationNotFound otherwise."""
        found = self.history.conversation(self.store.corpus(corpus).id, conversation_id, user)
        if found is None:
            raise ConversationNotFound(conversation_id, corpus)
        return found

    def messages(self, corpus: str, conversation_id: int, user: User = LOCAL_ADMIN) -> list[StoredMessage]:
        """A conversation's messages in order; raises ConversationNotFound as ``conversation`` does."""
        found = self.history.messages(self.store.corpus(corpus).id, conversation_id, user)
        if found is None:
            raise ConversationNotFound(conversation_id, corpus)
        return found

    def traces(self, corpus: str, limit: int = 50) -> list[StoredTrace]:
        """Past rerank traces of a corpus, newest first (the inspector's list of past queries)."""
        return self.history.traces(self.store.corpus(corpus).id, limit)

    def trace(self, corpus: str, trace_id: int) -> StoredTrace | None:
        """A trace of the corpus; None for an id that is not one."""
        return self.history.trace(self.store.corpus(corpus).id, trace_id)

    def test_model_connection(self, base_url: str, model: str, api_key: str | None = None) -> ServerCapabilities:
        """What the OpenAI-compatible server at ``base_url`` (ending in /v1) gives of what Sift uses, before the
        settings name it: chat, streaming, log-probabilities (the logit judge), prompt echo (query likelihood), token
        counts, probed with one-token requests. A server Sift cannot use (unreachable, refusing the key, not serving
        ``model``) comes back with its ``error`` in words, not as an exception.

        >>> Sift().test_model_connection("http://127.0.0.1:8000/v1", "smollm2").echo  # doctest: +SKIP
        False
        """
        # No retries: a probe reports at once; a closed port is the answer, not a reason to wait.
        lm = ServerLM(base_url, model, api_key or None, max_retries=0)
        try:
            return lm.capabilities()
        finally:
            lm.client.close()

    def passage_texts(self, corpus: str, chunk_ids: list[int]) -> dict[int, str]:
        """Passage text by chunk id, for the corpus's passages among them (a trace records ids; the inspector shows
        the text on selection)."""
        return {
            chunk_id: p.text for chunk_id, p in self.store.passages(self.store.corpus(corpus).id, chunk_ids).items()
        }


def _as_turns(history: list[Turn] | list[Message]) -> list[Turn]:
    """Earlier turns as given: ``Turn``s already, or the chat's user/assistant messages (which name no citations)."""
    if history and isinstance(history[0], dict):
        return turns((m["role"], m["content"], ()) for m in history)
    return list(history)


def cited_titles(citations: list[Citation]) -> tuple[str, ...]:
    """What an answer cited, by title; a document without one by its file name, as a user would say it
    ("lighthouse-keepers-daily-life.txt" -> "lighthouse keepers daily life")."""
    return tuple(dict.fromkeys(c.title or Path(c.source).stem.replace("-", " ").replace("_", " ") for c in citations))


def _elapsed_ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 1)
