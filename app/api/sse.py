"""Server-sent events: one ``event:`` / ``data:`` block per event, the data as one line of JSON, and the response
that streams them and lets go of the work behind them when the client goes away.

Example::

    >>> sse_event("token", {"text": "The"})
    'event: token\\ndata: {"text": "The"}\\n\\n'
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Generator

import anyio
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

logger = logging.getLogger(__name__)

MEDIA_TYPE = "text/event-stream"
# Proxies (nginx) buffer responses unless told not to, which would hold every token back until the end.
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def sse_event(name: str | None, data) -> str:
    """One event; no name: a bare ``data:`` line, as OpenAI's streams send."""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, default=str)
    return (f"event: {name}\n" if name else "") + f"data: {payload}\n\n"


class _Closable:
    """A generator read from worker threads that can be closed from another one: closing waits for the read in
    flight (a generator cannot be closed while it runs), then runs the generator's ``finally`` blocks."""

    def __init__(self, events: Generator[str]):
        self._events = events
        self._reading = threading.Lock()

    def __iter__(self) -> _Closable:
        return self

    def __next__(self) -> str:
        with self._reading:
            return next(self._events)

    def close(self) -> None:
        with self._reading:
            self._events.close()


class EventStream(StreamingResponse):
    """Server-sent events from a generator, which is closed when the stream ends, fails or the client disconnects.

    Starlette stops reading a sync generator when the client goes away but leaves it suspended, with whatever it
    holds (the model's turn, a half-written answer), until the garbage collector finds it. Here the disconnect is
    watched for the whole stream, and the generator is closed at once, in a thread of its own so that a read still
    in flight (a rerank that takes seconds) delays nobody.
    """

    def __init__(self, events: Generator[str]):
        self._source = _Closable(events)
        super().__init__(self._source, media_type=MEDIA_TYPE, headers=HEADERS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            async with anyio.create_task_group() as group:

                async def stream() -> None:
                    try:
                        await self.stream_response(send)
                    except OSError:  # ASGI 2.4 servers raise on a send to a client that has gone
                        logger.info("Client left a stream")
                    group.cancel_scope.cancel()

                group.start_soon(stream)
                await self.listen_for_disconnect(receive)
                group.cancel_scope.cancel()
        finally:
            threading.Thread(target=self._source.close, name="close-stream", daemon=True).start()
