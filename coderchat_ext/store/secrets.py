"""Encryption at rest for provider API keys (``api_key`` encrypted at rest:
docs/data-model.md#providers-and-model-configs).

Keys are encrypted with Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``) under a key
kept in a file beside the database, created with mode 0600 so only its user can read it.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken


class SecretBox:
    """Encrypts and decrypts short secrets with a key file readable only by its owner."""

    def __init__(self, key_path: str | Path) -> None:
        self.key_path = Path(key_path)
        self._fernet: Fernet | None = None

    def _load(self) -> Fernet:
        if self._fernet is None:
            if not self.key_path.exists():
                self.key_path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(Fernet.generate_key())
            self._fernet = Fernet(self.key_path.read_bytes().strip())
        return self._fernet

    def encrypt(self, secret: str) -> str:
        """The token for ``secret``; the empty string stays empty."""
        return self._load().encrypt(secret.encode()).decode() if secret else ""

    def decrypt(self, token: str) -> str:
        """The secret of ``token``; "" when empty or when the key file changed (unreadable)."""
        if not token:
            return ""
        try:
            return self._load().decrypt(token.encode()).decode()
        except InvalidToken:
            return ""
