"""Text helpers: matching what residents type, with or without diacritics, and splitting."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Final

from handlers.events import Choice

_SPACES: Final = re.compile(r"\s+")
# NUL and the other C0 controls but tab and line breaks, DEL, and halves of surrogate pairs:
# PostgreSQL refuses NUL in text, and a lone surrogate cannot be encoded at all.
_UNSTORABLE: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_NOT_WORD: Final = re.compile(r"[^\w\s]", re.UNICODE)


def fold(text: str) -> str:
    """Lower-case ``text`` and drop diacritics, so "Ma túy" and "ma tuy" compare equal."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _SPACES.sub(" ", bare).strip().casefold()


def fold_label(label: str) -> str:
    """Fold a button label, also dropping emoji and punctuation around the words."""
    return _SPACES.sub(" ", _NOT_WORD.sub(" ", fold(label))).strip()


def match_choice(text: str, choices: Iterable[Choice], *, numbers: bool = True) -> Choice | None:
    """Return the choice a typed answer means: its number, its label, or its label sans accents.

    Channels without buttons show choices as a numbered list; residents answer with the
    number or by typing the label, often without diacritics.
    """
    flat = list(choices)
    typed = text.strip()
    # isdigit() also accepts "²" and "①", which int() refuses.
    if numbers and typed.isascii() and typed.isdigit():
        index = int(typed)
        return flat[index - 1] if 1 <= index <= len(flat) else None
    wanted = fold_label(typed)
    if not wanted:
        return None
    for choice in flat:
        if fold_label(choice.label) == wanted:
            return choice
    return None


def storable(text: str) -> str:
    """Return ``text`` without the characters no database column or chat should receive."""
    return _UNSTORABLE.sub("", text)


def only_digits(text: str) -> str:
    """Return the digits of ``text``: receipts may be typed with spaces or dashes."""
    return "".join(ch for ch in text if ch.isdigit() and ch.isascii())


def utf16_length(text: str) -> int:
    """Return the length Telegram measures: UTF-16 code units (an emoji counts as two)."""
    return len(text.encode("utf-16-le")) // 2


def _fitting_prefix(text: str, limit: int) -> int:
    """Return how many characters of ``text`` fit in ``limit`` UTF-16 code units."""
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return index
    return len(text)


def split_text(text: str, limit: int) -> list[str]:
    """Split ``text`` into pieces of at most ``limit`` UTF-16 units, at line or word breaks."""
    pieces: list[str] = []
    rest = text
    while utf16_length(rest) > limit:
        fits = _fitting_prefix(rest, limit)
        cut = rest.rfind("\n", 0, fits)
        if cut < fits // 2:
            cut = rest.rfind(" ", 0, fits)
        if cut < fits // 2:
            cut = fits
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest or not pieces:
        pieces.append(rest)
    return pieces
