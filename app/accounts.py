"""Accounts and keys: users with a role, API keys, and who may read or edit which corpus.

Roles: a ``reader`` searches, asks and reads the corpora shared with them; an ``editor`` also creates corpora (and
owns them), uploads to and deletes documents of the corpora they own or that were shared with them for editing; an
``admin`` does everything, on every corpus, and manages users. A corpus's owner or an admin shares it, to read or to
edit. Corpora with no owner (made by the CLI, or before auth was on) are an admin's until shared.

Nothing secret is stored in clear: a password is kept as its argon2 hash; an API key (a random token, shown once) as
its SHA-256, which is enough for a 256-bit random token and lets a request's key be looked up by its hash. Access
rows point at the store's corpus id, never the name, and the store never hands an id out twice: a corpus deleted and
made again under the same name starts with no shares.

When auth is off (``Settings.auth``), Sift listens only on loopback and every caller acts as ``LOCAL_ADMIN``.

Example::

    >>> accounts = Sift(Settings(data_dir="/tmp/sift-doc")).accounts                       # doctest: +SKIP
    >>> alice = accounts.add_user("alice", "correct horse", "editor")                       # doctest: +SKIP
    >>> accounts.create_corpus(alice, "notes")                                              # doctest: +SKIP
    >>> key = accounts.create_key("alice", "laptop").secret   # shown once, stored hashed   # doctest: +SKIP
    >>> accounts.user_for_key(key).name, accounts.can_edit(alice, "notes")                  # doctest: +SKIP
    ('alice', True)
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Literal, get_args

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel, ConfigDict
from sqlalchemy import DateTime, Engine, ForeignKey, String, UniqueConstraint, delete, select, update
from sqlalchemy.orm import Mapped, mapped_column, sessionmaker

from sift.app.history import NEVER_REUSED, ConversationRow, HistoryBase
from sift.app.login_limits import LoginGuard
from sift.app.model_choice import ModelChoiceRow
from sift.ingestion.schema import Corpus, utcnow
from sift.ingestion.store import CorpusNotFound, Store, check_text, text_problem

logger = logging.getLogger(__name__)

Role = Literal["reader", "editor", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
Access = Literal["read", "edit", "owner"]
KEY_PREFIX = "sift_"  # tells a Sift key apart in a config file or a leaked-secret scan

_passwords = PasswordHasher()  # argon2id with the library's current recommended parameters


class AccountError(ValueError):
    """A request about accounts that cannot be done (an unknown user, a name taken, a role that does not exist)."""


class CorpusNameTaken(AccountError):
    """A corpus name in use by a corpus the user cannot edit: told the same whether or not they can see it."""


class UserRow(HistoryBase):
    """A person or program that logs in (migration 0003); ``password_hash`` is argon2's encoded hash."""

    __tablename__ = "users"
    __table_args__ = (NEVER_REUSED,)  # a conversation keeps its owner's id: a new user must not inherit it

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApiKeyRow(HistoryBase):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey(UserRow.id, ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 hex of the whole key
    hint: Mapped[str] = mapped_column(String(20))  # the key's first characters, to tell keys apart in a list
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CorpusAccessRow(HistoryBase):
    """One user's access to one corpus: its owner, or a share to read or edit."""

    __tablename__ = "corpus_access"
    __table_args__ = (UniqueConstraint("corpus_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    corpus_id: Mapped[int] = mapped_column(ForeignKey(Corpus.id, ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey(UserRow.id, ondelete="CASCADE"), index=True)
    access: Mapped[str] = mapped_column(String(10))


@dataclass(frozen=True)
class User:
    """Who is asking. ``id`` is None only for ``LOCAL_ADMIN``, who has no row."""

    id: int | None
    name: str
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def can_create_corpora(self) -> bool:
        return self.role in ("editor", "admin")


LOCAL_ADMIN = User(id=None, name="local", role="admin")
"""Who acts while auth is off: Sift then listens on loopback only, where whoever reaches it runs this machine."""


class ApiKey(BaseModel):
    """An API key as listed: never the key itself."""

    model_config = ConfigDict(from_attributes=True, frozen=True)

    id: int
    user: str
    name: str
    hint: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class NewKey:
    """A key just made: ``secret`` is the only time the key is available."""

    key: ApiKey
    secret: str


@cache
def _no_user_hash() -> str:
    """What a password given with a name no user has is checked against, so that refusing it takes as long as
    refusing a wrong password: otherwise the time of the answer (1 ms against 300) tells which names exist."""
    return _passwords.hash(secrets.token_urlsafe(16))


def _password_bytes(password: str) -> bytes:
    # What argon2 would encode itself, except that a lone surrogate (a browser's or JSON's broken pair) is kept
    # rather than raising UnicodeEncodeError: it cannot match, and is refused like any wrong password.
    return password.encode("utf-8", "surrogatepass")


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _user(row: UserRow) -> User:
    return User(id=row.id, name=row.name, role=row.role)


class Accounts:
    """Users, keys and corpus access, in the app's tables (migrated by ``History.open``) beside the store's."""

    def __init__(self, engine: Engine, store: Store, guard: LoginGuard | None = None):
        self.store = store
        self.guard = guard or LoginGuard(engine)
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    # ------------------------------------------------------------------------------------------ users

    def add_user(self, name: str, password: str, role: Role) -> User:
        name = check_text(name, "A user name").strip()
        if not name or len(name) > 100:
            raise AccountError("A user name has 1 to 100 characters.")
        if not password:
            raise AccountError("The password is empty.")
        _check_role(role)
        with self._sessions() as session:
            if session.scalar(select(UserRow.id).where(UserRow.name == name)) is not None:
                raise AccountError(f"There is already a user named {name!r}.")
            row = UserRow(name=name, role=role, password_hash=_passwords.hash(_password_bytes(password)))
            session.add(row)
            session.commit()
            logger.info("User %s added (%s)", name, role)
            return _user(row)

    def user(self, name: str) -> User:
        with self._sessions() as session:
            return _user(self._user_row(session, name))

    def users(self) -> list[User]:
        with self._sessions() as session:
            return [_user(row) for row in session.scalars(select(UserRow).order_by(UserRow.name))]

    def remove_user(self, name: str) -> None:
        """Remove a user with their keys, shares and model choice; the corpora and conversations they own stay, an
        admin's."""
        with self._sessions() as session:
            user_id = self._user_row(session, name).id
            # Children first: SQLite enforces ON DELETE CASCADE only where the connection turned foreign keys on.
            session.execute(delete(ApiKeyRow).where(ApiKeyRow.user_id == user_id))
            session.execute(delete(CorpusAccessRow).where(CorpusAccessRow.user_id == user_id))
            session.execute(delete(ModelChoiceRow).where(ModelChoiceRow.user_id == user_id))
            session.execute(update(ConversationRow).where(ConversationRow.owner_id == user_id).values(owner_id=None))
            session.execute(delete(UserRow).where(UserRow.id == user_id))
            session.commit()
        logger.info("User %s removed", name)

    def set_role(self, name: str, role: Role) -> User:
        _check_role(role)
        with self._sessions() as session:
            row = self._user_row(session, name)
            row.role = role
            session.commit()
            logger.info("User %s is now %s", name, role)
            return _user(row)

    def authenticate(self, name: str, password: str, address: str | None = None) -> User | None:
        """The user whose name and password these are; None otherwise (which of the two was wrong is not told, nor
        shown by the time taken). Raises TooManyAttempts, before any check, once the name has failed too often from
        the client's ``address``, or the address for any names (``LoginGuard``); a wrong name counts as a failure."""
        self.guard.check(name, address)
        with self._sessions() as session:
            # A name no database can hold is no user's (and PostgreSQL refuses a NUL even to look it up).
            row = None if text_problem(name) else session.scalar(select(UserRow).where(UserRow.name == name.strip()))
            try:
                _passwords.verify(_no_user_hash() if row is None else row.password_hash, _password_bytes(password))
                if row is None:  # the password of no user: refused as any wrong one, in the same time
                    raise VerificationError("no such user")
            except (VerificationError, InvalidHashError):
                logger.info("Wrong user name or password for %s", name)
                self.guard.failed(name, address)
                return None
            if _passwords.check_needs_rehash(row.password_hash):  # argon2's recommended parameters have grown
                row.password_hash = _passwords.hash(_password_bytes(password))
                session.commit()
            return _user(row)

    @staticmethod
    def _user_row(session, name: str) -> UserRow:
        row = session.scalar(select(UserRow).where(UserRow.name == name.strip()))
        if row is None:
            raise AccountError(f"No user named {name!r}.")
        return row

    # ------------------------------------------------------------------------------------------ keys

    def create_key(self, user_name: str, name: str = "") -> NewKey:
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        with self._sessions() as session:
            user = self._user_row(session, user_name)
            row = ApiKeyRow(user_id=user.id, name=name[:100], key_hash=hash_key(secret), hint=secret[:12])
            session.add(row)
            session.commit()
            logger.info("API key %d created for %s", row.id, user.name)
            return NewKey(self._key(row, user.name), secret)

    def keys(self, user_name: str | None = None) -> list[ApiKey]:
        query = select(ApiKeyRow, UserRow.name).join(UserRow).order_by(ApiKeyRow.id)
        with self._sessions() as session:
            if user_name is not None:
                query = query.where(ApiKeyRow.user_id == self._user_row(session, user_name).id)
            return [self._key(row, owner) for row, owner in session.execute(query)]

    def revoke_key(self, key_id: int) -> ApiKey:
        with self._sessions() as session:
            row = session.get(ApiKeyRow, key_id)
            if row is None:
                raise AccountError(f"No API key with id {key_id}.")
            row.revoked_at = row.revoked_at or utcnow()
            session.commit()
            logger.info("API key %d revoked", key_id)
            return self._key(row, session.get(UserRow, row.user_id).name)

    def user_for_key(self, secret: str) -> User | None:
        """The user a key belongs to, its use recorded; None for an unknown or revoked key."""
        with self._sessions() as session:
            found = session.execute(
                select(ApiKeyRow.id, UserRow)
                .join(UserRow)
                .where(ApiKeyRow.key_hash == hash_key(secret), ApiKeyRow.revoked_at.is_(None))
            ).first()
            if found is None:
                return None
            session.execute(update(ApiKeyRow).where(ApiKeyRow.id == found[0]).values(last_used_at=utcnow()))
            session.commit()
            return _user(found[1])

    @staticmethod
    def _key(row: ApiKeyRow, user_name: str) -> ApiKey:
        return ApiKey(
            id=row.id,
            user=user_name,
            name=row.name,
            hint=row.hint,
            created_at=row.created_at,
            last_used_at=row.last_used_at,
            revoked_at=row.revoked_at,
        )

    # ------------------------------------------------------------------------------------------ corpus access

    def create_corpus(self, user: User, name: str) -> str:
        """Create a corpus owned by ``user`` (an editor or admin); an existing one is returned when they can edit
        it. Raises PermissionError for a reader, CorpusNameTaken for a name in use by a corpus they cannot edit."""
        if not user.can_create_corpora:
            raise PermissionError(f"{user.name} is a {user.role}: only editors and admins create corpora.")
        existing = self._corpus_id(name)
        if existing is not None:
            if not self.can_edit(user, name):
                # Names are unique across Sift, so a name in use cannot be taken; the refusal says only that, the
                # same for a corpus the user reads as for one hidden from them (README: Accounts and keys).
                raise CorpusNameTaken(f"The corpus name {name!r} is in use; choose another.")
            return self.store.corpus(name).name
        corpus = self.store.corpus(name, create=True)
        if user.id is not None:
            self._grant(corpus.id, user.id, "owner")
        return corpus.name

    def share(self, corpus: str, user_name: str, access: Literal["read", "edit"]) -> None:
        """Let a user read (or edit) a corpus; a second share replaces the first. The owner stays the owner."""
        corpus_id = self.store.corpus(corpus).id
        user = self.user(user_name)
        if self._access(user, corpus_id) == "owner":
            return
        self._grant(corpus_id, user.id, access)
        logger.info("Corpus %s shared with %s (%s)", corpus, user_name, access)

    def access(self, user: User, corpus: str) -> Access | None:
        """What ``user`` may do with a corpus: owner, edit, read, or None (also for a corpus that does not exist)."""
        corpus_id = self._corpus_id(corpus)
        return None if corpus_id is None else self._access(user, corpus_id)

    def can_read(self, user: User, corpus: str) -> bool:
        return self.access(user, corpus) is not None

    def can_edit(self, user: User, corpus: str) -> bool:
        """Upload to it, delete its documents: an editor's own or shared-to-edit corpus, or any for an admin. A
        reader shared a corpus to edit still only reads it: the role caps the share."""
        return user.can_create_corpora and self.access(user, corpus) in ("edit", "owner")

    def can_manage(self, user: User, corpus: str) -> bool:
        """Delete or share it: its owner, or an admin."""
        return self.access(user, corpus) == "owner"

    def readable_corpora(self, user: User) -> list[str]:
        if user.is_admin:
            return self.store.corpus_names()
        with self._sessions() as session:
            return list(
                session.scalars(
                    select(Corpus.name)
                    .join(CorpusAccessRow, CorpusAccessRow.corpus_id == Corpus.id)
                    .where(CorpusAccessRow.user_id == user.id)
                    .order_by(Corpus.name)
                )
            )

    def can_read_corpus_id(self, user: User, corpus_id: int) -> bool:
        """For what names its corpus by id (a job, a trace): the id of a deleted corpus is readable by admins only."""
        return self._access(user, corpus_id) is not None

    def forget_corpus(self, corpus_id: int) -> None:
        """Remove a corpus's access rows (called as it is deleted; its id will never come back, but rows pointing
        at nothing have no place)."""
        with self._sessions() as session:
            session.execute(delete(CorpusAccessRow).where(CorpusAccessRow.corpus_id == corpus_id))
            session.commit()

    def _access(self, user: User, corpus_id: int) -> Access | None:
        if user.is_admin:
            return "owner"
        with self._sessions() as session:
            return session.scalar(
                select(CorpusAccessRow.access).where(
                    CorpusAccessRow.corpus_id == corpus_id, CorpusAccessRow.user_id == user.id
                )
            )

    def _corpus_id(self, name: str) -> int | None:
        try:
            return self.store.corpus(name).id
        except CorpusNotFound:
            return None

    def _grant(self, corpus_id: int, user_id: int, access: Access) -> None:
        with self._sessions() as session:
            row = session.scalar(
                select(CorpusAccessRow).where(
                    CorpusAccessRow.corpus_id == corpus_id, CorpusAccessRow.user_id == user_id
                )
            )
            if row is None:
                session.add(CorpusAccessRow(corpus_id=corpus_id, user_id=user_id, access=access))
            else:
                row.access = access
            session.commit()


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise AccountError(f"No role {role!r}: a role is one of {', '.join(ROLES)}.")
