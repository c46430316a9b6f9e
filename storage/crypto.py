"""Keyed hashes and sealed boxes derived from the deployment's secret key."""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

NONCE_BYTES: Final = 12
TAG_BYTES: Final = 16
KEY_BYTES: Final = 32
KEY_ID_BYTES: Final = 4
# v1: sealed with a key derived from the secret itself (before data keys); opened, never made.
SEAL_V1: Final = b"\x01"
# v2: sealed with a stored data key, named by its id in the header; the header's last byte
# is zero, so values sealed with one key share a prefix a query can look for.
SEAL_V2: Final = b"\x02"
HEADER_BYTES: Final = 1 + KEY_ID_BYTES + 1
WRAP_CONTEXT: Final = b"homthu/data-key"


class SealError(Exception):
    """A sealed value could not be opened: wrong key, wrong context or tampered bytes."""


class KeysNotLoaded(RuntimeError):
    """Content was sealed or opened before the database's data keys were loaded."""


def _derive(secret: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(secret)


def new_data_key() -> bytes:
    """Return a fresh random key for sealing content."""
    return AESGCM.generate_key(bit_length=KEY_BYTES * 8)


class Keyring:
    """Everything the app does with keys, each purpose with its own key.

    The secret key (``HOMTHU_SECRET_KEY``) keys the one-way hashes directly and wraps the
    data keys, which are random, stored wrapped in the database and replaced by
    ``python -m bot keys rotate``. Separate keys mean a leak of one use (say, log pseudonyms
    compared across files) tells nothing about another (receipts, sealed content).
    """

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the secret key must be at least 16 bytes")
        self._hash_key = _derive(secret, b"homthu/hmac/v1")
        self._log_key = _derive(secret, b"homthu/log/v1")
        self._legacy_seal = AESGCM(_derive(secret, b"homthu/seal/v1"))
        self._wrap = AESGCM(_derive(secret, b"homthu/wrap/v1"))
        self._data: dict[int, AESGCM] = {}
        self._current: int | None = None

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

    def wrap(self, key: bytes) -> bytes:
        """Encrypt a data key with the secret key, for storing it in the database."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._wrap.encrypt(nonce, key, WRAP_CONTEXT)

    def unwrap(self, wrapped: bytes) -> bytes:
        """Decrypt a stored data key; raise SealError when the secret key is not its own."""
        try:
            return self._wrap.decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], WRAP_CONTEXT)
        except Exception as error:
            raise SealError("the secret key does not open this data key") from error

    def install(self, keys: Mapping[int, bytes], *, current: int) -> None:
        """Use these data keys to open content, and ``current`` to seal it."""
        if current not in keys:
            raise ValueError("the current data key is not among the keys")
        self._data = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self._current = current

    @property
    def current_key_id(self) -> int:
        """Return the id of the data key new content is sealed with."""
        if self._current is None:
            raise KeysNotLoaded("the data keys are not loaded; call storage.keys.load first")
        return self._current

    def seal(self, plaintext: bytes, *, context: str) -> bytes:
        """Encrypt and authenticate ``plaintext``, bound to ``context`` (e.g. the tip id)."""
        key_id = self.current_key_id
        header = self.header(key_id)
        nonce = os.urandom(NONCE_BYTES)
        return header + nonce + self._data[key_id].encrypt(nonce, plaintext, context.encode())

    @staticmethod
    def header(key_id: int) -> bytes:
        """Return the bytes every value sealed with this data key starts with."""
        return SEAL_V2 + key_id.to_bytes(KEY_ID_BYTES, "big") + b"\x00"

    def key_id_of(self, sealed: bytes) -> int | None:
        """Return the data key a value is sealed with (None for the oldest format)."""
        if sealed.startswith(SEAL_V2) and len(sealed) > HEADER_BYTES:
            return int.from_bytes(sealed[1 : 1 + KEY_ID_BYTES], "big")
        return None

    def open(self, sealed: bytes, *, context: str) -> bytes:
        """Decrypt a value sealed for the same ``context``; raise SealError otherwise."""
        if sealed.startswith(SEAL_V2):
            key_id = self.key_id_of(sealed)
            if self._current is None:
                raise KeysNotLoaded("the data keys are not loaded; call storage.keys.load first")
            box = self._data.get(key_id) if key_id is not None else None
            body = sealed[HEADER_BYTES:]
        elif sealed.startswith(SEAL_V1):
            box, body = self._legacy_seal, sealed[1:]
        else:
            raise SealError("not a sealed value")
        if box is None:
            raise SealError("sealed with a data key that is no longer kept")
        if len(body) < NONCE_BYTES + TAG_BYTES:
            raise SealError("not a sealed value")
        try:
            return box.decrypt(body[:NONCE_BYTES], body[NONCE_BYTES:], context.encode())
        except Exception as error:
            raise SealError("cannot open sealed value") from error
