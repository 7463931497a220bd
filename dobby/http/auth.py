"""Bearer tokens of SPEC §8: who may call which route for which tenants, and who the actor of each event is."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.authentication import AuthCredentials, AuthenticationBackend, BaseUser
from starlette.requests import HTTPConnection

from dobby.adapters.tokens_file import ROLES, TokensFileError, read_entries
from dobby.engine.commands.context import may_see, require_tenant
from dobby.http.errors import HttpError
from dobby.http.sessions import SESSION_COOKIE, SessionCodec

CONSOLE = "/console"


@dataclass(frozen=True)
class Principal(BaseUser):
    name: str
    tenants: frozenset[str] | None
    roles: frozenset[str]

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.name

    def may_see(self, tenant: str) -> bool:
        return may_see(self.tenants, tenant)

    def require_tenant(self, tenant: Any) -> None:
        """A read naming a tenant outside the token's is 403, by the engine's one rule (commands.context)."""
        if isinstance(tenant, str):
            require_tenant(self.tenants, tenant)


ANONYMOUS_ROLES = ROLES


def load_tokens(path: Path) -> dict[str, Principal]:
    """Tokens by the hex SHA-256 of the token; the file holds only hashes, never tokens in clear."""
    if not path.exists():
        raise TokensFileError(f"DOBBY_API_TOKENS_FILE {path}: no such file (make one with `dobby tokens add`)")
    entries = read_entries(path)
    if not entries:
        raise TokensFileError(f"DOBBY_API_TOKENS_FILE {path}: expected a non-empty list of tokens")
    tokens: dict[str, Principal] = {}
    for index, entry in enumerate(entries):
        tokens.update([_principal(entry, f"DOBBY_API_TOKENS_FILE {path}: token {index}")])
    return tokens


def _principal(entry: Any, where: str) -> tuple[str, Principal]:
    if not isinstance(entry, dict):
        raise TokensFileError(f"{where} is not an object")
    name, digest, tenants, roles = (entry.get(key) for key in ("name", "sha256", "tenants", "roles"))
    if not isinstance(name, str) or not name or len(name) > 200:
        raise TokensFileError(f"{where}: name must be a non-empty string")
    if not isinstance(digest, str) or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest.lower()):
        raise TokensFileError(f"{where}: sha256 must be 64 hex characters")
    if tenants != "*" and not (isinstance(tenants, list) and all(isinstance(t, str) for t in tenants)):
        raise TokensFileError(f'{where}: tenants must be a list of tenant ids or "*"')
    if not isinstance(roles, list) or not roles or not set(roles) <= ROLES:
        raise TokensFileError(f"{where}: roles must be a non-empty subset of {sorted(ROLES)}")
    scope = None if tenants == "*" or "*" in tenants else frozenset(tenants)
    return digest.lower(), Principal(name, scope, frozenset(roles))


class TokenBackend(AuthenticationBackend):
    """Starlette authentication: the bearer token's principal, or without tokens the X-Actor (or anonymous) with
    every role and tenant. A missing or unknown token leaves the request unauthenticated; routes refuse it."""

    def __init__(self, tokens: dict[str, Principal] | None, sessions: SessionCodec | None = None) -> None:
        self.tokens = tokens
        self.sessions = sessions

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        if self.tokens is None:
            return AuthCredentials(sorted(ROLES)), Principal(_header_actor(conn), None, ANONYMOUS_ROLES)
        scheme, _, token = conn.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return self._session(conn)
        found = self.find(token)
        if found is None:
            conn.scope["dobby.auth_problem"] = "the bearer token is not valid"
            return None
        return AuthCredentials(sorted(found[1].roles)), found[1]

    def find(self, token: str) -> tuple[str, Principal] | None:
        """The token's digest and principal, when the token is one of the configured ones."""
        digest = hashlib.sha256(token.strip().encode("utf-8")).hexdigest()
        return self._by_digest(digest)

    def _by_digest(self, digest: str) -> tuple[str, Principal] | None:
        assert self.tokens is not None
        principal = next((p for known, p in self.tokens.items() if hmac.compare_digest(known, digest)), None)
        return None if principal is None else (digest, principal)

    def _session(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        """The console's signed session cookie, honoured under /console only (the API takes bearer tokens)."""
        cookie = conn.cookies.get(SESSION_COOKIE) if self.sessions and conn.scope["path"].startswith(CONSOLE) else None
        digest = self.sessions.read(cookie) if self.sessions and cookie else None
        found = self._by_digest(digest) if digest else None
        if found is None:
            return None
        return AuthCredentials(sorted(found[1].roles)), found[1]


READERS = ("auditor", "operator")
"""Who may read (SPEC §8): reads, history, explain and proofs are for auditors and operators."""


def principal_for(request: HTTPConnection, role: str | tuple[str, ...]) -> Principal:
    """The caller, when it holds `role` (or one of several; "any": any role); 401 unauthenticated, 403 without."""
    user = request.user
    if not isinstance(user, Principal):
        raise _unauthorized(request.scope.get("dobby.auth_problem", "a bearer token is required"))
    allowed = (role,) if isinstance(role, str) else role
    if "any" not in allowed and not user.roles & set(allowed):
        raise HttpError(403, "forbidden", f"token {user.name!r} lacks the {' or '.join(allowed)} role")
    return user


def _header_actor(request: HTTPConnection) -> str:
    actor = request.headers.get("x-actor", "").strip()
    return actor if 0 < len(actor) <= 200 and actor.isprintable() else "anonymous"


def _unauthorized(message: str) -> HttpError:
    error = HttpError(401, "unauthorized", message)
    error.headers["WWW-Authenticate"] = 'Bearer realm="dobby"'
    return error
