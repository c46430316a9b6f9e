"""What the page shows: each chat as Telegram would draw it, read from the emulator's world."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from bot.emulator import BotApiEmulator, EmuMessage
from bot.emulator.markup import EntityParseError, parse_html
from bot.playground.cast import Cast, DemoPerson

JsonDict = dict[str, Any]

# Enough of the latest button answers for the page to find the ones it is waiting for.
_ANSWERS_KEPT = 30


def snapshot(emulator: BotApiEmulator, cast: Cast) -> JsonDict:
    """The whole page's state, with a version that changes whenever anything shown does."""
    prompts = _force_reply_texts(emulator)
    state: JsonDict = {
        "bot": {"name": emulator.bot.first_name, "username": emulator.bot.username},
        "residents": [
            {**_person(person), "chat": _chat(emulator, person.id, prompts)}
            for person in cast.residents
        ],
        "groups": [
            {
                "id": group.id,
                "ward": group.ward,
                "title": group.title,
                "members": [_person(member) for member in group.members],
                "chat": _chat(emulator, group.id, prompts),
            }
            for group in cast.groups
        ],
        "answers": [
            {
                "query_id": answer["callback_query_id"],
                "text": answer.get("text") or "",
                "alert": bool(answer.get("show_alert")),
            }
            for answer in emulator.callback_answers[-_ANSWERS_KEPT:]
        ],
    }
    encoded = json.dumps(state, ensure_ascii=False, sort_keys=True).encode()
    state["version"] = hashlib.sha1(encoded, usedforsecurity=False).hexdigest()[:16]
    return state


def _person(person: DemoPerson) -> JsonDict:
    return {"id": person.id, "name": person.name, "role": person.role}


def _chat(emulator: BotApiEmulator, chat_id: int, prompts: dict[int, set[str]]) -> JsonDict:
    messages = [m for m in emulator.messages(chat_id) if not m.deleted]
    pinned = [m.message_id for m in messages if m.pinned]
    return {
        "id": chat_id,
        "messages": [_message(m, prompts.get(chat_id, set())) for m in messages],
        "keyboard": emulator.world.chats[chat_id].reply_keyboard,
        "pinned": pinned[-1] if pinned else None,
    }


def _message(message: EmuMessage, prompts: set[str]) -> JsonDict:
    sender = message.from_json
    data: JsonDict = {
        "id": message.message_id,
        "from_bot": message.from_bot,
        "sender": message.sender,
        "sender_name": " ".join(
            part for part in (sender.get("first_name"), sender.get("last_name")) if part
        ),
        "date": message.date,
        "kind": message.kind,
        "text": message.content,
        "entities": message.entities,
        "edited": message.edits > 0,
        "pinned": message.pinned,
        "silent": message.silent,
        "buttons": [
            [{"label": b.label, "data": b.data, "url": b.url} for b in row]
            for row in message.buttons
        ],
        "force_reply": message.from_bot and message.kind == "text" and message.content in prompts,
    }
    if message.reply_target is not None:
        target = message.reply_target
        data["reply_to"] = {
            "id": target.message_id,
            "name": target.from_json.get("first_name", ""),
            "text": target.content or _KIND_LABELS.get(target.kind, ""),
        }
    if message.file is not None:
        data["file"] = {
            "url": f"/api/files/{message.file.file_id}",
            "name": message.file.file_name,
            "width": message.file.width,
            "height": message.file.height,
        }
    location = message.payload.get("location")
    if location:
        data["location"] = {"latitude": location["latitude"], "longitude": location["longitude"]}
    return data


_KIND_LABELS = {
    "photo": "🖼 Ảnh",
    "video": "🎬 Video",
    "voice": "🎤 Ghi âm",
    "audio": "🎵 Âm thanh",
    "document": "📄 Tệp",
    "sticker": "Nhãn dán",
    "location": "📍 Vị trí",
    "contact": "👤 Danh bạ",
}


def _force_reply_texts(emulator: BotApiEmulator) -> dict[int, set[str]]:
    """Per chat, the texts the bot sent asking for a reply: Telegram apps open one for them."""
    # The emulator keeps only inline keyboards on a message; the request still says it.
    texts: dict[int, set[str]] = {}
    for call in emulator.calls_to("sendMessage"):
        markup = call.params.get("reply_markup")
        if not (call.ok and isinstance(markup, dict) and markup.get("force_reply")):
            continue
        text = str(call.params.get("text", ""))
        if str(call.params.get("parse_mode", "")).upper() == "HTML":
            try:
                text = parse_html(text)[0]
            except EntityParseError:
                continue
        texts.setdefault(call.params.get("chat_id", 0), set()).add(text.strip())
    return texts
