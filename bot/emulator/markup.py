"""Telegram's HTML parse mode: plain text plus message entities, with Telegram's error texts."""

import re
from dataclasses import dataclass
from typing import Any

JsonDict = dict[str, Any]

_TAG = re.compile(r"<(/?)([a-zA-Z][\w-]*)([^>]*)>")
_ATTR = re.compile(r"""([a-zA-Z-]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?""")
_CHAR_REF = re.compile(r"&(#[xX][0-9a-fA-F]{1,6}|#[0-9]{1,7}|[a-zA-Z]+);")
_NAMED_REFS = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_SIMPLE_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "code": "code",
    "pre": "pre",
}


class EntityParseError(ValueError):
    """The text is not valid Telegram HTML; the message is Telegram's own wording."""


def utf16_len(text: str) -> int:
    """Length as Telegram counts it: entity offsets and length limits use UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


@dataclass
class _Open:
    name: str
    offset: int
    entity: JsonDict | None
    code_language: str | None = None


def parse_html(source: str) -> tuple[str, list[JsonDict]]:
    """Strip the tags of ``source`` and return the plain text with its message entities."""
    out: list[str] = []
    length = 0
    stack: list[_Open] = []
    entities: list[JsonDict] = []
    pos = 0
    while pos < len(source):
        char = source[pos]
        if char == "&":
            ref = _CHAR_REF.match(source, pos)
            piece = _decode_ref(ref) if ref else "&"
            pos = ref.end() if ref else pos + 1
        elif char == "<":
            tag = _TAG.match(source, pos)
            byte_offset = len(source[:pos].encode())
            if tag is None:
                raise EntityParseError(f'Unsupported start tag "" at byte offset {byte_offset}')
            pos = tag.end()
            closing, name, attrs = tag.group(1) == "/", tag.group(2).lower(), tag.group(3)
            if closing:
                _close(stack, name, byte_offset, length, entities)
            else:
                stack.append(_open(name, _parse_attrs(attrs), byte_offset, length))
            continue
        else:
            piece = char
            pos += 1
        out.append(piece)
        length += utf16_len(piece)
    if stack:
        raise EntityParseError(
            f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"'
        )
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def trim(text: str, entities: list[JsonDict]) -> tuple[str, list[JsonDict]]:
    """Drop surrounding whitespace as Telegram does, keeping entities aligned with the text."""
    stripped = text.strip()
    if stripped == text:
        return text, entities
    shift = utf16_len(text[: len(text) - len(text.lstrip())])
    end = utf16_len(stripped)
    kept: list[JsonDict] = []
    for entity in entities:
        start = max(entity["offset"] - shift, 0)
        stop = min(entity["offset"] + entity["length"] - shift, end)
        if stop > start:
            kept.append({**entity, "offset": start, "length": stop - start})
    return stripped, kept


def _decode_ref(ref: re.Match[str]) -> str:
    body = ref.group(1)
    if body.startswith("#"):
        code = int(body[2:], 16) if body[1] in "xX" else int(body[1:])
        # Out-of-range code points stay literal rather than failing the whole message.
        return chr(code) if code <= 0x10FFFF else ref.group(0)
    # Telegram leaves unknown named references as literal text.
    return _NAMED_REFS.get(body, ref.group(0))


def _parse_attrs(raw: str) -> dict[str, str]:
    return {
        m.group(1).lower(): next((g for g in m.groups()[1:] if g is not None), "")
        for m in _ATTR.finditer(raw)
    }


def _open(name: str, attrs: dict[str, str], byte_offset: int, offset: int) -> _Open:
    if name in _SIMPLE_TAGS:
        opened = _Open(name, offset, {"type": _SIMPLE_TAGS[name]})
        if name == "code" and attrs.get("class", "").startswith("language-"):
            opened.code_language = attrs["class"].removeprefix("language-")
        return opened
    if name == "span" and attrs.get("class") == "tg-spoiler":
        return _Open(name, offset, {"type": "spoiler"})
    if name == "a":
        # An anchor without href is accepted by Telegram but produces no entity.
        href = attrs.get("href")
        return _Open(name, offset, {"type": "text_link", "url": href} if href else None)
    if name == "blockquote":
        kind = "expandable_blockquote" if "expandable" in attrs else "blockquote"
        return _Open(name, offset, {"type": kind})
    if name == "tg-emoji" and "emoji-id" in attrs:
        return _Open(name, offset, {"type": "custom_emoji", "custom_emoji_id": attrs["emoji-id"]})
    raise EntityParseError(f'Unsupported start tag "{name}" at byte offset {byte_offset}')


def _close(
    stack: list[_Open], name: str, byte_offset: int, offset: int, entities: list[JsonDict]
) -> None:
    if not stack:
        raise EntityParseError(f"Unexpected end tag at byte offset {byte_offset}")
    opened = stack.pop()
    if opened.name != name:
        raise EntityParseError(
            f'Unmatched end tag at byte offset {byte_offset}, expected "</{opened.name}>", '
            f'found "</{name}>"'
        )
    entity = opened.entity
    if entity is None or offset == opened.offset:
        return
    # <pre><code class="language-x"> is a single pre entity carrying the language.
    if opened.code_language and stack and stack[-1].name == "pre" and stack[-1].entity:
        stack[-1].entity["language"] = opened.code_language
        return
    entities.append({**entity, "offset": opened.offset, "length": offset - opened.offset})
