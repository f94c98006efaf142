"""A small local HTTP server speaking the OpenAI chat API, answering from the real local model.

It stands in for vLLM or any OpenAI-compatible server, which cannot run on the test machines. It binds to
127.0.0.1 on a free port and lives for one test module.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def serve(llm, model_name: str = "standin", api_key: str | None = None):
    """Start the server in a thread; returns (base_url, server). Call server.shutdown() when done."""

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
            if self.path != "/v1/chat/completions":
                return self._send_json(404, {"error": {"message": f"no route {self.path}"}})
            if request.get("model") != model_name:
                return self._send_json(404, {"error": {"message": f"model {request.get('model')} not served"}})
            messages, limit = request["messages"], request.get("max_tokens", 256)
            created = int(time.time())
            if not request.get("stream"):
                return self._send_json(200, {
                    "id": "chatcmpl-standin", "object": "chat.completion", "created": created, "model": model_name,
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": llm.chat(messages, limit)}}],
                })
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for piece in llm.stream_chat(messages, limit):
                chunk = {"id": "chatcmpl-standin", "object": "chat.completion.chunk", "created": created,
                         "model": model_name, "choices": [{"index": 0, "delta": {"content": piece}}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/v1", server
