"""The language model behind any OpenAI-compatible server (vLLM, llama.cpp server, ...), through the ``openai`` client.

- ``chat`` / ``stream``: chat completions at temperature 0 (streamed for ``stream``).
- ``judge``: chat completions with ``max_tokens=1, logprobs=True, top_logprobs=20``; the level probabilities are read
  from the top log-probabilities. A level the server's tokenizer writes as two tokens ("10" on digit-splitting
  tokenizers) cannot be read this way and gets no mass. No log-probabilities: nan (the reranker falls back).
- ``query_likelihood``: completions with ``echo=True, logprobs=1`` return the prompt tokens' log-probabilities; the
  query's tokens are those at or after the query's character offset.
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
from dataclasses import dataclass, field

import numpy as np
import openai
from openai.types.chat import ChatCompletion

from sift.rerank.llm.base import Generated, Message, Scored, ServerError
from sift.rerank.llm.stopping import AnswerStop

logger = logging.getLogger(__name__)


@dataclass
class ServerLM:
    """A model named ``name`` on the server at ``base_url`` (ending in ``/v1``); one client, reused for every call."""

    base_url: str
    name: str
    api_key: str | None = None
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
        answers = self._all(lambda c: self._chat(c, max_tokens=1, logprobs=True, top_logprobs=20), conversations)
        n_lv = max(len(lv) for lv in levels)
        probs = np.full((len(passages), len(questions), n_lv), np.nan)
        for k, answer in enumerate(answers):
            i, q = divmod(k, len(questions))
            top = _first_top_logprobs(answer)
            mass = np.array([math.exp(top[lv]) if lv in top else 0.0 for lv in levels[q]])
            if mass.sum() > 0:
                probs[i, q, : len(mass)] = mass / mass.sum()
        return Scored(probs, _tokens(answers))

    def query_likelihood(self, head: str, passages: list[str], tail: str, query: str) -> Scored:
        prompts = [head + p + tail for p in passages]
        target = " " + query.strip()

        def echo(prompt: str):
            return self._call(
                self.client.completions.create,
                model=self.name,
                prompt=prompt + target,
                max_tokens=1,
                temperature=0,
                echo=True,
                logprobs=1,
            )

        answers = self._all(echo, prompts)
        out = np.full(len(passages), np.nan)
        for i, (prompt, answer) in enumerate(zip(prompts, answers, strict=False)):
            logprobs = answer.choices[0].logprobs
            if logprobs is None:
                continue
            span = [
                v
                for o, v in zip(logprobs.text_offset or [], logprobs.token_logprobs or [], strict=False)
                if len(prompt) <= o < len(prompt) + len(target) and v is not None
            ]
            if span:
                out[i] = float(np.mean(span))
        return Scored(out, _tokens(answers))

    def generate(
        self, conversations: list[list[Message]], max_new_tokens: int, batch_size: int | None = None
    ) -> Generated:
        # batch_size is the local model's concern: the server batches concurrent requests itself.
        answers = self._all(lambda c: self._chat(c, max_tokens=max_new_tokens), conversations)
        return Generated([a.choices[0].message.content or "" for a in answers], _tokens(answers))

    # ------------------------------------------------------------------------------------------ requests

    def _chat(self, messages: list[Message], **options) -> ChatCompletion:
        return self._call(
            self.client.chat.completions.create, model=self.name, messages=messages, temperature=0, **options
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
