"""The model that writes a user's answers: the configured one (the settings', by default the packaged SmolLM2-135M),
a local Hugging Face folder or GGUF file on the server's disk, or an OpenAI-compatible server. Each user's choice is
kept in the app's ``model_choices`` table (migration 0007; with auth off, one row for the local user), so it
survives a reload and a new login, and one user's choice never changes another's.

The reranker stays on the configured model whatever a user picks: only the answer (the generator and the quote
scorer, which share its model) follows the choice.

A server's API key has to be sent to the server, so unlike passwords and Sift's own keys it cannot be kept as a
hash: it is stored as given, never logged, and shown back only masked (``masked_key``).

Example::

    >>> choice = ModelChoice("server", base_url="http://gpu-box:8000/v1", model="qwen", api_key="sk-abcdef123456")
    >>> choice.masked_key, choice
    ('sk-…3456', ModelChoice(kind='server', path='', base_url='http://gpu-box:8000/v1', model='qwen'))
    >>> choice.describe(Settings())
    'qwen at http://gpu-box:8000/v1'
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Literal, get_args

from sqlalchemy import DateTime, Engine, ForeignKey, String, Text, delete, select
from sqlalchemy.orm import Mapped, mapped_column, sessionmaker

from sift.app.config import PACKAGED, Settings
from sift.app.history import HistoryBase
from sift.app.models import local_model_files
from sift.ingestion.schema import utcnow
from sift.ingestion.store import check_text
from sift.rerank.llm import ServerCapabilities

if TYPE_CHECKING:
    from sift.app.accounts import User

logger = logging.getLogger(__name__)

ModelKind = Literal["configured", "local", "server"]
MODEL_KINDS: tuple[ModelKind, ...] = get_args(ModelKind)


class ModelChoiceRow(HistoryBase):
    """A user's answering model (migration 0007); ``user_id`` NULL is the local user of auth off."""

    __tablename__ = "model_choices"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    path: Mapped[str] = mapped_column(Text, default="")
    base_url: Mapped[str] = mapped_column(Text, default="")
    model: Mapped[str] = mapped_column(String(300), default="")
    api_key: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


@dataclass(frozen=True)
class ModelChoice:
    """Which model writes the answers: ``configured`` (the settings'), ``local`` (``path``: a Hugging Face folder or
    a .gguf file on the server's disk) or ``server`` (``base_url`` ending in /v1, ``model``, ``api_key``). The key
    is left out of the repr, so no log line or traceback shows it."""

    kind: ModelKind = "configured"
    path: str = ""
    base_url: str = ""
    model: str = ""
    api_key: str = field(default="", repr=False)

    @property
    def masked_key(self) -> str:
        """The key as the app shows it back: its first three and last four characters, or dots for a short one.

        >>> ModelChoice("server", api_key="short").masked_key, ModelChoice().masked_key
        ('••••', '')
        """
        if not self.api_key:
            return ""
        return f"{self.api_key[:3]}…{self.api_key[-4:]}" if len(self.api_key) >= 12 else "••••"

    def describe(self, settings: Settings) -> str:
        """The model in words (never its key), as the app and the log name it.

        >>> ModelChoice().describe(Settings(llm_base_url=None, llm_model="packaged"))
        'SmolLM2-135M-Instruct (packaged)'
        """
        match self.kind:
            case "local":
                return f"{self.path} (local)"
            case "server":
                return f"{self.model} at {self.base_url}"
        if settings.llm_base_url:
            return f"{settings.llm_api_model} at {settings.llm_base_url}"
        if settings.llm_model == PACKAGED:
            return "SmolLM2-135M-Instruct (packaged)"
        return settings.llm_model + (f"/{settings.llm_gguf_file}" if settings.llm_gguf_file else "") + " (local)"

    def checked(self) -> ModelChoice:
        """The choice with its fields trimmed, or ValueError (``ModelNotFound`` for a local path with no model)
        saying what is wrong: a local path must hold a model, a server needs an http(s) URL and a model name.

        >>> ModelChoice("server", base_url="gpu-box:8000", model="qwen").checked()
        Traceback (most recent call last):
        ValueError: The server's base URL starts with http:// or https:// (e.g. http://gpu-box:8000/v1).
        """
        if self.kind not in MODEL_KINDS:
            raise ValueError(f"No model kind {self.kind!r}: choose from {', '.join(MODEL_KINDS)}.")
        if self.kind == "configured":
            return ModelChoice()
        if self.kind == "local":
            path = check_text(self.path, "The model path").strip()
            local_model_files(path)  # raises, in words, for a path that is not there or holds no model
            return ModelChoice("local", path=path)
        base_url = check_text(self.base_url, "The base URL").strip().rstrip("/")
        model = check_text(self.model, "The model name").strip()
        if not base_url.startswith(("http://", "https://")):
            raise ValueError("The server's base URL starts with http:// or https:// (e.g. http://gpu-box:8000/v1).")
        if not model:
            raise ValueError("Name the model the server serves (e.g. Qwen/Qwen2.5-7B-Instruct).")
        return ModelChoice("server", base_url=base_url, model=model, api_key=self.api_key.strip())

    def settings_for(self, settings: Settings) -> Settings:
        """``settings`` with this model as their LLM (``sift.app.models.language_model`` builds it from them)."""
        if self.kind == "local":
            folder, gguf_file = local_model_files(self.path)
            update = {"llm_model": str(folder), "llm_gguf_file": gguf_file, "llm_base_url": None}
        elif self.kind == "server":
            update = {"llm_base_url": self.base_url, "llm_api_model": self.model, "llm_api_key": self.api_key or None}
        else:
            return settings
        return settings.model_copy(update=update)


