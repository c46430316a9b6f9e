"""Keyed hashes and sealed boxes derived from the deployment's secret key."""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

NONCE_BYTES: Final = 12
SEAL_VERSION: Final = b"\x01"


class SealError(Exception):
    """A sealed value could not be opened: wrong key, wrong context or tampered bytes."""


def _derive(secret: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(secret)


class Keyring:
    """Everything the app does with the secret key, each purpose with its own derived key.

    Separate subkeys mean a leak of one use (say, log pseudonyms compared across files)
    tells nothing about another (receipt hashes, sealed contact links).
    """

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the secret key must be at least 16 bytes")
        self._hash_key = _derive(secret, b"homthu/hmac/v1")
        self._log_key = _derive(secret, b"homthu/log/v1")
        self._seal = AESGCM(_derive(secret, b"homthu/seal/v1"))

    def digest(self, purpose: str, value: str) -> str:
        """Return the hex HMAC-SHA256 of ``value`` for one purpose (chat keys, receipts)."""
        message = f"{purpose}\x00{value}".encode()
        return hmac.new(self._hash_key, message, hashlib.sha256).hexdigest()

    def chat_key(self, channel: str, chat: str) -> str:
        """Return the stable keyed hash that stands for a chat in the database."""
        return self.digest("chat", f"{channel}:{chat}")

    def receipt_hash(self, code: str) -> str:
        """Return the keyed hash under which a receipt code is stored."""
        return self.digest("receipt", code)

    def pseudonym(self, channel: str, chat: str) -> str:
        """Return a short keyed-hash name for a chat, for log lines only."""
        message = f"{channel}:{chat}".encode()
        return "p" + hmac.new(self._log_key, message, hashlib.sha256).hexdigest()[:10]

    def seal(self, plaintext: bytes, *, context: str) -> bytes:
        """Encrypt and authenticate ``plaintext``, bound to ``context`` (e.g. the tip id)."""
        nonce = os.urandom(NONCE_BYTES)
        return SEAL_VERSION + nonce + self._seal.encrypt(nonce, plaintext, context.encode())

    def open(self, sealed: bytes, *, context: str) -> bytes:
        """Decrypt a value sealed for the same ``context``; raise SealError otherwise."""
        if not sealed.startswith(SEAL_VERSION) or len(sealed) < 1 + NONCE_BYTES + 16:
            raise SealError("not a sealed value")
        nonce, body = sealed[1 : 1 + NONCE_BYTES], sealed[1 + NONCE_BYTES :]
        try:
            return self._seal.decrypt(nonce, body, context.encode())
        except Exception as error:
            raise SealError("cannot open sealed value") from error
