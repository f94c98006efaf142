"""The language model in this process (transformers): chat and streaming for the generator, and for the reranker
prefix-shared batched forward passes and batched greedy generation; plus the cached loader.

The scoring prompt of every candidate has the same shape: a *head* shared by all candidates (instructions, query),
a *middle* that differs per candidate (the passage), and a few short *tails* that differ per question asked about
that passage (one per criterion). ``LocalLM.tree`` computes the head once, expands its key/value cache to the batch,
runs the length-sorted middles, expands again per tail, and applies the LM head only where a score is read — so each
token is computed exactly once. Padding sits on the left of each segment, masked out, with positions counted only
over real tokens, so the results equal a plain forward pass of each full prompt up to floating point.

One ``LocalLM`` (one lock) per loaded model: scoring and answering take turns on it, and every call returns the
tokens it ran, so concurrent reranks and chats never mix their counts. A caller waits for its turn at most
``wait_s`` seconds (then ``ModelBusy``), and no caller holds the lock while it hands a token back: a streamed
answer is written by a thread that owns the lock and stops as soon as its reader goes away.

Example::

    >>> lm = load_local_lm("/models/smollm2", None, "cpu", "/tmp/sift-cache")                 # doctest: +SKIP
    >>> lm.chat([{"role": "user", "content": "What is the capital of France?"}], max_new_tokens=8)  # doctest: +SKIP
    'The capital of France is Paris.'
    >>> out = lm.tree("Rate: ", ["passage one", "passage two"],
    ...               [Tail(" ok?", read=(lm.token_id("1"),))])  # doctest: +SKIP
    >>> out.read_logprobs.shape                                                                   # doctest: +SKIP
    (2, 1, 1)
"""

from __future__ import annotations

import copy
import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from sift.rerank.llm.base import Generated, Message, ModelBusy, Scored
from sift.rerank.llm.precision import Precision, with_precision
from sift.rerank.llm.stopping import AnswerStop

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tail:
    """A question asked after each passage: ``text`` is context; ``target`` (if any) is text whose mean log-probability
    is measured (query likelihood); otherwise the next-token log-probabilities of ``read`` token ids are returned."""

    text: str
    target: str | None = None
    read: tuple[int, ...] = ()


@dataclass(frozen=True)
class TreeOutput:
    read_logprobs: np.ndarray  # [n_middles, n_tails, max_read] log P(read token | prompt), -inf where unused
    target_logprob: np.ndarray  # [n_middles, n_tails] mean log P(target tokens), nan where the tail has none
    tokens: int  # tokens actually run through the model (pads excluded)


@dataclass(frozen=True)
class Abandoned:
    """A transformers stopping criterion: stops a streamed generation whose reader has gone away."""

    event: threading.Event = field(default_factory=threading.Event)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs) -> torch.BoolTensor:
        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


@dataclass(frozen=True)
class WrittenTextStop:
    """A transformers stopping criterion: ``stop`` applied to the text generated after the prompt's tokens.

    transformers calls it after every token with the whole sequences so far; it answers per sequence."""

    tokenizer: object
    prompt_length: int
    stop: AnswerStop

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs) -> torch.BoolTensor:
        texts = self.tokenizer.batch_decode(input_ids[:, self.prompt_length :], skip_special_tokens=True)
        return torch.tensor([self.stop.reached(t) for t in texts], dtype=torch.bool, device=input_ids.device)


