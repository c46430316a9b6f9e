"""Column types that encrypt what residents wrote before it reaches the database.

The value is sealed with the current data key of the keyring bound to the engine, and bound
to its column (a text moved to another column does not open). Stored as ``s:`` + base64 in
a TEXT column, so the statistics columns beside it stay plain and queryable.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.types import TypeDecorator

from storage.crypto import Keyring, KeysNotLoaded

MARK: Final = "s:"
_ATTRIBUTE: Final = "homthu_keyring"


def bind_keyring(engine: AsyncEngine, keyring: Keyring) -> None:
    """Make sealed columns on this engine use ``keyring``; each engine has its own dialect."""
    setattr(engine.sync_engine.dialect, _ATTRIBUTE, keyring)


def prefix(key_id: int) -> str:
    """Return how every stored value sealed with a data key starts (8 base64 characters)."""
    return MARK + base64.b64encode(Keyring.header(key_id)).decode("ascii")


def keyring_of(dialect: Dialect) -> Keyring:
    """Return the keyring bound to an engine's dialect."""
    keyring = getattr(dialect, _ATTRIBUTE, None)
    if keyring is None:
        raise KeysNotLoaded("no keyring is bound to this engine: use storage.db.create_engine")
    return keyring  # type: ignore[no-any-return]


class Sealed(TypeDecorator[Any]):
    """A value sealed under ``context``; subclasses say how it becomes bytes and back."""

    impl = sa.Text
    cache_ok = True

    def __init__(self, context: str) -> None:
        super().__init__()
        self.context = context

    def encode(self, value: Any) -> bytes:
        """Turn the Python value into the bytes that are sealed."""
        raise NotImplementedError

    def decode(self, data: bytes) -> Any:
        """Turn opened bytes back into the Python value."""
        raise NotImplementedError

    def from_plain(self, stored: str) -> Any:
        """Read a value stored before sealing existed (plain text in the same column)."""
        return self.decode(stored.encode())

    def seal(self, value: Any, keyring: Keyring) -> str:
        """Return the stored form of ``value``."""
        sealed = keyring.seal(self.encode(value), context=self.context)
        return MARK + base64.b64encode(sealed).decode("ascii")

    def open(self, stored: str, keyring: Keyring) -> Any:
        """Return the value behind a stored form."""
        return self.decode(keyring.open(self.raw(stored), context=self.context))

    @staticmethod
    def raw(stored: str) -> bytes:
        """Return the sealed bytes of a stored form."""
        return base64.b64decode(stored[len(MARK) :])

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return self.seal(value, keyring_of(dialect))

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        return self.open(value, keyring_of(dialect))


class SealedText(Sealed):
    """Text a resident or officer wrote: a tip, a place, an answer, a note."""

    cache_ok = True

    def encode(self, value: Any) -> bytes:
        return str(value).encode()

    def decode(self, data: bytes) -> str:
        return data.decode()


class SealedFloat(Sealed):
    """A coordinate of a shared location."""

    cache_ok = True

    def encode(self, value: Any) -> bytes:
        return repr(float(value)).encode()

    def decode(self, data: bytes) -> float:
        return float(data.decode())


class SealedJSON(Sealed):
    """A JSON document, such as a draft tip with everything typed so far."""

    cache_ok = True

    def encode(self, value: Any) -> bytes:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()

    def decode(self, data: bytes) -> Any:
        return json.loads(data)
