"""The monthly message pack: load and check it, pick the next message, add the hotlines."""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from handlers.i18n import Catalogue
from handlers.settings import Ward

PACK: Final = Path(__file__).with_name("pack")
PACK_SIZE: Final = 12
MAX_CHARS: Final = 1000  # a whole message, hotline footer included, stays under this
# Room kept for the footer when the pack is checked without a ward: a title, three lines.
FOOTER_ALLOWANCE: Final = 160
_FRONT_MATTER: Final = re.compile(r"\A---\n(?P<head>.*?)\n---\n(?P<body>.*)\Z", re.DOTALL)
_KEY: Final = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
_FIELDS: Final = frozenset({"key", "topic", "image"})


class PackError(ValueError):
    """The pack cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True, slots=True)
class PackMessage:
    """One monthly message as written: its key, topic, optional image and Vietnamese text."""

    key: str
    topic: str
    body: str
    image: str | None = None


def _parse(path: Path) -> PackMessage:
    """Read one ``NN-name.md`` file: a short front matter, then the message."""
    match = _FRONT_MATTER.match(path.read_text(encoding="utf-8").replace("\r\n", "\n"))
    if match is None:
        raise PackError(f"{path.name}: starts without a front matter between --- lines")
    fields: dict[str, str] = {}
    for line in match["head"].splitlines():
        name, colon, value = line.partition(":")
        if not colon or name.strip() not in _FIELDS:
            raise PackError(f"{path.name}: {line!r} is not key, topic or image")
        fields[name.strip()] = value.strip()
    key, topic, body = fields.get("key", ""), fields.get("topic", ""), match["body"].strip()
    if not _KEY.fullmatch(key):
        raise PackError(f"{path.name}: key {key!r} is not lowercase letters, digits, dashes")
    if not topic or not body:
        raise PackError(f"{path.name}: the topic or the message is empty")
    image = fields.get("image") or None
    return PackMessage(key=key, topic=topic, body=body, image=None if image == "none" else image)


def load_pack(folder: Path = PACK) -> tuple[PackMessage, ...]:
    """Read and check the pack: twelve messages in file order, unique keys, short enough."""
    messages = tuple(_parse(path) for path in sorted(folder.glob("*.md")))
    if len(messages) != PACK_SIZE:
        raise PackError(f"{folder}: holds {len(messages)} messages, not {PACK_SIZE}")
    repeated = [key for key, n in Counter(m.key for m in messages).items() if n > 1]
    if repeated:
        raise PackError(f"{folder}: keys used more than once: {', '.join(repeated)}")
    for message in messages:
        if len(message.body) + FOOTER_ALLOWANCE >= MAX_CHARS:
            raise PackError(
                f"{message.key}: {len(message.body)} characters leave no room for the "
                f"hotlines (at most {MAX_CHARS - FOOTER_ALLOWANCE - 1})"
            )
    return messages


@functools.cache
def _default_catalogue() -> Catalogue:
    return Catalogue.load()


def footer(ward: Ward, language: str, catalogue: Catalogue | None = None) -> str:
    """Return the lines added to every message: the ward's hotlines and how to stop."""
    texts = catalogue or _default_catalogue()
    lines = [texts.text(language, "subscription.footer_hotlines", ward=ward.name)]
    lines += [
        texts.text(language, "menu.hotline", name=line.name, phone=line.phone)
        for line in ward.hotlines
    ]
    lines.append(texts.text(language, "subscription.footer_stop"))
    return "\n".join(lines)


def compose(
    message: PackMessage, ward: Ward, language: str, *, catalogue: Catalogue | None = None
) -> str:
    """Return the text residents receive: the message, then the ward's hotlines.

    Raises PackError when the ward's hotlines make it reach MAX_CHARS.
    """
    text = f"{message.body}\n\n{footer(ward, language, catalogue)}"
    if len(text) >= MAX_CHARS:
        raise PackError(
            f"{message.key}: {len(text)} characters with the hotlines of {ward.code}; "
            f"shorten the message or the hotline names (under {MAX_CHARS})"
        )
    return text


def next_message(
    used_keys: Sequence[str],
    month: str,
    pinned: Mapping[str, str] | None = None,
    *,
    pack: Sequence[PackMessage] | None = None,
) -> PackMessage:
    """Return the message for ``month`` ("2026-11"): the pinned one, else the next unsent.

    ``used_keys`` are the keys already sent, oldest first. Once every message has gone
    out, the round starts again with the ones sent the fewest times, in pack order.
    """
    messages = tuple(pack) if pack is not None else load_pack()
    by_key = {m.key: m for m in messages}
    chosen = (pinned or {}).get(month)
    if chosen is not None:
        if chosen not in by_key:
            raise PackError(f"{month} is pinned to {chosen!r}, which is not in the pack")
        return by_key[chosen]
    sent = Counter(key for key in used_keys if key in by_key)
    fewest = min(sent[m.key] for m in messages)
    return next(m for m in messages if sent[m.key] == fewest)