@dataclass
class LocalLM:
    """A causal LM in this process (any Hugging Face model with a KV cache; bf16 on CUDA as loaded by Sift).
    ``precision`` is what it runs at on the CPU (``sift.rerank.llm.precision``)."""

    model: object
    tokenizer: object
    name: str = "local"
    batch_size: int = 16
    precision: Precision = "fp32"
    # generate() and the tree's cache are not re-entrant on one model, and Streamlit serves sessions from several
    # threads: every use of the model holds this lock.
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # How long a call waits for the model before it gives up with ModelBusy (a 503 in the API), rather than hang.
    wait_s: float = 120.0

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def parameters(self) -> int:
        """The model's size in parameters (what ``answer_style = auto`` decides by)."""
        return sum(p.numel() for p in self.model.parameters())

    def _acquire(self) -> None:
        if not self.lock.acquire(timeout=self.wait_s):
            raise ModelBusy(f"The model is busy with other questions: no turn within {self.wait_s:g} s. Try again.")

    @contextmanager
    def _turn(self) -> Iterator[None]:
        """The model for one call that returns only when it is done (never one that yields)."""
        self._acquire()
        try:
            yield
        finally:
            self.lock.release()

    def encode(self, text: str) -> list[int]:
        # split_special_tokens: a passage containing "<|im_end|>" stays text and cannot close the turn it sits in.
        return self.tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]

    def encode_template(self, text: str) -> list[int]:
        """Tokenise prompt scaffolding that legitimately contains the chat template's special tokens."""
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def token_id(self, text: str) -> int | None:
        ids = self.encode(text)
        return ids[0] if len(ids) == 1 else None

    def chat_pieces(self, system: str, user: str, sentinel: str = "\x00PASSAGE\x00") -> tuple[str, str]:
        """Render a chat prompt whose user message contains ``sentinel`` and split it there: (head, tail)."""
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        head, tail = text.split(sentinel)
        return head, tail

    # ------------------------------------------------------------------------------------------ chat

    def chat(self, messages: list[Message], max_new_tokens: int = 256) -> str:
        return "".join(self.stream(messages, max_new_tokens))

    def stream(self, messages: list[Message], max_new_tokens: int = 256, max_sentences: int = 0) -> Iterator[str]:
        from transformers import StoppingCriteriaList, TextIteratorStreamer

        encoded = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        written = WrittenTextStop(self.tokenizer, encoded["input_ids"].shape[1], AnswerStop(max_sentences))
        abandoned = Abandoned()
        kwargs = dict(
            **{k: v.to(self.device) for k, v in encoded.items()},
            max_new_tokens=max_new_tokens,
            do_sample=False,  # greedy: the most faithful to the passages (a repetition penalty garbles names)
            stopping_criteria=StoppingCriteriaList([written, abandoned]),
            streamer=streamer,
            pad_token_id=self._pad_id,
        )
        self._acquire()
        # The writing thread owns the lock from here and releases it when generation ends, whatever the reader does:
        # a reader that stops iterating (a closed tab, a client timeout) cannot keep the model from anyone else.
        worker = threading.Thread(target=self._generate_then_release, args=(kwargs, streamer), daemon=True)
        worker.start()
        try:
            yield from streamer
        finally:
            abandoned.event.set()  # a no-op once generation has ended; else it stops at the next token

    def _generate_then_release(self, kwargs: dict, streamer) -> None:
        try:
            self.model.generate(**kwargs)
        except Exception:
            logger.exception("Streamed generation failed")
            streamer.end()  # the reader stops at what was written instead of waiting for tokens that never come
        finally:
            self.lock.release()

    # ------------------------------------------------------------------------------------------ scoring

    def judge(
        self,
        system: str,
        user: Callable[[str, str], str],
        passages: list[str],
        questions: list[tuple[str, str]],
        levels: list[list[str]],
    ) -> Scored:
        """P(answer = level) for every passage and (question, assistant prefill), renormalised over the levels.

        ``user(passage, question)`` builds the user message. Levels that are two tokens (SmolLM2 writes "10" as
        "1", "0") are read exactly: P(10) = P("1") P("0" | "1") and P(1) = P("1") (1 - P(digit | "1")), through one
        extra tail per such first token. Values: [n_passages, n_questions, max_levels], nan where unreadable.
        """
        p_sent, q_sent = "\x00P\x00", "\x00Q\x00"
        head, rest = self.chat_pieces(system, user(p_sent, q_sent), p_sent)
        between, end = rest.split(q_sent)
        tails, plans = [], []
        for (question, prefill), lv in zip(questions, levels, strict=False):
            base = between + question + end + prefill
            ids = [self.encode(x) for x in lv]
            firsts = sorted({i[0] for i in ids if len(i) == 2})
            tails.append(Tail(base, read=tuple(i[0] for i in ids)))
            ext = {}
            for f in firsts:
                seconds = tuple(i[1] for i in ids if len(i) == 2 and i[0] == f)
                ext[f] = (len(tails), seconds)
                tails.append(Tail(base + self.tokenizer.decode([f]), read=seconds))
            plans.append((len(tails) - 1 - len(firsts), ids, ext))
        out = self.tree(head, passages, tails)
        n_lv = max(len(lv) for lv in levels)
        probs = np.full((len(passages), len(questions), n_lv), np.nan, dtype=np.float64)
        for q, (t, ids, ext) in enumerate(plans):
            first = np.exp(out.read_logprobs[:, t, : len(ids)].astype(np.float64))
            p = np.zeros((len(passages), len(ids)))
            for k, tok in enumerate(ids):
                if len(tok) == 1:
                    cont = ext.get(tok[0])
                    stop = 1.0 - np.exp(out.read_logprobs[:, cont[0], : len(cont[1])]).sum(1) if cont else 1.0
                    p[:, k] = first[:, k] * stop
                elif len(tok) == 2:
                    col, seconds = ext[tok[0]]
                    p[:, k] = first[:, k] * np.exp(out.read_logprobs[:, col, seconds.index(tok[1])])
            total = p.sum(1, keepdims=True)
            probs[:, q, : len(ids)] = np.where(total > 0, p / np.where(total > 0, total, 1), np.nan)
        return Scored(probs, out.tokens)

    def query_likelihood(self, head: str, passages: list[str], tail: str, query: str) -> Scored:
        """Mean log P(query tokens | head + passage + tail) per passage (UPR-style relevance)."""
        out = self.tree(head, passages, [Tail(tail, target=" " + query.strip())])
        return Scored(out.target_logprob[:, 0].astype(np.float64), out.tokens)

    @torch.inference_mode()
    def tree(self, head: str, middles: list[str], tails: list[Tail], batch_size: int | None = None) -> TreeOutput:
        """Score every (middle, tail) pair sharing the head's and each middle's computation."""
        batch_size = batch_size or self.batch_size
        device = self.device
        head_ids = self.encode_template(head)
        mid_ids = [self.encode(m) for m in middles]
        tail_ctx = [self.encode_template(t.text) for t in tails]
        tail_tgt = [self.encode(t.target) if t.target else [] for t in tails]
        tail_ids = [c + g for c, g in zip(tail_ctx, tail_tgt, strict=False)]
        n_read = max([len(t.read) for t in tails] + [1])
        read_ids = torch.tensor([list(t.read) + [0] * (n_read - len(t.read)) for t in tails], device=device)
        read_valid = torch.tensor([[i < len(t.read) for i in range(n_read)] for t in tails], device=device)

        with self._turn():
            base = self.model.get_decoder()
            lm_head = self.model.get_output_embeddings()
            head_t = torch.tensor([head_ids], device=device)
            head_cache = base(input_ids=head_t, use_cache=True).past_key_values
            tokens = len(head_ids)

            n_mid, n_tail = len(middles), len(tails)
            read_out = np.full((n_mid, n_tail, n_read), -np.inf, dtype=np.float32)
            target_out = np.full((n_mid, n_tail), np.nan, dtype=np.float32)
            order = sorted(range(n_mid), key=lambda i: len(mid_ids[i]))  # length-sorted: little padding
            for start in range(0, n_mid, batch_size):
                idx = order[start : start + batch_size]
                read, target, used = self._tree_batch(
                    head_cache,
                    len(head_ids),
                    [mid_ids[i] for i in idx],
                    tail_ids,
                    [len(g) for g in tail_tgt],
                    lm_head,
                    base,
                    read_ids,
                    read_valid,
                )
                read_out[idx], target_out[idx] = read, target
                tokens += used
        return TreeOutput(read_out, target_out, tokens)

    def _tree_batch(self, head_cache, n_head, mids, tail_ids, tgt_lens, lm_head, base, read_ids, read_valid):
        device = self.device
        b, t = len(mids), len(tail_ids)
        cache = copy.deepcopy(head_cache)
        cache.batch_repeat_interleave(b)
        mid_t, mid_mask, mid_len = _left_pad(mids, device, self._pad_id)
        mask = torch.cat([torch.ones(b, n_head, dtype=torch.long, device=device), mid_mask], dim=1)
        pos = n_head + (mid_mask.cumsum(1) - 1).clamp(min=0)
        if mid_t.shape[1]:  # empty middles (two-turn inference asks about the query alone)
            base(input_ids=mid_t, attention_mask=mask, position_ids=pos, past_key_values=cache, use_cache=True)

        # One row per (passage, tail): passage-major, like batch_repeat_interleave lays out the cache.
        cache.batch_repeat_interleave(t)
        tail_t, tail_mask, tail_len = _left_pad(tail_ids, device, self._pad_id)
        tail_t, tail_mask = tail_t.repeat(b, 1), tail_mask.repeat(b, 1)
        full_mask = torch.cat([mask.repeat_interleave(t, 0), tail_mask], dim=1)
        offset = (n_head + torch.tensor(mid_len, device=device)).repeat_interleave(t).unsqueeze(1)
        tail_pos = offset + (tail_mask.cumsum(1) - 1).clamp(min=0)
        hidden = base(
            input_ids=tail_t, attention_mask=full_mask, position_ids=tail_pos, past_key_values=cache, use_cache=True
        ).last_hidden_state  # [b*t, L, d]

        # Next-token distribution after the last tail token (left padding puts it in the last column).
        tgt_lens_t = torch.tensor(tgt_lens, device=device).repeat(b)
        last = hidden[torch.arange(b * t, device=device), -1 - tgt_lens_t]
        logp = torch.log_softmax(lm_head(last).float(), dim=-1)
        read = logp.gather(1, read_ids.repeat(b, 1)).masked_fill(~read_valid.repeat(b, 1), -torch.inf)

        # Target spans (query likelihood): mean log P of each target token given everything before it.
        target = torch.full((b * t,), float("nan"), device=device)
        longest = max(tgt_lens)
        if longest:
            rows = (tgt_lens_t > 0).nonzero().squeeze(1)
            h = hidden[rows, -longest - 1 : -1]  # positions predicting the last `longest` tokens
            lp = torch.log_softmax(lm_head(h).float(), dim=-1)
            ids = tail_t[rows, -longest:]
            tok_lp = lp.gather(2, ids.unsqueeze(2)).squeeze(2)
            span = torch.arange(longest, device=device).unsqueeze(0) >= (longest - tgt_lens_t[rows]).unsqueeze(1)
            target[rows] = (tok_lp * span).sum(1) / span.sum(1)
        used = sum(mid_len) + b * sum(tail_len)
        return (read.view(b, t, -1).cpu().numpy(), target.view(b, t).cpu().numpy(), used)

    @property
    def _pad_id(self) -> int:
        return self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0

    # ------------------------------------------------------------------------------------------ generation

    @torch.inference_mode()
    def generate(
        self, conversations: list[list[Message]], max_new_tokens: int, batch_size: int | None = None
    ) -> Generated:
        """Greedy answers to several chats, batched and length-sorted."""
        batch_size = batch_size or self.batch_size
        prompts = [
            self.tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=False) for c in conversations
        ]
        ids = [self.encode_template(p) for p in prompts]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        texts: list[str] = [""] * len(ids)
        tokens = 0
        with self._turn():
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                input_ids, mask, lengths = _left_pad([ids[i] for i in idx], self.device, self._pad_id)
                out = self.model.generate(
                    input_ids=input_ids,
                    attention_mask=mask,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    pad_token_id=self._pad_id,
                    eos_token_id=self.tokenizer.eos_token_id,
                )
                new = out[:, input_ids.shape[1] :]
                for row, i in enumerate(idx):
                    texts[i] = self.tokenizer.decode(new[row], skip_special_tokens=True)
                tokens += sum(lengths) + int((new != self._pad_id).sum())
        return Generated(texts, tokens)


