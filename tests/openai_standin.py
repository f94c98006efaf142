"""A small local HTTP server speaking the OpenAI API, answering from the real local model.

It stands in for vLLM or any OpenAI-compatible server, which cannot run on the test machines: ``/v1/chat/completions``
(plain, streamed, with ``top_logprobs``) and ``/v1/completions`` (with ``echo`` and prompt log-probabilities), greedy.
It binds to 127.0.0.1 on a free port; ``logprobs=False`` makes it a server that gives no log-probabilities.
``server.requests`` records each request it was sent, as (path, JSON body), so a test can tell who asked it what.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import torch


def serve(llm, model_name: str = "standin", api_key: str | None = None, logprobs: bool = True):
    """Start the server in a thread; returns (base_url, server). Call server.shutdown() when done."""
    model, tok = llm.model, llm.tokenizer

    def complete(ids: list[int], max_tokens: int, top: int):
        with llm.lock, torch.inference_mode():
            out = model.generate(
                torch.tensor([ids]),
                attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                max_new_tokens=max(max_tokens, 1),
                do_sample=False,
                output_scores=True,
                return_dict_in_generate=True,
                pad_token_id=tok.pad_token_id,
            )
        new = out.sequences[0, len(ids) :].tolist()[: max(max_tokens, 1)]
        steps = []
        for token_id, scores in zip(new, out.scores, strict=False):
            logp = torch.log_softmax(scores[0].float(), -1)
            best = logp.topk(top)
            steps.append(
                {
                    "token": tok.decode([token_id]),
                    "logprob": logp[token_id].item(),
                    "top_logprobs": [
                        {"token": tok.decode([i]), "logprob": v}
                        for v, i in zip(best.values.tolist(), best.indices.tolist(), strict=False)
                    ],
                }
            )
        return new, steps

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output clean
            pass

        def _send_json(self, status: int, body: dict) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_POST(self):
            if api_key and self.headers.get("Authorization") != f"Bearer {api_key}":
                return self._send_json(401, {"error": {"message": "invalid api key"}})
            request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            server.requests.append((self.path, request))
            if request.get("model") != model_name:
                return self._send_json(404, {"error": {"message": f"model {request.get('model')} not served"}})
            if self.path == "/v1/chat/completions":
                return self._chat(request)
            if self.path == "/v1/completions":
                return self._completion(request)
            return self._send_json(404, {"error": {"message": f"no route {self.path}"}})

        def _chat(self, request: dict) -> None:
            messages, limit = request["messages"], request.get("max_tokens", 256)
            if request.get("stream"):
                return self._stream(messages, limit)
            text = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            ids = tok(text, add_special_tokens=False)["input_ids"]
            new, steps = complete(ids, limit, request.get("top_logprobs") or 1)
            choice = {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": tok.decode(new, skip_special_tokens=True)},
            }
            if logprobs and request.get("logprobs"):
                choice["logprobs"] = {"content": steps}
            self._send_json(
                200,
                {
                    "id": "chatcmpl-standin",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": model_name,
                    "choices": [choice],
                    "usage": {"total_tokens": len(ids) + len(new)},
                },
            )
            return None

        def _stream(self, messages: list[dict], limit: int) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for piece in llm.stream(messages, limit):
                chunk = {
                    "id": "chatcmpl-standin",
                    "object": "chat.completion.chunk",
                    "created": int(time.time()),
                    "model": model_name,
                    "choices": [{"index": 0, "delta": {"content": piece}}],
                }
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")

        def _completion(self, request: dict) -> None:
            encoded = tok(request["prompt"], add_special_tokens=False, return_offsets_mapping=True)
            ids, offsets = encoded["input_ids"], [o[0] for o in encoded["offset_mapping"]]
            new, _ = complete(ids, request.get("max_tokens", 16), 1)
            choice = {"index": 0, "text": (request["prompt"] if request.get("echo") else "") + tok.decode(new)}
            if logprobs and request.get("logprobs") is not None and request.get("echo"):
                with llm.lock, torch.inference_mode():
                    logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), -1)
                values = [None] + [logp[k - 1, ids[k]].item() for k in range(1, len(ids))]
                choice["logprobs"] = {
                    "tokens": [tok.decode([i]) for i in ids],
                    "token_logprobs": values,
                    "text_offset": offsets,
                    "top_logprobs": None,
                }
            self._send_json(
                200, {"object": "text_completion", "choices": [choice], "usage": {"total_tokens": len(ids) + len(new)}}
            )

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.requests = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/v1", server
