"""The Bot API methods: decoded parameters in, Telegram's results and errors out."""

import asyncio
import contextlib
import itertools
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.emulator.markup import EntityParseError, parse_html, trim, utf16_len
from bot.emulator.state import (
    ApiError,
    EmuChat,
    EmuMessage,
    JsonDict,
    StoredFile,
    World,
    bad_request,
    image_size,
)
from bot.emulator.webhooks import WebhookSender

# PTB form-encodes every parameter and JSON-encodes the complex ones, so the names say how to
# decode them; JSON bodies arrive typed already and pass through the same coercions.
_JSON_FIELDS = frozenset(
    {
        "reply_markup",
        "media",
        "allowed_updates",
        "commands",
        "reply_parameters",
        "link_preview_options",
        "entities",
        "caption_entities",
        "message_ids",
        "scope",
    }
)
_INT_FIELDS = frozenset(
    {
        "from_chat_id",
        "message_id",
        "offset",
        "limit",
        "timeout",
        "reply_to_message_id",
        "message_thread_id",
        "cache_time",
        "duration",
        "width",
        "height",
        "max_connections",
        "user_id",
    }
)
_FLOAT_FIELDS = frozenset({"latitude", "longitude", "horizontal_accuracy"})
_BOOL_FIELDS = frozenset(
    {
        "disable_notification",
        "protect_content",
        "show_alert",
        "drop_pending_updates",
        "remove_caption",
        "has_spoiler",
        "allow_sending_without_reply",
        "supports_streaming",
        "disable_content_type_detection",
        "show_caption_above_media",
    }
)
_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
_COMMAND = re.compile(r"[a-z0-9_]{1,32}")
_MAX_TEXT = 4096
_MAX_CAPTION = 1024
_MAX_CALLBACK_DATA = 64
_MAX_DOWNLOAD = 20 * 1024 * 1024
# sendPhoto: width + height at most 10,000, and one side at most 20 times the other.
_MAX_PHOTO_SIDES = 10_000
_MAX_PHOTO_RATIO = 20
_DELETE_WINDOW = 48 * 3600
_ATTACH = "attach://"


@dataclass(frozen=True)
class Upload:
    """One file part of a multipart request."""

    file_name: str | None
    data: bytes
    mime_type: str | None


@dataclass
class Params:
    """Decoded request parameters plus the multipart file parts."""

    values: JsonDict
    uploads: dict[str, Upload] = field(default_factory=dict)

    def get(self, name: str) -> Any:
        """The value, or None when absent."""
        return self.values.get(name)

    def need(self, name: str) -> Any:
        """The value, or the 400 Telegram answers for a missing parameter."""
        value = self.values.get(name)
        if value is None or value == "":
            raise bad_request(f"{name} is empty")
        return value

    def flag(self, name: str) -> bool:
        """A boolean parameter, False when absent."""
        return bool(self.values.get(name))


def decode_params(raw: Mapping[str, object], uploads: dict[str, Upload]) -> Params:
    """Turn string-encoded request fields into typed values."""
    values: JsonDict = {}
    for name, value in raw.items():
        try:
            values[name] = _coerce(name, value)
        except ValueError as error:
            raise bad_request(f"can't parse {name}: {error}") from None
    return Params(values, uploads)


def _coerce(name: str, value: object) -> Any:
    if not isinstance(value, str):
        return value
    if name in _JSON_FIELDS:
        return json.loads(value)
    if name in _INT_FIELDS:
        return int(value)
    if name == "chat_id":
        # "@channelusername" is a valid chat_id; it just never matches an emulated chat.
        return int(value) if value.lstrip("-").isdigit() else value
    if name in _FLOAT_FIELDS:
        return float(value)
    if name in _BOOL_FIELDS:
        return value.lower() in ("true", "1")
    return value


Method = Callable[[Params], Awaitable[Any]]


