"""Server-sent events: one ``event:`` / ``data:`` block per event, the data as one line of JSON.

Example::

    >>> sse_event("token", {"text": "The"})
    'event: token\\ndata: {"text": "The"}\\n\\n'
"""

from __future__ import annotations

import json
import logging

logger = logging.getLogger(__name__)

MEDIA_TYPE = "text/event-stream"
# Proxies (nginx) buffer responses unless told not to, which would hold every token back until the end.
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def sse_event(name: str | None, data) -> str:
    """One event; no name: a bare ``data:`` line, as OpenAI's streams send."""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, default=str)
    return (f"event: {name}\n" if name else "") + f"data: {payload}\n\n"
