"""Chats, messages, files and pending updates: the world the emulated Bot API acts on."""

import asyncio
import secrets
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

JsonDict = dict[str, Any]

_FILE_DIRS = {
    "photo": ("photos", "jpg"),
    "document": ("documents", "bin"),
    "video": ("videos", "mp4"),
    "voice": ("voice", "oga"),
    "audio": ("music", "mp3"),
    "sticker": ("stickers", "webp"),
}
_PRIVATE_CHAT_KEYS = ("first_name", "last_name", "username")


class ApiError(Exception):
    """A Bot API failure, answered as ``{"ok": false, "error_code": ..., ...}``."""

    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after

    def to_json(self) -> JsonDict:
        """The response body Telegram would send."""
        body: JsonDict = {"ok": False, "error_code": self.code, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def bad_request(reason: str) -> ApiError:
    """A 400 with Telegram's ``Bad Request:`` prefix."""
    return ApiError(400, f"Bad Request: {reason}")


@dataclass
class EmuUser:
    """A Telegram user (or the bot itself)."""

    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None
    is_bot: bool = False
    blocked_bot: bool = False

    def to_json(self) -> JsonDict:
        """The ``User`` object."""
        data: JsonDict = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            if (value := getattr(self, key)) is not None:
                data[key] = value
        return data


@dataclass
class EmuChat:
    """A chat the bot is in: the private chat with a user, or a group."""

    id: int
    type: str
    title: str | None = None
    user: EmuUser | None = None
    # Telegram gives each chat an opaque instance id that callback queries carry.
    instance: str = field(default_factory=lambda: str(secrets.randbits(63)))
    next_message_id: int = 1
    reply_keyboard: list[list[str]] | None = None

    @property
    def is_group(self) -> bool:
        """Whether the chat is a group or supergroup."""
        return self.type in ("group", "supergroup")

    def to_json(self) -> JsonDict:
        """The ``Chat`` object."""
        data: JsonDict = {"id": self.id, "type": self.type}
        if self.user is not None:
            data.update({k: v for k, v in self.user.to_json().items() if k in _PRIVATE_CHAT_KEYS})
        if self.title is not None:
            data["title"] = self.title
        return data


@dataclass(frozen=True)
class StoredFile:
    """Uploaded bytes under an opaque, random file id."""

    file_id: str
    file_unique_id: str
    kind: str
    data: bytes
    file_path: str
    file_name: str | None = None
    mime_type: str | None = None
    width: int = 0
    height: int = 0
    duration: int = 0

    def to_json(self) -> JsonDict:
        """The media object (``PhotoSize``, ``Document``, ``Video``...) describing the file."""
        data: JsonDict = {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": len(self.data),
        }
        if self.kind in ("photo", "video", "sticker"):
            data.update(width=self.width, height=self.height)
        if self.kind in ("video", "voice", "audio"):
            data["duration"] = self.duration
        if self.kind == "sticker":
            data.update(type="regular", is_animated=False, is_video=False, emoji="👍")
        if self.file_name is not None and self.kind in ("document", "video", "audio"):
            data["file_name"] = self.file_name
        if self.mime_type is not None and self.kind not in ("photo", "sticker"):
            data["mime_type"] = self.mime_type
        return data


@dataclass(frozen=True)
class Button:
    """One inline keyboard button: its label and callback data (or URL)."""

    label: str
    data: str | None = None
    url: str | None = None


@dataclass(eq=False)
class EmuMessage:
    """A message in a chat, kept live: edits and deletions update this very object."""

    message_id: int
    chat_id: int
    from_bot: bool
    sender: int | None
    date: int
    kind: str = "text"
    text: str | None = None
    caption: str | None = None
    reply_to: int | None = None
    edits: int = 0
    deleted: bool = False
    silent: bool = False
    pinned: bool = False
    media_group_id: str | None = None
    edit_date: int | None = None
    protected: bool = False
    entities: list[JsonDict] = field(default_factory=list, repr=False)
    reply_markup: JsonDict | None = field(default=None, repr=False)
    reply_keyboard: list[list[str]] | None = field(default=None, repr=False)
    file: StoredFile | None = field(default=None, repr=False)
    # Kind-specific JSON that is not a file: contact, location, forward_origin.
    payload: JsonDict = field(default_factory=dict, repr=False)
    chat_json: JsonDict = field(default_factory=dict, repr=False)
    from_json: JsonDict = field(default_factory=dict, repr=False)
    reply_target: "EmuMessage | None" = field(default=None, repr=False)

    @property
    def file_id(self) -> str | None:
        """The file id of the attached media, if any."""
        return self.file.file_id if self.file else None

    @property
    def file_bytes(self) -> bytes | None:
        """The stored bytes of the attached media, if any."""
        return self.file.data if self.file else None

    @property
    def content(self) -> str:
        """The text, or else the caption, or else an empty string."""
        return self.text or self.caption or ""

    @property
    def buttons(self) -> list[list[Button]]:
        """The inline keyboard as rows of buttons; empty without one."""
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        return [
            [Button(b["text"], b.get("callback_data"), b.get("url")) for b in row] for row in rows
        ]

    def button_labels(self) -> list[str]:
        """Every inline button label, row by row."""
        return [button.label for row in self.buttons for button in row]

    @property
    def raw(self) -> JsonDict:
        """The ``Message`` object as the Bot API returns it."""
        return self._json(with_reply=True)

    def _json(self, *, with_reply: bool) -> JsonDict:
        data: JsonDict = {
            "message_id": self.message_id,
            "date": self.date,
            "chat": self.chat_json,
            "from": self.from_json,
        }
        if self.edit_date is not None:
            data["edit_date"] = self.edit_date
        if self.media_group_id is not None:
            data["media_group_id"] = self.media_group_id
        if self.protected:
            data["has_protected_content"] = True
        if self.text is not None:
            data["text"] = self.text
            if self.entities:
                data["entities"] = self.entities
        if self.caption is not None:
            data["caption"] = self.caption
            if self.entities:
                data["caption_entities"] = self.entities
        if self.file is not None:
            media = self.file.to_json()
            data[self.kind] = [media] if self.kind == "photo" else media
        data.update(self.payload)
        if with_reply and self.reply_target is not None:
            # Telegram nests only one level of replies.
            data["reply_to_message"] = self.reply_target._json(with_reply=False)
        if self.reply_markup is not None:
            data["reply_markup"] = self.reply_markup
        return data


@dataclass(frozen=True)
class ApiCall:
    """One Bot API request as the emulator answered it."""

    method: str
    params: JsonDict
    time: float
    status: int
    description: str | None = None
    uploads: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether the call succeeded."""
        return self.status == 200


class Notifier:
    """Wakes every waiter on each state change.

    asyncio.Condition would need its lock to notify, which synchronous mutators (block_bot,
    HTTP handlers between awaits) cannot take; one future per waiter gives the same wake-ups.
    """

    def __init__(self) -> None:
        self._waiters: set[asyncio.Future[None]] = set()

    def notify(self) -> None:
        """Wake all current waiters."""
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate()`` holds; bound it with ``asyncio.timeout``."""
        loop = asyncio.get_running_loop()
        while not predicate():
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.add(waiter)
            try:
                await waiter
            finally:
                self._waiters.discard(waiter)


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of PNG or JPEG bytes, None for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    if not data.startswith(b"\xff\xd8"):
        return None
    pos = 2
    while pos + 9 < len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        # SOF0..SOF15 carry the frame size; C4, C8 and CC share the range but are not frames.
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return width, height
        pos += 2 + length
    return None


class World:
    """All emulated state, shared by the HTTP side and the test side.

    ``clock`` gives the Unix time messages are dated with; a test may swap in its fake clock,
    so that Telegram's time limits (deleting within 48 hours) follow it.
    """

    def __init__(self, bot: EmuUser) -> None:
        self.bot = bot
        self.clock: Callable[[], float] = time.time
        self.users: dict[int, EmuUser] = {}
        self.chats: dict[int, EmuChat] = {}
        self.history: dict[int, list[EmuMessage]] = {}
        self.files: dict[str, StoredFile] = {}
        self.files_by_path: dict[str, StoredFile] = {}
        self.updates: list[JsonDict] = []
        self.allowed_updates: set[str] | None = None
        self.next_update_id = 1_000_001
        self.callback_queries: dict[str, bool] = {}
        self.callback_answers: list[JsonDict] = []
        self.changes = Notifier()
        self.on_bot_message: Callable[[EmuMessage, EmuMessage | None], None] | None = None

    def chat(self, chat_id: object) -> EmuChat:
        """The chat with this id, or Telegram's 400 for an unknown chat."""
        chat = self.chats.get(chat_id) if isinstance(chat_id, int) else None
        if chat is None:
            raise bad_request("chat not found")
        return chat

    def find(self, chat_id: int, message_id: int) -> EmuMessage | None:
        """A message that exists and is not deleted."""
        for message in self.history.get(chat_id, ()):
            if message.message_id == message_id and not message.deleted:
                return message
        return None

    def store_file(
        self,
        data: bytes,
        kind: str,
        *,
        file_name: str | None = None,
        mime_type: str | None = None,
        duration: int = 0,
        size: tuple[int, int] = (0, 0),
    ) -> StoredFile:
        """Keep uploaded bytes under a fresh random file id."""
        folder, default_ext = _FILE_DIRS[kind]
        ext = file_name.rsplit(".", 1)[-1] if file_name and "." in file_name else default_ext
        stored = StoredFile(
            file_id=secrets.token_urlsafe(32),
            file_unique_id=secrets.token_urlsafe(12),
            kind=kind,
            data=data,
            file_path=f"{folder}/file_{len(self.files)}.{ext}",
            file_name=file_name,
            mime_type=mime_type,
            width=size[0],
            height=size[1],
            duration=duration,
        )
        self.files[stored.file_id] = stored
        self.files_by_path[stored.file_path] = stored
        return stored

    def add_message(
        self, chat: EmuChat, author: EmuUser, *, reply_to: EmuMessage | None = None, **fields: Any
    ) -> EmuMessage:
        """Append a new message to ``chat``; ``fields`` are EmuMessage fields."""
        from_bot = author is self.bot
        message = EmuMessage(
            message_id=chat.next_message_id,
            chat_id=chat.id,
            from_bot=from_bot,
            sender=None if from_bot else author.id,
            date=int(self.clock()),
            reply_to=reply_to.message_id if reply_to else None,
            reply_target=reply_to,
            chat_json=chat.to_json(),
            from_json=author.to_json(),
            **fields,
        )
        chat.next_message_id += 1
        history = self.history.setdefault(chat.id, [])
        if from_bot and self.on_bot_message is not None:
            previous = next((m for m in reversed(history) if m.from_bot), None)
            self.on_bot_message(message, previous)
        history.append(message)
        self.changes.notify()
        return message

    def push_update(self, kind: str, payload: JsonDict) -> None:
        """Queue an update for getUpdates, unless the bot opted out of its type."""
        if self.allowed_updates is not None and kind not in self.allowed_updates:
            return
        self.updates.append({"update_id": self.next_update_id, kind: payload})
        self.next_update_id += 1
        self.changes.notify()
