"""How a browser holds the admin token, and the CSRF check of every admin form.

The login form posts the admin token (or, for the read-only pages, the prediction token) once,
over the same connection as every other request (serve behind TLS off loopback). The browser never
keeps the token: the server answers a session cookie ``modelward_ui`` =
``<role>.<expiry>.<nonce>.<HMAC>``, signed with a key derived from the admin token, ``HttpOnly``,
``SameSite=Strict``, ``Path=/ui`` (``Secure`` when the request came over HTTPS). Changing the token
invalidates every session. Each admin form carries a CSRF token, the HMAC of the session cookie
under a second derived key (a signed double submit): a page on another site can neither read it nor
make the browser send the cookie (SameSite), and a forged form without it is refused.
A session lasts eight hours.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

__all__ = ["COOKIE", "SESSION_SECONDS", "Sessions"]

COOKIE = "modelward_ui"
SESSION_SECONDS = 8 * 3600


class Sessions:
    """Signs and checks dashboard sessions; ``admin_token`` None: nobody can log in."""

    def __init__(self, admin_token: str | None, predict_token: str | None = None) -> None:
        self.admin_token = admin_token
        self.predict_token = predict_token
        seed = (admin_token or secrets.token_hex(32)).encode()
        self._session_key = hashlib.sha256(b"modelward-ui-session\x00" + seed).digest()
        self._csrf_key = hashlib.sha256(b"modelward-ui-csrf\x00" + seed).digest()

    @property
    def enabled(self) -> bool:
        return self.admin_token is not None or self.predict_token is not None

    def role_of_token(self, given: str) -> str | None:
        """``admin`` for the admin token, ``viewer`` for the prediction token, else None."""
        for role, token in (("admin", self.admin_token), ("viewer", self.predict_token)):
            if token is not None and hmac.compare_digest(given.encode(), token.encode()):
                return role
        return None

    def _sign(self, body: str) -> str:
        return hmac.new(self._session_key, body.encode(), hashlib.sha256).hexdigest()

    def issue(self, role: str, now: float | None = None) -> str:
        expiry = int((time.time() if now is None else now) + SESSION_SECONDS)
        body = f"{role}.{expiry}.{secrets.token_urlsafe(12)}"
        return f"{body}.{self._sign(body)}"

    def role(self, cookie: str | None, now: float | None = None) -> str | None:
        """The role of a valid, unexpired session cookie; None otherwise."""
        if not self.enabled or not cookie or cookie.count(".") != 3:
            return None
        body, signature = cookie.rsplit(".", 1)
        if not hmac.compare_digest(signature, self._sign(body)):
            return None
        role, expiry, _ = body.split(".")
        if not expiry.isdigit() or int(expiry) <= (time.time() if now is None else now):
            return None
        return role if role in ("admin", "viewer") else None

    def is_admin(self, cookie: str | None) -> bool:
        return self.admin_token is not None and self.role(cookie) == "admin"

    def csrf(self, cookie: str) -> str:
        return hmac.new(self._csrf_key, cookie.encode(), hashlib.sha256).hexdigest()

    def csrf_matches(self, cookie: str | None, token: str | None) -> bool:
        return bool(cookie and token) and hmac.compare_digest(self.csrf(cookie or ""), token or "")
