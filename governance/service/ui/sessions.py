"""Explorer sessions: a signed, expiring cookie naming an API key that must still exist.

The key is checked once, at sign-in; the browser then holds the token of :meth:`Sessions.issue`
(never the key) in the :data:`COOKIE` cookie. Every request re-checks it against the key store
(:meth:`Sessions.check`), so revoking a key ends its sessions at once. The signing secret lives
in ``<home>/keys/ui-session.key`` (:func:`load_secret`), so sessions survive a restart and work
across workers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path

from governance.service.auth import KeyStore, Principal

UI_ROLES: tuple[str, ...] = ("auditor", "approver", "admin")
COOKIE = "governance_ui"
SESSION_SECONDS = 8 * 3600
SECRET_FILE = "ui-session.key"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_fingerprint(token: str) -> str:
    """Part of the SHA-256 the key store holds for a key (never the key itself)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def load_secret(home: Path) -> bytes:
    """The session signing secret, ``<home>/keys/ui-session.key``, created (0600) if missing."""
    path = home / "keys" / SECRET_FILE
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another process may be writing it right now
            data = path.read_bytes()
            if len(data) >= 32:
                return data
            time.sleep(0.01)
        raise RuntimeError(f"{path} holds fewer than 32 bytes; remove it") from None
    try:
        secret = secrets.token_bytes(32)
        os.write(fd, secret)
        os.fsync(fd)
    finally:
        os.close(fd)
    return secret


class Sessions:
    """Signed, expiring session tokens tied to an API key that must still exist.

    A token is ``base64url(name \\n role \\n key fingerprint \\n expiry) . base64url(HMAC)``.
    """

    def __init__(self, keys: KeyStore, secret: bytes, lifetime: int = SESSION_SECONDS) -> None:
        if len(secret) < 32:
            raise ValueError("the session secret must be at least 32 bytes")
        self.keys = keys
        self._secret = secret
        self.lifetime = lifetime

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()

    def issue(self, principal: Principal, token: str, now: float | None = None) -> str:
        """A session token for a key that has just authenticated as ``principal``."""
        expires = int((time.time() if now is None else now) + self.lifetime)
        payload = "\n".join(
            (principal.name, principal.role, key_fingerprint(token), str(expires))
        ).encode()
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def check(self, value: str | None, now: float | None = None) -> Principal | None:
        """The principal of a valid, unexpired token whose key still exists; else ``None``."""
        if not value or len(value) > 1024 or value.count(".") != 1:
            return None
        body, mac = value.split(".")
        try:
            payload, tag = _unb64(body), _unb64(mac)
        except ValueError:
            return None
        if not hmac.compare_digest(tag, self._mac(payload)):
            return None
        try:
            name, role, fingerprint, expires = payload.decode().split("\n")
            expiry = int(expires)
        except ValueError:
            return None
        if expiry <= (time.time() if now is None else now):
            return None
        for key in self.keys.entries():
            if key.name == name:
                if key.role == role and hmac.compare_digest(key.sha256[:32], fingerprint):
                    return Principal(name, role)
                return None
        return None


def safe_next(value: str, base: str) -> str:
    """A redirect target after sign-in: a path inside the explorer, else its search page."""
    default = f"{base}/decisions"
    if (
        not value
        or not value.startswith(base)
        or value.startswith("//")
        or "\\" in value
        or any(ord(c) < 32 for c in value)
    ):
        return default
    rest = value[len(base) :]
    if rest and rest[0] not in "/?":
        return default
    return value
