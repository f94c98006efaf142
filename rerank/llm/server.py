"""The language model behind any OpenAI-compatible server (vLLM, llama.cpp server, ...), through the ``openai`` client.

- ``chat`` / ``stream``: chat completions at temperature 0 (streamed for ``stream``).
- ``judge``: chat completions with ``max_tokens=1, logprobs=True, top_logprobs=20``; the level probabilities are read
  from the top log-probabilities. A level the server's tokenizer writes as two tokens ("10" on digit-splitting
  tokenizers) cannot be read this way and gets no mass. No log-probabilities: nan, with a note saying so (the
  reranker falls back to the first-stage order, and its trace says why).
- ``query_likelihood``: completions with ``echo=True, logprobs=1`` return the prompt tokens' log-probabilities; the
  query's tokens are those at or after the query's character offset. Checked once first (``echo_problem``): where
  the server gives no echo, or one that disagrees with its own generation (llama-cpp-python's), nan with a note
  saying so, and no request.
- ``capabilities``: one probe of which of these the server gives (README: what vLLM, llama.cpp and Ollama give).
- ``generate``: chat completions at temperature 0.

Requests for different passages are sent concurrently; the server batches them (and vLLM caches the shared prefix).
Token counts come from each response's ``usage``. The server's refusals become ``ServerError`` with its reason.

Example::

    >>> lm = ServerLM("http://127.0.0.1:8000/v1", "smollm2")                                  # doctest: +SKIP
    >>> lm.generate([[{"role": "user", "content": "Say hi"}]], max_new_tokens=4).texts        # doctest: +SKIP
    ['Hi!']
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
import openai
from openai.types import Completion
from openai.types.chat import ChatCompletion

from sift.rerank.llm.base import Generated, Message, Scored, ServerError
from sift.rerank.llm.stopping import AnswerStop

logger = logging.getLogger(__name__)

# Why a score could not be read, as the rerank trace says it (sift.rerank.reranker)
NO_LOGPROBS = "the server gives no log-probabilities"
NO_ECHO = "the server gives no log-probabilities of the prompt (echo)"
BAD_ECHO = (
    "the server's log-probabilities of the prompt (echo) are not its model's: it generated {token!r} at "
    "{generated:.2f} and gives it {echoed:.2f} when echoed"
)
USE_JUDGE = "the relevance method 'judge' reads the chat's log-probabilities instead"
ECHO_TOLERANCE = 0.5  # nats: far above the noise of batching or half precision, far below a token's shift
TOP = 20  # top log-probabilities asked for: the most OpenAI's API allows; the score levels must be among them
PROBE = [{"role": "user", "content": "Say hi."}]
PROBE_TEXT = "The sky is"  # continued by a common word whatever the model


@dataclass(frozen=True)
class ServerCapabilities:
    """What an OpenAI-compatible server gives of what Sift uses, found by probing it (``ServerLM.capabilities``).

    ``chat``: chat completions (answers, the generative strategy); ``stream``: streamed chat (answers as they are
    written); ``logprobs``: chat ``top_logprobs`` (the logit judge); ``echo``: completions with ``echo`` and the
    prompt's log-probabilities (query likelihood); ``usage``: token counts. Without ``logprobs`` or ``echo`` the
    reranker's LLM scores fall back to the first-stage order, and its trace says so. ``models``: what the server
    lists; ``error``: why Sift cannot use it, in words (None: it can); ``notes``: what a feature's probe met instead
    (the server's refusal, an echo that is not the model's).

    >>> ServerCapabilities("http://127.0.0.1:9/v1", "smollm2", error="Cannot reach http://127.0.0.1:9/v1").chat
    False
    """

    base_url: str
    model: str
    models: tuple[str, ...] = ()
    chat: bool = False
    stream: bool = False
    logprobs: bool = False
    echo: bool = False
    usage: bool = False
    error: str | None = None
    notes: tuple[str, ...] = ()


@dataclass
class ServerLM:
    """A model named ``name`` on the server at ``base_url`` (ending in ``/v1``); one client, reused for every call."""

    base_url: str
    name: str
    api_key: str | None = field(default=None, repr=False)  # never in a log line or a traceback
    timeout_s: float = 120.0
    max_retries: int = 2  # openai's default: a busy server's 429/503 is retried with backoff
    concurrency: int = 8  # requests in flight at once for the passages of one call
    client: openai.OpenAI = field(init=False, repr=False)

    def __post_init__(self):
        # The client insists on a key; servers started without one accept any.
        self.client = openai.OpenAI(
            base_url=self.base_url,
            api_key=self.api_key or "not-needed",
            timeout=self.timeout_s,
            max_retries=self.max_retries,
        )

    parameters = None  # a server does not say how large its model is

    # ------------------------------------------------------------------------------------------ chat

    def chat(self, messages: list[Message], max_new_tokens: int = 256) -> str:
        return self._chat(messages, max_tokens=max_new_tokens).choices[0].message.content or ""

    def stream(self, messages: list[Message], max_new_tokens: int = 256, max_sentences: int = 0) -> Iterator[str]:
        stop, written = AnswerStop(max_sentences), ""
        try:
            with self.client.chat.completions.create(
                model=self.name, messages=messages, max_tokens=max_new_tokens, temperature=0, stream=True
            ) as chunks:
                for chunk in chunks:
                    if chunk.choices and chunk.choices[0].delta.content:
                        yield chunk.choices[0].delta.content
                        written += chunk.choices[0].delta.content
                        if stop.reached(written):
                            break  # leaving the block closes the stream: the server stops generating
        except openai.APIError as exc:
            raise self._error(exc) from exc

    # ------------------------------------------------------------------------------------------ scoring

    def judge(
        self,
        system: str,
        user: Callable[[str, str], str],
        passages: list[str],
        questions: list[tuple[str, str]],
        levels: list[list[str]],
    ) -> Scored:
        conversations = [
            [{"role": "system", "content": system}, {"role": "user", "content": user(p, q)}]
            for p in passages
            for q, _ in questions
        ]
        answers = self._all(lambda c: self._chat(c, max_tokens=1, logprobs=True, top_logprobs=TOP), conversations)
        n_lv = max(len(lv) for lv in levels)
        probs = np.full((len(passages), len(questions), n_lv), np.nan)
        given = False  # whether the server gave any log-probabilities at all
        for k, answer in enumerate(answers):
            i, q = divmod(k, len(questions))
            top = _first_top_logprobs(answer)
            given = given or bool(top)
            mass = np.array([math.exp(top[lv]) if lv in top else 0.0 for lv in levels[q]])
            if mass.sum() > 0:
                probs[i, q, : len(mass)] = mass / mass.sum()
        return Scored(probs, _tokens(answers), "" if given or not answers else NO_LOGPROBS)

    def query_likelihood(self, head: str, passages: list[str], tail: str, query: str) -> Scored:
        prompts = [head + p + tail for p in passages]
        target = " " + query.strip()

        out = np.full(len(passages), np.nan)
        if self.echo_problem:  # nothing sent: the numbers would be missing or wrong
            return Scored(out, 0, f"{self.echo_problem}: query likelihood cannot be read ({USE_JUDGE})")
        answers = self._all(lambda prompt: self._echo(prompt + target), prompts)
        for i, (prompt, answer) in enumerate(zip(prompts, answers, strict=True)):
            if span := _prompt_logprobs(answer, len(prompt), len(prompt) + len(target)):
                out[i] = float(np.mean(span))
        return Scored(out, _tokens(answers))

    def generate(
        self, conversations: list[list[Message]], max_new_tokens: int, batch_size: int | None = None
    ) -> Generated:
        # batch_size is the local model's concern: the server batches concurrent requests itself.
        answers = self._all(lambda c: self._chat(c, max_tokens=max_new_tokens), conversations)
        return Generated([a.choices[0].message.content or "" for a in answers], _tokens(answers))

    # ------------------------------------------------------------------------------------------ probing

    def capabilities(self) -> ServerCapabilities:
        """Probe the server once with one-token requests for each feature Sift uses. A server that cannot be used
        (unreachable, refusing, not serving this model) is the answer's ``error``, not an exception."""
        found = ServerCapabilities(self.base_url, self.name)
        try:
            models = tuple(m.id for m in self.client.models.list())
        except openai.NotFoundError:
            models = ()  # a server without the list: the chat request below tells whether the model is there
        except openai.APIError as exc:
            return replace(found, error=str(self._error(exc)))
        found = replace(found, models=models)
        # Checked here because some servers (llama.cpp's) answer any model name with the one model they have.
        # Ollama lists "llama3:latest" and serves it as "llama3" too.
        if models and self.name not in models and f"{self.name}:latest" not in models:
            return replace(found, error=f"{self.base_url} serves {', '.join(models)}, not {self.name}.")
        try:
            answer = self._chat(PROBE, max_tokens=1)
        except ServerError as exc:
            return replace(found, error=str(exc))
        notes: list[str] = []

        def works(feature: str, probe: Callable[[], bool]) -> bool:
            try:
                return probe()
            except ServerError as exc:
                notes.append(f"{feature}: {exc}")
                return False

        stream = works("stream", self._streams)
        logprobs = works(
            "logprobs",
            lambda: bool(_first_top_logprobs(self._chat(PROBE, max_tokens=1, logprobs=True, top_logprobs=TOP))),
        )
        try:
            echo_problem = self._check_echo()
        except ServerError as exc:
            echo_problem = str(exc)
        if echo_problem:
            notes.append(f"echo: {echo_problem}")
        usage = answer.usage is not None and answer.usage.total_tokens > 0
        return replace(
            found, chat=True, stream=stream, logprobs=logprobs, echo=not echo_problem, usage=usage, notes=tuple(notes)
        )

    @cached_property
    def echo_problem(self) -> str:
        """Why the prompt's log-probabilities (echo) cannot be used here, "" where they can; checked once."""
        return self._check_echo()

    def _check_echo(self) -> str:
        """The prompt's log-probabilities must be there, and be the model's: the token the server generates after
        PROBE_TEXT, echoed back in a prompt, must get the log-probability it was generated with. llama-cpp-python's
        server gives each prompt token the probability of the position after it (abetlen/llama-cpp-python#1983)."""
        plain = self._call(
            self.client.completions.create, model=self.name, prompt=PROBE_TEXT, max_tokens=1, temperature=0, logprobs=1
        ).choices
        word = plain[0].text if plain else ""
        generated = (plain[0].logprobs.token_logprobs or []) if plain and plain[0].logprobs else []
        echoed = self._echo(PROBE_TEXT + word)
        if not _prompt_logprobs(echoed, 0, len(PROBE_TEXT) + len(word)):
            return NO_ECHO
        again = _prompt_logprobs(echoed, len(PROBE_TEXT), len(PROBE_TEXT) + len(word))
        # Nothing to compare with (a server that gives no log-probabilities when it generates): taken as given.
        if again and generated and generated[0] is not None and abs(sum(again) - generated[0]) > ECHO_TOLERANCE:
            return BAD_ECHO.format(echoed=sum(again), generated=generated[0], token=word)
        return ""

    def _streams(self) -> bool:
        try:
            with self.client.chat.completions.create(
                model=self.name, messages=PROBE, max_tokens=1, temperature=0, stream=True
            ) as chunks:
                return any(chunk.choices for chunk in chunks)
        except openai.APIError as exc:
            raise self._error(exc) from exc

    # ------------------------------------------------------------------------------------------ requests

    def _chat(self, messages: list[Message], **options) -> ChatCompletion:
        return self._call(
            self.client.chat.completions.create, model=self.name, messages=messages, temperature=0, **options
        )

    def _echo(self, prompt: str) -> Completion:
        """The prompt's own tokens with their log-probabilities (and one generated token, which is not read)."""
        return self._call(
            self.client.completions.create,
            model=self.name,
            prompt=prompt,
            max_tokens=1,
            temperature=0,
            echo=True,
            logprobs=1,
        )

    def _all(self, request: Callable, items: list) -> list:
        with ThreadPoolExecutor(self.concurrency) as pool:
            return list(pool.map(request, items))

    def _call(self, create: Callable, **request):
        try:
            return create(**request)
        except openai.APIError as exc:
            raise self._error(exc) from exc

    def _error(self, exc: openai.APIError) -> ServerError:
        """One readable line: who answered what, in the server's own words."""
        logger.debug("Request to %s failed", self.base_url, exc_info=exc)
        if isinstance(exc, openai.APIStatusError):
            return ServerError(f"{self.base_url} answered {exc.status_code}: {_reason(exc)[:300]}")
        if isinstance(exc, openai.APIConnectionError):
            return ServerError(f"Cannot reach {self.base_url}: {exc.__cause__ or exc.message}")
        return ServerError(f"{self.base_url} failed: {exc.message}")


