"""Failed logins, limited, and counted in the app's database (table ``login_failures``, migration 0006): every
process that checks passwords over that database (each app process, however many, and after a restart) counts the
same failures.

Two counts, each over the last ``window_seconds``:

- per user name and address: after ``max_failures`` wrong passwords for one name from one address, that name is
  refused from that address, the right password too, until the oldest of those failures leaves the window. The same
  name from another address still logs in, so nobody can lock the admin out from their own address, and behind a
  proxy (whose address every user shares unless it is trusted: ``Settings.trusted_proxies``) one person's typos
  lock out only their own name.
- per address: after ``max_failures_per_address`` failures for any names, every name is refused from that address
  (a guesser trying many names).

A wrong user name counts as a failure like a wrong password, so the counts do not tell which names exist. Names are
kept as their SHA-256 only: people type their password into the name field. A login from this machine has no
address (``None``, as Streamlit gives it for localhost): those share one count.

Example::

    >>> from sqlalchemy import create_engine
    >>> engine = create_engine("sqlite://")
    >>> LoginFailureRow.__table__.create(engine)
    >>> guard = LoginGuard(engine, max_failures=2)
    >>> guard.failed("ada", "10.0.0.7"); guard.failed("ada", "10.0.0.7")
    >>> guard.check("ada", "10.0.0.7")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    sift.app.login_limits.TooManyAttempts: Too many failed logins for this user name from this address: wait ...
    >>> guard.check("ada", "10.0.0.9")  # the same name from another address is let through
    >>> guard.check("bob", "10.0.0.7")  # and another name from that one
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import time

from sqlalchemy import Engine, Float, Index, String, delete, func, select
from sqlalchemy.orm import Mapped, mapped_column, sessionmaker

from sift.app.history import HistoryBase

logger = logging.getLogger(__name__)


class TooManyAttempts(PermissionError):
    """Logins refused for now; ``wait_seconds`` until the next attempt is counted again."""

    def __init__(self, wait_seconds: int, whose: str):
        super().__init__(f"Too many failed logins {whose}: wait {wait_seconds} s, then try again.")
        self.wait_seconds = wait_seconds


class LoginFailureRow(HistoryBase):
    """One failed login (migration 0006)."""

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_address_failed_at", "address", "failed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name_hash: Mapped[str] = mapped_column(String(64))  # SHA-256 hex of the name as typed, trimmed and casefolded
    address: Mapped[str] = mapped_column(String(64))  # "" for a login from this machine
    # Seconds since the epoch: compared the same on every database (SQLite keeps datetimes as text, without zone).
    failed_at: Mapped[float] = mapped_column(Float, index=True)


def _name_hash(name: str) -> str:
    return hashlib.sha256(name.strip().casefold().encode("utf-8", "surrogatepass")).hexdigest()


def _address(address: str | None) -> str:
    """The one written form of a client's IP address (an IPv4 address mapped into IPv6 as IPv4); "" for none (a
    login from this machine) and for what is not an IP address (what a proxy forwarded may be anything)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return ""
    return str(getattr(ip, "ipv4_mapped", None) or ip)


class LoginGuard:
    """Counts failed logins per user name and address and per address, and refuses logins past the limits."""

    def __init__(
        self, engine: Engine, max_failures: int = 5, max_failures_per_address: int = 50, window_seconds: int = 300
    ):
        self.max_failures = max_failures
        self.max_failures_per_address = max_failures_per_address
        self.window_seconds = window_seconds
        self._sessions = sessionmaker(engine)

    def check(self, name: str, address: str | None = None) -> None:
        """Raise TooManyAttempts when the name has used up its failures from this address, or the address its own."""
        address, now = _address(address), time.time()
        since = now - self.window_seconds
        from_address = select(LoginFailureRow.failed_at).where(
            LoginFailureRow.address == address, LoginFailureRow.failed_at > since
        )
        with self._sessions() as session:
            limits = [
                (
                    "for this user name from this address",
                    self.max_failures,
                    from_address.where(LoginFailureRow.name_hash == _name_hash(name)),
                ),
                ("from this address", self.max_failures_per_address, from_address),
            ]
            for whose, limit, failures in limits:
                # The newest `limit` failures: once there are that many, the oldest of them has to leave the window.
                newest = failures.order_by(LoginFailureRow.failed_at.desc()).limit(limit).subquery()
                count, oldest = session.execute(select(func.count(), func.min(newest.c.failed_at))).one()
                if count >= limit:
                    logger.warning("Login for %r from %s refused: too many failed attempts", name, address or "here")
                    raise TooManyAttempts(max(1, math.ceil(oldest + self.window_seconds - now)), whose)

    def failed(self, name: str, address: str | None = None) -> None:
        """Count a failed login against the name from this address, and against the address."""
        now = time.time()
        with self._sessions() as session:
            session.add(LoginFailureRow(name_hash=_name_hash(name), address=_address(address), failed_at=now))
            # Failures out of every window are forgotten: the table holds only what a check can still count.
            session.execute(delete(LoginFailureRow).where(LoginFailureRow.failed_at <= now - self.window_seconds))
            session.commit()
