"""Each API user's fair share of the models. Model requests (questions, chat completions, reranks) take turns: a
server process runs ``api_model_requests_at_once`` of them (its model is one), and when several wait, the next turn
goes to the user who has had the fewest in the last minute, then to the one who came first; a request that gets no
turn within ``api_model_wait_s`` is answered 503 with ``Retry-After``. Each user may have
``api_concurrent_model_requests`` running or waiting, and start ``api_model_requests_per_minute``; beyond either, a 429
with ``Retry-After``. So one user's flood holds at most one turn, and another user's question waits for that one
alone rather than behind a queue of the flood's. A refusal is answered after a pause (``REFUSAL_PAUSE_S``, awaited
without a thread): a client that ignores Retry-After and asks again at once then costs the server one request a
second per connection, where 80 refusals a second took the CPU that other users' questions needed.

A user rather than a key: another key of the same user buys no more of the model. Counted in each server process,
each of which has its own models (``sift serve --workers N``), and only with auth on: with it off Sift listens on
loopback, and every caller is this machine's local admin.

Example (a route that asks the model)::

    release = take_model_slot(request, user)  # waits for a turn; 429 / 503 past the user's share or the wait
    try:
        ...
    finally:
        release()
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import TypeVar

from fastapi import HTTPException, Request, status
from fastapi.responses import JSONResponse
from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from sift.app.accounts import User
from sift.app.api.access import sift_of
from sift.app.api.schemas import Error
from sift.app.config import Settings

logger = logging.getLogger(__name__)

T = TypeVar("T")

REFUSAL_PAUSE_S = 1.0
BUSY = {
    429: {"model": Error, "description": "The user's share of the model is taken: retry after Retry-After."},
    503: {"model": Error, "description": "No turn on the model came in time: retry after Retry-After."},
}
"""The refusals a route that takes a model slot declares (``responses=``), beside its own."""


class ModelRequestRefused(HTTPException):
    """A model request refused for now (429: past the user's share; 503: no turn in time), with Retry-After."""

    def __init__(self, code: int, detail: str, wait_s: int):
        super().__init__(code, f"{detail} Retry in {wait_s} s.", headers={"Retry-After": str(wait_s)})


async def answer_busy(request: Request, exc: ModelRequestRefused) -> JSONResponse:
    """The app's answer to ``ModelRequestRefused``: the refusal, after ``REFUSAL_PAUSE_S``."""
    await asyncio.sleep(REFUSAL_PAUSE_S)
    return JSONResponse({"detail": exc.detail}, exc.status_code, headers=exc.headers)


class ModelSlots:
    """The model requests each user has running or waiting, the turns, and the requests of the last minute, in this
    process."""

    def __init__(self, concurrent: int, per_minute: int, at_once: int, wait_s: float):
        self.concurrent, self.at_once, self.wait_s = concurrent, at_once, wait_s
        self._turns = threading.Condition()
        self._users: Counter[int] = Counter()  # requests running or waiting, per user
        self._running = 0
        self._waiting: list[tuple[int, int]] = []  # (requests in the last minute, arrival): the least goes next
        self._arrivals = itertools.count()
        self._rate = RateLimitItemPerMinute(per_minute)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._typical_s = 1.0  # how long a turn takes here (a moving average): what a refused request is told to wait

    @classmethod
    def of(cls, settings: Settings) -> ModelSlots:
        return cls(
            settings.api_concurrent_model_requests,
            settings.api_model_requests_per_minute,
            settings.api_model_requests_at_once,
            settings.api_model_wait_s,
        )

    def take(self, user_id: int) -> Callable[[], None]:
        """Wait for a turn for one model request of the user; return the call that gives it back (once, however
        often called). Raise ModelRequestRefused: 429 past the user's share, 503 when no turn came in time."""
        with self._turns:
            if self._users[user_id] >= self.concurrent:
                limit = f"at most {self.concurrent} at once (SIFT_API_CONCURRENT_MODEL_REQUESTS)"
                raise ModelRequestRefused(
                    status.HTTP_429_TOO_MANY_REQUESTS, f"Too many model requests from this user: {limit}.", self._wait()
                )
            if not self._limiter.hit(self._rate, "model", str(user_id)):
                reset = self._limiter.get_window_stats(self._rate, "model", str(user_id)).reset_time
                limit = f"at most {self._rate.amount} a minute (SIFT_API_MODEL_REQUESTS_PER_MINUTE)"
                wait = max(1, math.ceil(reset - time.time()))
                raise ModelRequestRefused(
                    status.HTTP_429_TOO_MANY_REQUESTS, f"Too many model requests from this user: {limit}.", wait
                )
            self._users[user_id] += 1
            recent = self._rate.amount - self._limiter.get_window_stats(self._rate, "model", str(user_id)).remaining
            ticket = (recent, next(self._arrivals))
            self._waiting.append(ticket)
            turn = self._turns.wait_for(
                lambda: self._running < self.at_once and min(self._waiting) == ticket, self.wait_s
            )
            self._waiting.remove(ticket)
            if not turn:
                self._leave(user_id)
                raise ModelRequestRefused(
                    status.HTTP_503_SERVICE_UNAVAILABLE,
                    f"The model is busy with other users' requests: no turn within {self.wait_s:g} s "
                    "(SIFT_API_MODEL_WAIT_S).",
                    self._wait(),
                )
            self._running += 1
            self._turns.notify_all()  # with more than one turn at once, the next in line may go too
        started, released = time.monotonic(), threading.Event()

        def release() -> None:
            with self._turns:
                if released.is_set():
                    return
                released.set()
                self._running -= 1
                self._leave(user_id)
                self._typical_s = 0.8 * self._typical_s + 0.2 * (time.monotonic() - started)

        return release

    def _leave(self, user_id: int) -> None:
        self._users[user_id] -= 1
        if not self._users[user_id]:
            del self._users[user_id]
        self._turns.notify_all()

    def _wait(self) -> int:
        return max(1, math.ceil(self._typical_s))


def take_model_slot(request: Request, user: User) -> Callable[[], None]:
    """A turn on the model for the request's user (``ModelSlots.take``); with auth off, or for the local admin,
    nothing to take: the call given back does nothing."""
    if not sift_of(request).settings.auth or user.id is None:
        return lambda: None
    return request.app.state.model_slots.take(user.id)


def holding(events: Iterator[T], release: Callable[[], None]) -> Iterator[T]:
    """``events``, with ``release`` called once they end, fail or are closed, read or not: the generator is started
    here, so that closing it (a stream the client left before its first event) still runs its ``finally``."""

    def held() -> Iterator:
        try:
            yield None  # the start, taken below
            yield from events
        finally:
            release()

    generator = held()
    next(generator)
    return generator
