"""Console sessions (SPEC §9): a signed cookie that names a token by its hash, and the CSRF token beside it."""

from __future__ import annotations

import hmac
import secrets

from itsdangerous import BadSignature, URLSafeTimedSerializer

SESSION_COOKIE = "dobby_session"
CSRF_COOKIE = "dobby_csrf"
CSRF_FIELD = "csrf_token"
SESSION_SECONDS = 12 * 3600
MIN_SECRET_LENGTH = 16


class SessionCodec:
    """Issues and reads session cookies signed with DOBBY_CONSOLE_SECRET, so every process that shares the secret
    accepts the sessions of the others. A session names the token's SHA-256, never the token itself: a token
    removed from the tokens file ends its sessions too."""

    def __init__(self, secret: str) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="dobby.http.console.session")

    def issue(self, token_digest: str) -> str:
        return self._serializer.dumps({"token": token_digest})

    def read(self, value: str) -> str | None:
        """The token digest a cookie names, when its signature holds and it is younger than SESSION_SECONDS."""
        try:
            data = self._serializer.loads(value, max_age=SESSION_SECONDS)
        except BadSignature:
            return None
        digest = data.get("token") if isinstance(data, dict) else None
        return digest if isinstance(digest, str) else None


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_matches(cookie: str | None, sent: str | None) -> bool:
    """Double submit: the token in the form must equal the one in the SameSite=Strict cookie, which a page of
    another site can neither read nor send."""
    return bool(cookie) and bool(sent) and hmac.compare_digest(str(cookie), str(sent))
