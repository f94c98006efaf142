"""The OpenAI-compatible server backend (vLLM, llama.cpp server, ...): the same three operations as ``LocalLM``.

- ``judge``: ``/chat/completions`` with ``max_tokens=1, logprobs=true, top_logprobs=20``; the level probabilities
  are read from the top log-probabilities. A level the server's tokenizer writes as two tokens ("10" on
  digit-splitting tokenizers) cannot be read this way and gets no mass. No log-probabilities: nan (fallback).
- ``query_likelihood``: ``/completions`` with ``echo=true, logprobs=1`` returns the prompt tokens' log-probabilities;
  the query's tokens are those at or after the query's character offset.
- ``generate``: ``/chat/completions`` at temperature 0.

Requests for different passages are sent concurrently; the server batches them (and vLLM caches the shared prefix).

Example::

    >>> lm = ServerLM(OpenAICompatibleLLM("http://127.0.0.1:8000/v1", "smollm2"))   # doctest: +SKIP
    >>> lm.generate([[{"role": "user", "content": "Say hi"}]], max_new_tokens=4)      # doctest: +SKIP
    ['Hi!']
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np


@dataclass
class ServerLM:
    client: object  # anything with .post(path, payload) -> dict and .name, e.g. app.models.OpenAICompatibleLLM
    concurrency: int = 8
    tokens_processed: int = 0

    @property
    def name(self) -> str:
        return self.client.name

    def _post_all(self, path: str, payloads: list[dict]) -> list[dict]:
        with ThreadPoolExecutor(self.concurrency) as pool:
            answers = list(pool.map(lambda p: self.client.post(path, p), payloads))
        for a in answers:
            self.tokens_processed += int((a.get("usage") or {}).get("total_tokens", 0))
        return answers

    def judge(self, system: str, user: Callable[[str, str], str], passages: list[str],
              questions: list[tuple[str, str]], levels: list[list[str]]) -> np.ndarray:
        payloads = [{"messages": [{"role": "system", "content": system},
                                  {"role": "user", "content": user(p, q)}],
                     "max_tokens": 1, "temperature": 0, "logprobs": True, "top_logprobs": 20}
                    for p in passages for q, _ in questions]
        answers = self._post_all("/chat/completions", payloads)
        n_lv = max(len(lv) for lv in levels)
        probs = np.full((len(passages), len(questions), n_lv), np.nan)
        for k, answer in enumerate(answers):
            i, q = divmod(k, len(questions))
            top = _first_top_logprobs(answer)
            mass = np.array([math.exp(top[lv]) if lv in top else 0.0 for lv in levels[q]])
            if mass.sum() > 0:
                probs[i, q, : len(mass)] = mass / mass.sum()
        return probs

    def query_likelihood(self, head: str, passages: list[str], tail: str, query: str) -> np.ndarray:
        prompts = [head + p + tail for p in passages]
        target = " " + query.strip()
        payloads = [{"prompt": pr + target, "max_tokens": 1, "temperature": 0, "echo": True, "logprobs": 1}
                    for pr in prompts]
        out = np.full(len(passages), np.nan)
        for i, (pr, answer) in enumerate(zip(prompts, self._post_all("/completions", payloads))):
            lp = (answer["choices"][0].get("logprobs") or {})
            offsets, values = lp.get("text_offset") or [], lp.get("token_logprobs") or []
            span = [v for o, v in zip(offsets, values) if o >= len(pr) and o < len(pr) + len(target) and v is not None]
            if span:
                out[i] = float(np.mean(span))
        return out

    def generate(self, conversations: list[list[dict]], max_new_tokens: int, batch_size: int | None = None
                 ) -> list[str]:
        payloads = [{"messages": c, "max_tokens": max_new_tokens, "temperature": 0} for c in conversations]
        return [a["choices"][0]["message"].get("content") or "" for a in self._post_all("/chat/completions", payloads)]


def _first_top_logprobs(answer: dict) -> dict[str, float]:
    """{stripped token text: log-probability} at the first generated position, {} when the server gives none."""
    content = ((answer.get("choices") or [{}])[0].get("logprobs") or {}).get("content") or []
    if not content:
        return {}
    top: dict[str, float] = {}
    for entry in content[0].get("top_logprobs") or []:
        key = entry["token"].strip()
        top[key] = float(np.logaddexp(top.get(key, -math.inf), entry["logprob"]))  # "5" and " 5" both count
    return top