def _left_pad(seqs: list[list[int]], device, pad_id: int):
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long, device=device)
    mask = torch.zeros((len(seqs), width), dtype=torch.long, device=device)
    for row, s in enumerate(seqs):
        if s:
            ids[row, width - len(s) :] = torch.tensor(s, device=device)
            mask[row, width - len(s) :] = 1
    return ids, mask, [len(s) for s in seqs]


# ---------------------------------------------------------------------------------------------- loading


def quiet_transformers() -> None:
    """Keep the CLI's output to Sift's own lines: no weight-loading bars or tokenizer length warnings."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()


@lru_cache(maxsize=8)
def load_local_lm(
    folder: str,
    gguf_file: str | None,
    device: str,
    cache_dir: str,
    batch_size: int = 16,
    precision: Precision = "fp32",
    wait_s: float = 120.0,
) -> LocalLM:
    """The model in ``folder`` (a transformers folder, or the GGUF file ``gguf_file`` inside it), loaded once per
    process: CPU fp32 (or int8 linear layers, ``precision``; fp32 where int8 cannot run), CUDA bf16. Every batch
    size shares the one loaded model and its lock; ``wait_s`` is how long a call waits for its turn.

    A GGUF file is converted to a transformers folder under ``cache_dir`` the first time (~20 s for SmolLM2-135M).
    """
    return replace(_loaded(folder, gguf_file, device, cache_dir, precision), batch_size=batch_size, wait_s=wait_s)


@lru_cache(maxsize=2)
def _loaded(folder: str, gguf_file: str | None, device: str, cache_dir: str, precision: Precision) -> LocalLM:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    quiet_transformers()
    name = gguf_file.removesuffix(".gguf") if gguf_file else Path(folder).name
    if gguf_file:
        folder = str(_converted_gguf(Path(folder) / gguf_file, Path(cache_dir)))
    logger.info("Loading the language model %s on %s (%s asked for)", name, device, precision)
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, dtype=dtype)
    model, precision = with_precision(model.to(device).eval(), precision, device)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return LocalLM(model, tokenizer, name=name, precision=precision)


def _converted_gguf(gguf_path: Path, cache_dir: Path) -> Path:
    """A transformers folder holding the GGUF model's dequantised weights, made on first use.

    transformers dequantises a GGUF file on every load (~20 s for SmolLM2-135M); the converted folder loads in about
    a second. The folder name carries the file's size and modification time, so a changed file is converted again.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    stat = gguf_path.stat()
    target = cache_dir / f"{gguf_path.stem}-{stat.st_size}-{int(stat.st_mtime)}"
    if (target / "config.json").is_file():
        return target
    logger.info("Converting %s to a transformers folder in %s", gguf_path, target)
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name, local_files_only=True)
    quantized = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name, local_files_only=True)
    # A model built from the config holds the same dequantised weights without the GGUF marker that
    # save_pretrained refuses.
    model = type(quantized)(quantized.config)
    model.load_state_dict(quantized.state_dict())
    model.config.quantization_config = None
    temporary = cache_dir / f".{target.name}.{os.getpid()}.tmp"
    model.save_pretrained(temporary)
    tokenizer.save_pretrained(temporary)
    try:
        os.replace(temporary, target)  # atomic: a half-written folder is never taken for a converted model
    except OSError:  # another process converted it first
        shutil.rmtree(temporary, ignore_errors=True)
    return target
