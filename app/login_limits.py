"""Failed logins, limited: after ``login_max_failures`` wrong passwords within ``login_window_seconds`` for one user
name, or from one address, further attempts are refused (the right password too) until the oldest of those failures
leaves the window, and the refusal says how many seconds that is.

Both keys count: the user name stops a guesser who changes address; the address stops one who tries many names.
Counted by the ``limits`` library (a moving window) in the storage ``login_limit_storage`` names: ``memory://`` for
the app's one process, or a shared store (``redis://127.0.0.1:6379``) where several processes check passwords.

Example::

    >>> guard = LoginGuard(max_failures=2, window_seconds=60)
    >>> guard.failed("ada", "10.0.0.7"); guard.failed("ada", "10.0.0.7")
    >>> guard.check("ada", "10.0.0.9")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    sift.app.login_limits.TooManyAttempts: Too many failed logins for this user name or from this address: wait ...
    >>> guard.check("bob", "10.0.0.9")  # another name from another address is let through
"""

from __future__ import annotations

import logging
import math
import time

from limits import RateLimitItemPerSecond
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

logger = logging.getLogger(__name__)


class TooManyAttempts(PermissionError):
    """Logins refused for now; ``wait_seconds`` until the next attempt is counted again."""

    def __init__(self, wait_seconds: int):
        super().__init__(
            f"Too many failed logins for this user name or from this address: wait {wait_seconds} s, then try again."
        )
        self.wait_seconds = wait_seconds


class LoginGuard:
    """Counts failed logins per user name and per address, and refuses logins past the limit."""

    def __init__(self, max_failures: int = 5, window_seconds: int = 300, storage: str = "memory://"):
        self._limit = RateLimitItemPerSecond(max_failures, window_seconds)
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage))

    @staticmethod
    def _keys(name: str, address: str | None) -> list[tuple[str, str]]:
        keys = [("user", name.strip().casefold())]
        return [*keys, ("address", address)] if address else keys

    def check(self, name: str, address: str | None = None) -> None:
        """Raise TooManyAttempts when the name or the address has used up its failures."""
        waits = [
            self._wait(key) for key in self._keys(name, address) if not self._limiter.test(self._limit, "login", *key)
        ]
        if waits:
            logger.warning("Login for %r from %s refused: too many failed attempts", name, address or "?")
            raise TooManyAttempts(max(waits))

    def failed(self, name: str, address: str | None = None) -> None:
        """Count a failed login against the name and the address."""
        for key in self._keys(name, address):
            self._limiter.hit(self._limit, "login", *key)

    def _wait(self, key: tuple[str, str]) -> int:
        reset_at = self._limiter.get_window_stats(self._limit, "login", *key).reset_time
        return max(1, math.ceil(reset_at - time.time()))