class BotApi:
    """Implements each Bot API method on a World."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.webhook = WebhookSender(world)
        self.commands: dict[tuple[str, str], list[JsonDict]] = {}
        self.methods: dict[str, Method] = {
            "getMe": self.get_me,
            "getUpdates": self.get_updates,
            "setWebhook": self.set_webhook,
            "deleteWebhook": self.delete_webhook,
            "getWebhookInfo": self.get_webhook_info,
            "setMyCommands": self.set_my_commands,
            "getMyCommands": self.get_my_commands,
            "deleteMyCommands": self.delete_my_commands,
            "sendMessage": self.send_message,
            "sendPhoto": self._media_sender("photo"),
            "sendDocument": self._media_sender("document"),
            "sendVideo": self._media_sender("video"),
            "sendVoice": self._media_sender("voice"),
            "sendAudio": self._media_sender("audio"),
            "sendMediaGroup": self.send_media_group,
            "sendLocation": self.send_location,
            "sendChatAction": self.send_chat_action,
            "copyMessage": self.copy_message,
            "copyMessages": self.copy_messages,
            "forwardMessage": self.forward_message,
            "editMessageText": self.edit_message_text,
            "editMessageCaption": self.edit_message_caption,
            "editMessageReplyMarkup": self.edit_message_reply_markup,
            "deleteMessage": self.delete_message,
            "deleteMessages": self.delete_messages,
            "answerCallbackQuery": self.answer_callback_query,
            "getFile": self.get_file,
            "pinChatMessage": self.pin_chat_message,
            "unpinChatMessage": self.unpin_chat_message,
            "getChat": self.get_chat,
        }
        # Telegram matches method names case-insensitively.
        self._by_lower = {name.lower(): name for name in self.methods}
        self._poll_generation = 0
        self.open_polls = 0
        self.closing = False

    def resolve(self, name: str) -> str | None:
        """The canonical spelling of a method name, None if there is no such method."""
        return self._by_lower.get(name.lower())

    # Bot, updates and webhook

    async def get_me(self, p: Params) -> JsonDict:
        """getMe."""
        return {
            **self.world.bot.to_json(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def get_updates(self, p: Params) -> list[JsonDict]:
        """getUpdates with Telegram's offset confirmation and long polling."""
        if self.webhook.url:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        world = self.world
        offset = p.get("offset") or 0
        if offset < 0:
            del world.updates[: max(len(world.updates) + offset, 0)]
        else:
            world.updates[:] = [u for u in world.updates if u["update_id"] >= offset]
        allowed = p.get("allowed_updates")
        if allowed is not None:
            world.allowed_updates = set(allowed) or None
        limit = min(max(p.get("limit") or 100, 1), 100)
        timeout = max(p.get("timeout") or 0, 0)
        # A newer getUpdates ends an older one, as Telegram does; only one poller may exist.
        self._poll_generation += 1
        generation = self._poll_generation
        world.changes.notify()
        self.open_polls += 1
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await world.changes.wait_for(
                        lambda: (
                            bool(world.updates)
                            or generation != self._poll_generation
                            or self.closing
                        )
                    )
        finally:
            self.open_polls -= 1
            world.changes.notify()
        if generation != self._poll_generation:
            raise ApiError(
                409,
                "Conflict: terminated by other getUpdates request; "
                "make sure that only one bot instance is running",
            )
        return world.updates[:limit]

    async def set_webhook(self, p: Params) -> bool:
        """setWebhook: queued updates are posted to the URL from now on, until delivered."""
        url = str(p.need("url"))
        secret = p.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise bad_request("secret token contains unallowed characters")
        allowed = p.get("allowed_updates")
        if allowed is not None:
            self.world.allowed_updates = set(allowed) or None
        if p.flag("drop_pending_updates"):
            self.world.updates.clear()
        self.webhook.set(url, None if secret is None else str(secret), p.get("max_connections"))
        return True

    async def delete_webhook(self, p: Params) -> bool:
        """deleteWebhook, optionally dropping pending updates."""
        self.webhook.clear()
        if p.flag("drop_pending_updates"):
            self.world.updates.clear()
        return True

    async def get_webhook_info(self, p: Params) -> JsonDict:
        """getWebhookInfo."""
        info: JsonDict = {
            "url": self.webhook.url,
            "has_custom_certificate": False,
            "pending_update_count": len(self.world.updates),
        }
        if self.webhook.url:
            info["max_connections"] = self.webhook.max_connections
            if self.world.allowed_updates is not None:
                info["allowed_updates"] = sorted(self.world.allowed_updates)
        if self.webhook.last_error_date is not None:
            info["last_error_date"] = self.webhook.last_error_date
            info["last_error_message"] = self.webhook.last_error_message
        return info

    async def set_my_commands(self, p: Params) -> bool:
        """setMyCommands with Telegram's command syntax rules."""
        commands = p.need("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise bad_request("BOT_COMMANDS_TOO_MUCH")
        for command in commands:
            if not _COMMAND.fullmatch(str(command.get("command", ""))):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise bad_request("command description is empty")
        self.commands[self._commands_key(p)] = [
            {"command": c["command"], "description": c["description"]} for c in commands
        ]
        return True

    async def get_my_commands(self, p: Params) -> list[JsonDict]:
        """getMyCommands."""
        return self.commands.get(self._commands_key(p), [])

    async def delete_my_commands(self, p: Params) -> bool:
        """deleteMyCommands."""
        self.commands.pop(self._commands_key(p), None)
        return True

    @staticmethod
    def _commands_key(p: Params) -> tuple[str, str]:
        scope = p.get("scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), p.get("language_code") or ""

    # Sending

    async def send_message(self, p: Params) -> JsonDict:
        """sendMessage."""
        chat = self._target(p)
        text, entities = _formatted(p, "text", "entities")
        if not text:
            raise bad_request("message text is empty")
        if utf16_len(text) > _MAX_TEXT:
            raise bad_request("message is too long")
        return self._post(chat, p, kind="text", text=text, entities=entities).raw

    def _media_sender(self, kind: str) -> Method:
        async def send(p: Params) -> JsonDict:
            chat = self._target(p)
            caption, entities = _caption(p)
            stored = self._file_input(p, kind, p.get(kind))
            return self._post(
                chat, p, kind=kind, caption=caption, entities=entities, file=stored
            ).raw

        return send

    async def send_media_group(self, p: Params) -> list[JsonDict]:
        """sendMediaGroup: one message per item sharing a fresh media_group_id."""
        chat = self._target(p)
        media = p.need("media")
        if not isinstance(media, list) or not 2 <= len(media) <= 10:
            raise bad_request("wrong number of media in the album: must be between 2 and 10")
        items = []
        for item in media:
            kind = item.get("type")
            if kind not in ("photo", "video", "document", "audio"):
                raise bad_request("unsupported media type in the album")
            item_params = Params(item, p.uploads)
            caption, entities = _caption(item_params)
            items.append((kind, caption, entities, self._file_input(p, kind, item["media"])))
        group_id = str(secrets.randbits(60))
        return [
            self._post(
                chat,
                p,
                kind=kind,
                caption=caption,
                entities=entities,
                file=stored,
                media_group_id=group_id,
                allow_markup=False,
            ).raw
            for kind, caption, entities, stored in items
        ]

    async def send_location(self, p: Params) -> JsonDict:
        """sendLocation."""
        chat = self._target(p)
        latitude, longitude = float(p.need("latitude")), float(p.need("longitude"))
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            raise bad_request("wrong location specified")
        location = {"latitude": latitude, "longitude": longitude}
        return self._post(chat, p, kind="location", payload={"location": location}).raw

    async def send_chat_action(self, p: Params) -> bool:
        """sendChatAction: validated and otherwise only visible in the call log."""
        self._target(p)
        if p.get("action") not in _CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        return True

    async def copy_message(self, p: Params) -> JsonDict:
        """copyMessage: same content, no trace of where it came from."""
        chat = self._target(p)
        source = self._source(p, p.need("message_id"), "copy")
        caption_given = "caption" in p.values
        caption, entities = _caption(p) if caption_given else (source.caption, source.entities)
        if p.flag("remove_caption"):
            caption, entities = None, []
        return {"message_id": self._copy(chat, p, source, caption, entities).message_id}

    async def copy_messages(self, p: Params) -> list[JsonDict]:
        """copyMessages: missing ids are skipped, albums stay together."""
        chat = self._target(p)
        ids = p.need("message_ids")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise bad_request("message_ids must contain 1-100 message identifiers")
        if any(a >= b for a, b in itertools.pairwise(ids)):
            raise bad_request("message identifiers must be in strictly increasing order")
        from_chat = self.world.chat(p.need("from_chat_id"))
        groups: dict[str, str] = {}
        copied = []
        for message_id in ids:
            source = self.world.find(from_chat.id, message_id)
            if source is None:
                continue
            self._check_copyable(source, "copy")
            keep = not p.flag("remove_caption")
            copy = self._copy(
                chat,
                p,
                source,
                source.caption if keep else None,
                source.entities if keep or source.kind == "text" else [],
                media_group_id=groups.setdefault(source.media_group_id, str(secrets.randbits(60)))
                if source.media_group_id
                else None,
            )
            copied.append({"message_id": copy.message_id})
        return copied

    async def forward_message(self, p: Params) -> JsonDict:
        """forwardMessage: a copy that names the original sender in forward_origin."""
        chat = self._target(p)
        source = self._source(p, p.need("message_id"), "forward")
        origin = {"type": "user", "sender_user": source.from_json, "date": source.date}
        return self._post(
            chat,
            p,
            kind=source.kind,
            text=source.text,
            caption=source.caption,
            entities=list(source.entities),
            file=source.file,
            payload={**source.payload, "forward_origin": origin},
            allow_markup=False,
            allow_reply=False,
        ).raw

    def _copy(
        self,
        chat: EmuChat,
        p: Params,
        source: EmuMessage,
        caption: str | None,
        entities: list[JsonDict],
        media_group_id: str | None = None,
    ) -> EmuMessage:
        payload = {k: v for k, v in source.payload.items() if k != "forward_origin"}
        return self._post(
            chat,
            p,
            kind=source.kind,
            text=source.text,
            caption=caption if source.kind != "text" else None,
            entities=list(entities if source.kind != "text" else source.entities),
            file=source.file,
            payload=payload,
            media_group_id=media_group_id,
        )

    def _source(self, p: Params, message_id: int, verb: str) -> EmuMessage:
        from_chat = self.world.chat(p.need("from_chat_id"))
        source = self.world.find(from_chat.id, message_id)
        if source is None:
            raise bad_request(f"message to {verb} not found")
        self._check_copyable(source, verb)
        return source

    @staticmethod
    def _check_copyable(source: EmuMessage, verb: str) -> None:
        if source.protected:
            raise bad_request(f"message can't be {verb}ed")

    def _target(self, p: Params) -> EmuChat:
        chat = self.world.chat(p.need("chat_id"))
        if chat.user is not None and chat.user.blocked_bot:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return chat

    def _post(
        self,
        chat: EmuChat,
        p: Params,
        *,
        kind: str,
        allow_markup: bool = True,
        allow_reply: bool = True,
        **fields: Any,
    ) -> EmuMessage:
        reply_to = self._reply_target(chat, p) if allow_reply else None
        markup, keyboard = _reply_markup(p) if allow_markup else (None, None)
        if keyboard is not None:
            chat.reply_keyboard = keyboard or None
        return self.world.add_message(
            chat,
            self.world.bot,
            reply_to=reply_to,
            kind=kind,
            silent=p.flag("disable_notification"),
            protected=p.flag("protect_content"),
            reply_markup=markup,
            reply_keyboard=keyboard,
            **fields,
        )

    def _reply_target(self, chat: EmuChat, p: Params) -> EmuMessage | None:
        reply = p.get("reply_parameters") or {}
        message_id = reply.get("message_id", p.get("reply_to_message_id"))
        if message_id is None:
            return None
        target = self.world.find(int(reply.get("chat_id", chat.id)), int(message_id))
        if target is None and not reply.get(
            "allow_sending_without_reply", p.flag("allow_sending_without_reply")
        ):
            raise bad_request("message to be replied not found")
        return target

    def _file_input(self, p: Params, kind: str, value: object) -> StoredFile:
        """The file a send refers to: a multipart part, an attach:// part or a file id."""
        # A lone upload is a part named after the parameter, which PTB then leaves out.
        upload = p.uploads.get(kind) if value is None else None
        if isinstance(value, str) and value.startswith(_ATTACH):
            upload = p.uploads.get(value.removeprefix(_ATTACH))
            if upload is None:
                raise bad_request("wrong file identifier/HTTP URL specified")
        if upload is not None:
            return self._store_upload(p, upload, kind)
        if value is None:
            raise bad_request(f"there is no {kind} in the request")
        stored = self.world.files.get(str(value))
        if stored is None:
            raise bad_request("wrong file identifier/HTTP URL specified")
        if stored.kind != kind:
            raise bad_request(f"can't use file of type {stored.kind.title()} as {kind.title()}")
        return stored

    def _store_upload(self, p: Params, upload: Upload, kind: str) -> StoredFile:
        size = (p.get("width") or 0, p.get("height") or 0)
        if kind == "photo":
            # Telegram re-encodes photos and rejects what it cannot decode.
            sniffed = image_size(upload.data)
            if sniffed is None:
                raise bad_request("IMAGE_PROCESS_FAILED")
            width, height = size = sniffed
            if width + height > _MAX_PHOTO_SIDES or max(size) > _MAX_PHOTO_RATIO * min(size):
                raise bad_request("PHOTO_INVALID_DIMENSIONS")
        return self.world.store_file(
            upload.data,
            kind,
            file_name=upload.file_name if kind != "photo" else None,
            mime_type=upload.mime_type,
            duration=p.get("duration") or 0,
            size=size,
        )

    # Editing and deleting

    async def edit_message_text(self, p: Params) -> JsonDict:
        """editMessageText; omitting reply_markup removes the keyboard, as in Telegram."""
        message = self._editable(p)
        if message.kind != "text":
            raise bad_request("there is no text in the message to edit")
        text, entities = _formatted(p, "text", "entities")
        if not text:
            raise bad_request("message text is empty")
        if utf16_len(text) > _MAX_TEXT:
            raise bad_request("message is too long")
        markup, _ = _reply_markup(p, inline_only=True)
        return self._apply_edit(message, text=text, entities=entities, reply_markup=markup)

    async def edit_message_caption(self, p: Params) -> JsonDict:
        """editMessageCaption; omitting the caption removes it."""
        message = self._editable(p)
        if message.kind in ("text", "location", "contact", "sticker"):
            raise bad_request("there is no caption in the message to edit")
        caption, entities = _caption(p)
        markup, _ = _reply_markup(p, inline_only=True)
        return self._apply_edit(message, caption=caption, entities=entities, reply_markup=markup)

    async def edit_message_reply_markup(self, p: Params) -> JsonDict:
        """editMessageReplyMarkup; omitting reply_markup removes the keyboard."""
        message = self._editable(p)
        markup, _ = _reply_markup(p, inline_only=True)
        return self._apply_edit(message, reply_markup=markup)

    def _editable(self, p: Params) -> EmuMessage:
        if p.get("inline_message_id") is not None:
            raise bad_request("inline messages are not emulated")
        chat = self.world.chat(p.need("chat_id"))
        message = self.world.find(chat.id, p.need("message_id"))
        if message is None:
            raise bad_request("message to edit not found")
        if not message.from_bot:
            raise bad_request("message can't be edited")
        return message

    def _apply_edit(self, message: EmuMessage, **changes: Any) -> JsonDict:
        if all(getattr(message, name) == value for name, value in changes.items()):
            raise bad_request(
                "message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message"
            )
        for name, value in changes.items():
            setattr(message, name, value)
        message.edits += 1
        message.edit_date = int(time.time())
        self.world.changes.notify()
        return message.raw

    def _check_deletable(self, message: EmuMessage) -> None:
        # Bots may delete messages only within 48 hours of sending (channels aside, which the
        # emulator does not have).
        if self.world.clock() - message.date >= _DELETE_WINDOW:
            raise bad_request("message can't be deleted")

    async def delete_message(self, p: Params) -> bool:
        """deleteMessage."""
        chat = self.world.chat(p.need("chat_id"))
        message = self.world.find(chat.id, p.need("message_id"))
        if message is None:
            raise bad_request("message to delete not found")
        self._check_deletable(message)
        message.deleted = True
        self.world.changes.notify()
        return True

    async def delete_messages(self, p: Params) -> bool:
        """deleteMessages: ids that are already gone are skipped.

        Telegram does not document a batch holding a message too old to delete; the emulator
        takes the strict reading and refuses the whole batch, deleting none of it.
        """
        chat = self.world.chat(p.need("chat_id"))
        ids = p.need("message_ids")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise bad_request("message_ids must contain 1-100 message identifiers")
        found = [m for i in ids if (m := self.world.find(chat.id, i)) is not None]
        for message in found:
            self._check_deletable(message)
        for message in found:
            message.deleted = True
        self.world.changes.notify()
        return True

    async def pin_chat_message(self, p: Params) -> bool:
        """pinChatMessage."""
        chat = self.world.chat(p.need("chat_id"))
        message = self.world.find(chat.id, p.need("message_id"))
        if message is None:
            raise bad_request("message to pin not found")
        message.pinned = True
        self.world.changes.notify()
        return True

    async def unpin_chat_message(self, p: Params) -> bool:
        """unpinChatMessage: the given message, or else the most recently pinned one."""
        chat = self.world.chat(p.need("chat_id"))
        pinned = [m for m in self.world.history.get(chat.id, []) if m.pinned and not m.deleted]
        message_id = p.get("message_id")
        if message_id is not None:
            pinned = [m for m in pinned if m.message_id == message_id]
        if not pinned:
            raise bad_request("message to unpin not found")
        pinned[-1].pinned = False
        self.world.changes.notify()
        return True

    # Callbacks, files, chats

    async def answer_callback_query(self, p: Params) -> bool:
        """answerCallbackQuery: each query can be answered once."""
        query_id = str(p.need("callback_query_id"))
        if self.world.callback_queries.get(query_id, True):
            raise bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        text = p.get("text")
        if text is not None and len(text) > 200:
            raise bad_request("MESSAGE_TOO_LONG")
        self.world.callback_queries[query_id] = True
        self.world.callback_answers.append(
            {
                "callback_query_id": query_id,
                "text": text,
                "show_alert": p.flag("show_alert"),
                "url": p.get("url"),
            }
        )
        self.world.changes.notify()
        return True

    async def get_file(self, p: Params) -> JsonDict:
        """getFile: the path to download the bytes from."""
        stored = self.world.files.get(str(p.need("file_id")))
        if stored is None:
            raise bad_request("wrong file identifier/HTTP URL specified")
        if len(stored.data) > _MAX_DOWNLOAD:
            raise bad_request("file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
            "file_path": stored.file_path,
        }

    async def get_chat(self, p: Params) -> JsonDict:
        """getChat: a ChatFullInfo with the fields PTB requires."""
        chat = self.world.chat(p.need("chat_id"))
        info: JsonDict = {
            **chat.to_json(),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }
        pinned = [m for m in self.world.history.get(chat.id, []) if m.pinned and not m.deleted]
        if pinned:
            info["pinned_message"] = pinned[-1].raw
        return info


def _formatted(p: Params, name: str, entities_name: str) -> tuple[str, list[JsonDict]]:
    """The text after applying parse_mode (HTML is parsed; Markdown is kept verbatim)."""
    text = str(p.get(name) or "")
    mode = str(p.get("parse_mode") or "")
    if mode.lower() == "html":
        try:
            text, entities = parse_html(text)
        except EntityParseError as error:
            raise bad_request(f"can't parse entities: {error}") from None
    elif mode.lower() in ("", "markdown", "markdownv2"):
        entities = list(p.get(entities_name) or [])
    else:
        raise bad_request("unsupported parse_mode")
    return trim(text, entities)


def _caption(p: Params) -> tuple[str | None, list[JsonDict]]:
    caption, entities = _formatted(p, "caption", "caption_entities")
    if utf16_len(caption) > _MAX_CAPTION:
        raise bad_request("message caption is too long")
    return caption or None, entities


def _reply_markup(
    p: Params, *, inline_only: bool = False
) -> tuple[JsonDict | None, list[list[str]] | None]:
    """The inline keyboard to store and, for reply keyboards, the labels ([] removes one)."""
    markup = p.get("reply_markup")
    if not markup:
        return None, None
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup:
        _validate_inline_keyboard(markup["inline_keyboard"])
        return {"inline_keyboard": markup["inline_keyboard"]}, None
    if inline_only:
        raise bad_request("inline keyboard expected")
    if "keyboard" in markup:
        rows = [
            [b if isinstance(b, str) else str(b.get("text", "")) for b in row]
            for row in markup["keyboard"]
        ]
        return None, rows
    if markup.get("remove_keyboard"):
        return None, []
    return None, None


def _validate_inline_keyboard(rows: object) -> None:
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request("can't parse inline keyboard button: InlineKeyboardButton expected")
    for row in rows:
        for button in row:
            if not isinstance(button, dict) or not button.get("text"):
                raise bad_request("BUTTON_TEXT_EMPTY")
            data = button.get("callback_data")
            if "callback_data" in button and not (
                isinstance(data, str) and 1 <= len(data.encode()) <= _MAX_CALLBACK_DATA
            ):
                raise bad_request("BUTTON_DATA_INVALID")
            if "url" in button and not button["url"]:
                raise bad_request("BUTTON_URL_INVALID")
            if len(button) == 1:
                raise bad_request("text buttons are unallowed in the inline keyboard")
