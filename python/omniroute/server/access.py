"""Who may use the server and what they may do: people with passwords and
sessions, other systems with scoped API tokens (``docs/server.md``).

Secrets are never stored. A password is kept as its argon2id hash (argon2-cffi,
the reference implementation's bindings, with its recommended parameters); a
session or API token is a random 256-bit value handed out once and kept as its
SHA-256, which is enough for a value that cannot be guessed and lets a request
be checked with one indexed read.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Iterable
from typing import Annotated, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from msgspec import Meta, Struct

from omniroute.errors import InvalidInputError, refuse_nul
from omniroute.ids import new_id
from omniroute.model import Name
from omniroute.store import ApiToken, Role, Session, SqlStore, User

__all__ = [
    "ROLE_SCOPES",
    "SCOPES",
    "Access",
    "Login",
    "NewToken",
    "NewUser",
    "Principal",
    "Scope",
]

Scope = Literal[
    "interactions:create",
    "interactions:read",
    "interactions:write",
    "customers:read",
    "customers:write",
    "agents:read",
    "agents:write",
    "work",
    "reports:read",
    "events:read",
    "config:read",
    "config:write",
    "users:admin",
]

SCOPES: dict[str, str] = {
    "interactions:create": "create interactions: the generic channel",
    "interactions:read": "read interactions with their messages",
    "interactions:write": "add messages and notes to interactions",
    "customers:read": "read customers, their identities and cross-channel timelines",
    "customers:write": "merge customers and undo merges",
    "agents:read": "read agents and their states",
    "agents:write": "change agents' states",
    "work": "accept and reject offers; complete, transfer and cancel tasks; end wrap-up",
    "reports:read": "live figures and reports",
    "events:read": "the event log",
    "config:read": "read the routing configuration",
    "config:write": "validate and apply the routing configuration",
    "users:admin": "add and disable users, issue and revoke API tokens",
}

_AGENT: frozenset[str] = frozenset(
    {
        "interactions:read",
        "interactions:write",
        "customers:read",
        "agents:read",
        "agents:write",
        "work",
        "reports:read",
        "config:read",
    }
)
_SUPERVISOR: frozenset[str] = frozenset(SCOPES) - {"config:write", "users:admin"}

# An agent's scopes reach only its own work (``Principal.own_only``); a
# supervisor's and an administrator's reach everything.
ROLE_SCOPES: dict[str, frozenset[str]] = {
    "agent": _AGENT,
    "supervisor": _SUPERVISOR,
    "administrator": frozenset(SCOPES),
}

# argon2id with argon2-cffi's defaults (RFC 9106's second recommended option).
_hasher = PasswordHasher()

Password = Annotated[str, Meta(min_length=8, max_length=1024)]


class Login(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=128)]
    password: Annotated[str, Meta(min_length=1, max_length=1024)]


class NewUser(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Name
    role: Role
    password: Password
    # The agent this user works as; required for the agent role.
    agent: Name | None = None


class NewToken(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=128)]
    scopes: Annotated[list[Scope], Meta(min_length=1)]
    expires_in_seconds: Annotated[float, Meta(gt=0)] | None = None


class Principal(Struct, frozen=True, kw_only=True):
    """Who is calling: a logged-in user or an API token."""

    name: str
    kind: Literal["user", "token"]
    role: Role | None
    scopes: frozenset[str]
    # The agent a user with the agent role works as.
    agent: str | None = None

    @property
    def own_only(self) -> bool:
        """An agent acts only on its own work."""
        return self.role == "agent"

    def may(self, scope: str) -> bool:
        return scope in self.scopes


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_secret() -> str:
    return secrets.token_urlsafe(32)


class Access:
    """Users, sessions and API tokens over the store. Blocking: call from a
    worker thread (argon2 takes tens of milliseconds on purpose)."""

    def __init__(
        self,
        store: SqlStore,
        *,
        session_seconds: float = 8 * 3600.0,
        cache_seconds: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.session_seconds = session_seconds
        self.cache_seconds = cache_seconds
        self._clock = clock
        # Secret's hash -> (who, until when that answer stands). Valid answers
        # only; whatever this process changes (logout, a password, a disabled
        # user, a revoked token) empties it at once, a change made by another
        # process is seen within cache_seconds.
        self._cache: dict[str, tuple[Principal, float]] = {}

    # ----- people -----

    def add_user(self, new: NewUser) -> User:
        refuse_nul({"name": new.name, "agent": new.agent})
        if new.role == "agent" and new.agent is None:
            raise InvalidInputError("agent: a user with the agent role names the agent it works as")
        if new.role != "agent" and new.agent is not None:
            raise InvalidInputError(
                f"agent: only a user with the agent role works as an agent, not a {new.role}"
            )
        user = User(name=new.name, role=new.role, agent=new.agent, created_at=self._clock())
        password_hash = _hasher.hash(new.password)
        with self.store.write() as w:
            w.add_user(user, password_hash)
        return user

    def set_password(self, name: str, password: str) -> None:
        refuse_nul({"name": name})
        if not 8 <= len(password) <= 1024:
            raise InvalidInputError("password: between 8 and 1024 characters")
        password_hash = _hasher.hash(password)
        with self.store.write() as w:
            w.set_password(name, password_hash, self._clock())
        self._cache.clear()

    def disable_user(self, name: str) -> None:
        refuse_nul({"name": name})
        with self.store.write() as w:
            w.disable_user(name, self._clock())
        self._cache.clear()

    def users(self) -> list[User]:
        with self.store.read() as r:
            return r.users()

    def login(self, name: str, password: str) -> tuple[str, Session, User] | None:
        """A new session's token, or None: unknown name, wrong password and a
        disabled user look the same to the caller."""
        # A name holding a NUL character names nobody (no store holds one).
        found = None
        if "\x00" not in name:
            with self.store.read() as r:
                found = r.credentials(name)
        if found is None:
            # As long as a real check, so timing does not tell which names exist.
            _hasher.hash(password)
            return None
        user, password_hash = found
        try:
            _hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return None
        if user.disabled_at is not None:
            return None
        now = self._clock()
        token = _new_secret()
        session = Session(user=user.name, created_at=now, expires_at=now + self.session_seconds)
        with self.store.write() as w:
            if _hasher.check_needs_rehash(password_hash):
                w.set_password(user.name, _hasher.hash(password), now)
            w.add_session(token_hash(token), session)
        return token, session, user

    def logout(self, token: str) -> None:
        digest = token_hash(token)
        with self.store.write() as w:
            w.end_session(digest, self._clock())
        self._cache.pop(digest, None)

    # ----- other systems -----

    def add_token(self, new: NewToken) -> tuple[str, ApiToken]:
        """A new API token: the secret is returned here and never again."""
        refuse_nul({"name": new.name})
        now = self._clock()
        token = _new_secret()
        record = ApiToken(
            id=new_id(),
            name=new.name,
            scopes=tuple(sorted(set(new.scopes))),
            created_at=now,
            expires_at=None if new.expires_in_seconds is None else now + new.expires_in_seconds,
        )
        with self.store.write() as w:
            w.add_api_token(token_hash(token), record)
        return token, record

    def revoke_token(self, token_id: str) -> None:
        refuse_nul({"token": token_id})
        with self.store.write() as w:
            w.revoke_api_token(token_id, self._clock())
        self._cache.clear()

    def tokens(self) -> list[ApiToken]:
        with self.store.read() as r:
            return r.api_tokens()

    # ----- each request -----

    def cached(self, *, session: str | None = None, bearer: str | None = None) -> Principal | None:
        """The caller from memory, without touching the store: None when it
        must be looked up (:meth:`authenticate`)."""
        secret = bearer if bearer is not None else session
        if secret is None:
            return None
        found = self._cache.get(token_hash(secret))
        if found is None or found[1] <= self._clock():
            return None
        return found[0]

    def authenticate(self, *, session: str | None = None, bearer: str | None = None) -> Principal | None:
        """The caller of a session cookie or a bearer token (an API token or a
        session's token), or None when neither is valid now."""
        secret = bearer if bearer is not None else session
        if secret is None:
            return None
        now = self._clock()
        digest = token_hash(secret)
        principal: Principal | None = None
        until = now + self.cache_seconds
        with self.store.read() as r:
            api = r.api_token(digest) if bearer is not None else None
            found = None if api is not None else r.session(digest)
        if api is not None:
            if api.revoked_at is None and (api.expires_at is None or api.expires_at > now):
                principal = Principal(name=api.name, kind="token", role=None, scopes=frozenset(api.scopes))
                until = min(until, api.expires_at or until)
        else:
            principal = _of_session(found, now)
            if principal is not None and found is not None:
                until = min(until, found[0].expires_at)
        if principal is not None:
            if len(self._cache) > 100_000:
                self._cache.clear()  # a bound, not a policy: it refills from the store
            self._cache[digest] = (principal, until)
        return principal


def _of_session(found: tuple[Session, User] | None, now: float) -> Principal | None:
    if found is None:
        return None
    session, user = found
    if session.ended_at is not None or session.expires_at <= now or user.disabled_at is not None:
        return None
    return principal_of(user)


def principal_of(user: User) -> Principal:
    return Principal(
        name=user.name, kind="user", role=user.role, scopes=ROLE_SCOPES[user.role], agent=user.agent
    )


def scopes_of(values: Iterable[str]) -> list[str]:
    """Scope names checked against the known ones (for the command line)."""
    scopes = list(values)
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise InvalidInputError(f"scopes: unknown {', '.join(unknown)}; known: {', '.join(SCOPES)}")
    return scopes