def _reason(exc: openai.APIStatusError) -> str:
    match exc.body:
        case {"message": str(message)}:  # vLLM's error body, or the inside of llama.cpp's "error" object
            return message
        case str(text) if text:  # not JSON: the body as sent
            return text
    return exc.response.reason_phrase


def _prompt_logprobs(answer: Completion, start: int, end: int) -> list[float]:
    """The log-probabilities of the echoed prompt's tokens that start in [start, end): [] without an echo."""
    logprobs = answer.choices[0].logprobs if answer.choices else None
    if logprobs is None:
        return []
    offsets, values = logprobs.text_offset or [], logprobs.token_logprobs or []
    return [v for o, v in zip(offsets, values, strict=False) if start <= o < end and v is not None]


def _tokens(answers: list) -> int:
    return sum(a.usage.total_tokens for a in answers if a.usage is not None)


def _first_top_logprobs(answer: ChatCompletion) -> dict[str, float]:
    """{stripped token text: log-probability} at the first generated position, {} when the server gives none."""
    logprobs = answer.choices[0].logprobs if answer.choices else None
    if logprobs is None or not logprobs.content:
        return {}
    top: dict[str, float] = {}
    for entry in logprobs.content[0].top_logprobs or []:
        key = entry.token.strip()
        top[key] = float(np.logaddexp(top.get(key, -math.inf), entry.logprob))  # "5" and " 5" both count
    return top