class ModelChoices:
    """Each user's answering model, in the app's tables beside the accounts'."""

    def __init__(self, engine: Engine):
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def get(self, user: User) -> ModelChoice:
        """The user's choice; the configured model for a user who has made none."""
        with self._sessions() as session:
            row = session.scalar(select(ModelChoiceRow).where(_of(user)).order_by(ModelChoiceRow.id.desc()).limit(1))
        if row is None:
            return ModelChoice()
        return ModelChoice(row.kind, path=row.path, base_url=row.base_url, model=row.model, api_key=row.api_key)

    def save(self, user: User, choice: ModelChoice) -> None:
        """Replace the user's choice (one row per user, written in one transaction)."""
        with self._sessions() as session:
            session.execute(delete(ModelChoiceRow).where(_of(user)))
            session.add(
                ModelChoiceRow(
                    user_id=user.id,
                    kind=choice.kind,
                    path=choice.path,
                    base_url=choice.base_url,
                    model=choice.model,
                    api_key=choice.api_key,
                )
            )
            session.commit()


def _of(user: User):
    # The local user of auth off has no row in users: its choice is the one without a user.
    return ModelChoiceRow.user_id.is_(None) if user.id is None else ModelChoiceRow.user_id == user.id


def capability_lines(found: ServerCapabilities) -> list[tuple[bool, str]]:
    """What a probed server (``Sift.test_model_connection``) gives, feature by feature, and what that means for the
    answers written with it: (works, the line in words). A server Sift cannot use is one line saying why.

    >>> capability_lines(ServerCapabilities("http://127.0.0.1:9/v1", "qwen", error="Cannot reach it"))
    [(False, 'Sift cannot use this server: Cannot reach it')]
    >>> [ok for ok, _ in capability_lines(ServerCapabilities("u", "qwen", chat=True, stream=True, usage=True))]
    [True, True, True, False, False, True]
    """
    if found.error:
        return [(False, f"Sift cannot use this server: {found.error}")]
    served = f"Serves {', '.join(found.models)}." if found.models else "Lists no models (it answered the chat probe)."
    lines = [
        (True, served),
        (found.chat, "Chat: " + ("yes, it can write answers." if found.chat else "no: it cannot write answers.")),
        (
            found.stream,
            "Streaming: yes, a written answer appears as the model writes it."
            if found.stream
            else "Streaming: no. Sift streams written answers, so the generative style fails with it; quotes work.",
        ),
        (
            found.logprobs,
            "Log-probabilities: yes (the reranker's logit judge could read them if it were Sift's configured model)."
            if found.logprobs
            else "Log-probabilities: no (the reranker's logit judge could not score with it; here the configured "
            "model reranks, so answers are not affected).",
        ),
        (
            found.echo,
            "Prompt log-probabilities (echo): yes, the quote scorer reads its likelihood of the question."
            if found.echo
            else "Prompt log-probabilities (echo): no, so the quote scorer's likelihood signal is unavailable (it "
            "ranks sentences by the other signals) and so would be the reranker's query likelihood.",
        ),
        (
            found.usage,
            "Token counts: yes, timings and traces count its tokens."
            if found.usage
            else "Token counts: no, its tokens are counted as 0.",
        ),
    ]
    return lines + [(False, f"Note: {note}") for note in found.notes]
