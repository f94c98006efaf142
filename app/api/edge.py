"""The API's edge: what every request must pass, on its headers alone, before a byte of its body is read.

In order (``Edge``, an ASGI middleware around the whole app):

1. **The Host** must be one Sift answers to (``Settings.answers_host``): with auth off only loopback names, so that a
   web page whose name was rebound to 127.0.0.1 (DNS rebinding) cannot read the corpora. 421 otherwise.
2. **The Origin** of a state-changing request (POST, PUT, PATCH, DELETE), when a browser sends one, by the same rule:
   a foreign page's form post answers 403 (CSRF). Requests without an Origin (curl, the openai client) pass.
3. **The caller** (``access.authenticate``, the one place that knows how): 401 before the body is read, so that no
   unauthenticated body is held in memory or spooled to disk.
4. **The body's size**: an upload's multipart body up to ``max_request_mb`` in all and ``max_upload_mb`` per file,
   any other body up to ``max_json_kb``. 413 as soon as the declared length (Content-Length) or the bytes received
   so far (chunked bodies too) pass the limit, while the client is still sending.

A refusal closes the connection, so that the rest of a refused body is not read.

Example::

    app.add_middleware(Edge, settings=settings, public_paths=["/docs"], upload_paths=["/corpora/{name}/uploads"])
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import HTTPException, Request, status
from python_multipart.multipart import parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sift.app.api.access import authenticate
from sift.app.config import Settings

logger = logging.getLogger(__name__)

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ANSWERED = "loopback names (localhost, 127.0.0.1, ::1) and those in allowed_hosts (SIFT_ALLOWED_HOSTS)"
# A file's part carries its own headers (its field and file name) beside the file's bytes.
PART_HEADERS_BYTES = 16 * 1024


class Edge:
    """The checks above, in front of ``app``. ``public_paths`` need no key (the schema and its pages);
    ``upload_paths`` (route paths, ``{name}`` for a parameter) take multipart uploads, every other path JSON."""

    def __init__(self, app: ASGIApp, settings: Settings, public_paths: Collection[str], upload_paths: Collection[str]):
        self.app = app
        self.settings = settings
        self.public_paths = frozenset(public_paths)
        self.upload_paths = [compile_path(path)[0] for path in upload_paths]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # the lifespan; the API has no websockets
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        try:
            self._check_host(headers)
            self._check_origin(scope["method"], headers)
            if scope["path"] not in self.public_paths:
                await run_in_threadpool(authenticate, Request(scope))  # the key's lookup is a database query
            limit = self._limit(scope, headers)
            if int(headers.get("content-length") or 0) > limit.total:
                raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, limit.total_message)
        except HTTPException as refused:
            await _refuse(refused, scope, receive, send)
            return
        body = _BoundedBody(limit, scope, receive, send)
        await self.app(scope, body.receive, body.send)

    def _check_host(self, headers: Headers) -> None:
        host = headers.get("host")
        if host is not None and not self.settings.answers_host(_host_name(f"//{host}")):
            raise HTTPException(
                status.HTTP_421_MISDIRECTED_REQUEST,
                f"This server does not answer to the host {host!r}: only to {ANSWERED}.",
            )

    def _check_origin(self, method: str, headers: Headers) -> None:
        origin = headers.get("origin")
        if origin is None or method not in STATE_CHANGING:  # not a browser's, or one that changes nothing
            return
        if not self.settings.answers_host(_host_name(origin)):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"A cross-origin {method} from {origin!r} is refused: only pages of {ANSWERED} may change anything.",
            )

    def _limit(self, scope: Scope, headers: Headers) -> _Limit:
        settings = self.settings
        content_type, options = parse_options_header(headers.get("content-type"))
        is_upload = scope["method"] == "POST" and any(path.match(scope["path"]) for path in self.upload_paths)
        if not (is_upload and content_type == b"multipart/form-data"):
            return _Limit(
                settings.max_json_bytes,
                f"This request's body is over {settings.max_json_kb} KiB, the limit for a request other than an "
                "upload (SIFT_MAX_JSON_KB).",
            )
        return _Limit(
            settings.max_request_bytes,
            f"This upload is over {settings.max_request_bytes / 2**20:.1f} MiB, the limit for one request "
            "(SIFT_MAX_REQUEST_MB).",
            boundary=options.get(b"boundary", b""),
            part=settings.max_upload_bytes + PART_HEADERS_BYTES,
            part_message=f"A file in this upload is over the upload limit of {settings.max_upload_mb:.1f} MiB "
            "(SIFT_MAX_UPLOAD_MB).",
        )


@dataclass(frozen=True)
class _Limit:
    """How large a body may be: in all, and each part of a multipart body (when its boundary is known)."""

    total: int
    total_message: str
    boundary: bytes = b""
    part: int = 0
    part_message: str = ""


class _BoundedBody:
    """One request's receive and send, counting the body's bytes as the app reads them. Past a limit it answers 413
    itself and tells the app that the client is gone; the app's own answer is then dropped."""

    def __init__(self, limit: _Limit, scope: Scope, receive: Receive, send: Send):
        self.limit, self.scope, self._receive, self._send = limit, scope, receive, send
        self.received = 0
        # Each part of a multipart body starts after a delimiter, CRLF "--" boundary (the first one without the CRLF):
        # the bytes since the last one are the part's so far. The tail keeps a delimiter split between two messages.
        self.delimiter = b"\r\n--" + limit.boundary
        self.tail = b"\r\n"
        self.part = 0
        self.started = self.refused = False

    async def receive(self) -> Message:
        if self.refused:
            return {"type": "http.disconnect"}
        message = await self._receive()
        if message["type"] == "http.request":
            refusal = self._count(message.get("body", b""))
            if refusal is not None:
                self.refused = True
                if not self.started:
                    await _refuse(
                        HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, refusal), self.scope, self._receive, self._send
                    )
                return {"type": "http.disconnect"}
        return message

    async def send(self, message: Message) -> None:
        if self.refused:  # the app's answer to the body it did not get in full
            return
        self.started = True
        await self._send(message)

    def _count(self, chunk: bytes) -> str | None:
        self.received += len(chunk)
        if self.received > self.limit.total:
            return self.limit.total_message
        if self.limit.boundary:
            data = self.tail + chunk
            end = data.rfind(self.delimiter)
            self.part = len(data) - end - len(self.delimiter) if end >= 0 else self.part + len(chunk)
            self.tail = data[-(len(self.delimiter) - 1) :]
            if self.part > self.limit.part:
                return self.limit.part_message
        return None


def _host_name(url: str) -> str | None:
    """The host name of a URL (lower case, without brackets or port); None when there is none or it is malformed."""
    try:
        return urlsplit(url).hostname
    except ValueError:  # e.g. "[::1" with no closing bracket
        return None


async def _refuse(refused: HTTPException, scope: Scope, receive: Receive, send: Send) -> None:
    logger.info("%s %s refused at the edge: %d %s", scope["method"], scope["path"], refused.status_code, refused.detail)
    headers = {**(refused.headers or {}), "Connection": "close"}
    await JSONResponse({"detail": refused.detail}, refused.status_code, headers)(scope, receive, send)
