"""BotApiEmulator: the in-process Telegram that tests, the playground and benchmarks drive."""

import asyncio
import secrets
import time
from collections.abc import Callable
from typing import Any, Self

from aiohttp import web

from bot.emulator.api import BotApi, Params
from bot.emulator.faults import FaultInjector, Limits, RateLimiter, Stats
from bot.emulator.server import build_app
from bot.emulator.state import (
    ApiCall,
    ApiError,
    EmuChat,
    EmuMessage,
    EmuUser,
    JsonDict,
    StoredFile,
    World,
    image_size,
)

# Methods that put or change a message in a chat: the ones Telegram's send limits apply to.
_LIMITED = frozenset(
    {
        "sendMessage",
        "sendPhoto",
        "sendDocument",
        "sendVideo",
        "sendVoice",
        "sendAudio",
        "sendMediaGroup",
        "sendLocation",
        "copyMessage",
        "copyMessages",
        "forwardMessage",
        "editMessageText",
        "editMessageCaption",
        "editMessageReplyMarkup",
    }
)
# Stand-in photo bytes in tests are not real images, yet PhotoSize needs a size.
_DEFAULT_PHOTO_SIZE = (1280, 960)


class BotApiEmulator:
    """A Telegram Bot API server on localhost plus the users who talk to the bot.

    Messages returned by the inspection methods are live: later edits, deletions and pins by
    the bot show up on the same objects.
    """

    def __init__(
        self,
        token: str = "123456:TEST",
        bot_username: str = "homthu_test_bot",
        bot_name: str = "Hòm thư",
    ) -> None:
        self.token = token
        self.bot = EmuUser(
            id=int(token.split(":", 1)[0]),
            first_name=bot_name,
            username=bot_username,
            is_bot=True,
        )
        self.world = World(self.bot)
        self.api = BotApi(self.world)
        self.stats = Stats()
        self.world.on_bot_message = self.stats.record_bot_message
        self.calls: list[ApiCall] = []
        self.latency = 0.0
        self.limits: Limits | None = None
        self._faults = FaultInjector()
        self._limiter = RateLimiter()
        self._delivered: dict[int, int] = {}
        self._runner: web.AppRunner | None = None
        self._url = ""

    # Lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve on ``host:port``; port 0 picks a free one."""
        app = build_app(self.token, self._dispatch, self.world.files_by_path.get)
        # Cancelling handlers on disconnect ends long polls whose client has gone away.
        self._runner = web.AppRunner(
            app, handler_cancellation=True, access_log=None, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        sockets = self._runner.addresses
        bound_port = sockets[0][1]
        self._url = f"http://{host}:{bound_port}"

    async def stop(self) -> None:
        """Release open long polls, then shut the server down."""
        self.api.closing = True
        self.world.changes.notify()
        await self.api.webhook.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """What PTB's ``base_url`` needs; PTB appends the token."""
        return f"{self._started_url}/bot"

    @property
    def base_file_url(self) -> str:
        """What PTB's ``base_file_url`` needs; PTB appends the token."""
        return f"{self._started_url}/file/bot"

    @property
    def _started_url(self) -> str:
        if not self._url:
            raise RuntimeError("BotApiEmulator.start() has not been awaited")
        return self._url

    # Actors

    def add_user(
        self,
        user_id: int,
        first_name: str,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
    ) -> EmuUser:
        """A user who has started the bot; their private chat id equals their user id."""
        user = EmuUser(user_id, first_name, last_name, username, language_code)
        self.world.users[user_id] = user
        self.world.chats[user_id] = EmuChat(user_id, "private", user=user)
        return user

    def add_group(self, chat_id: int, title: str) -> EmuChat:
        """A group the bot is a member of; ``-100…`` ids are supergroups, as in Telegram."""
        kind = "supergroup" if str(chat_id).startswith("-100") else "group"
        chat = EmuChat(chat_id, kind, title=title)
        self.world.chats[chat_id] = chat
        return chat

    def block_bot(self, user: EmuUser) -> None:
        """The user blocks the bot: sends to them answer 403 from now on."""
        user.blocked_bot = True
        self.world.changes.notify()

    def unblock_bot(self, user: EmuUser) -> None:
        """The user unblocks the bot."""
        user.blocked_bot = False
        self.world.changes.notify()

    # User actions: each queues an update for getUpdates and returns the user's message

    async def send_text(
        self,
        user: EmuUser,
        text: str,
        chat: EmuChat | int | None = None,
        reply_to: int | None = None,
    ) -> EmuMessage:
        """The user writes ``text``; ``chat`` None means their private chat with the bot."""
        return self._user_message(user, chat, reply_to, kind="text", text=text)

    async def send_command(
        self, user: EmuUser, command: str, args: str = "", chat: EmuChat | int | None = None
    ) -> EmuMessage:
        """The user sends ``/command args`` with the bot_command entity Telegram adds."""
        text = f"{command} {args}" if args else command
        entity = {
            "type": "bot_command",
            "offset": 0,
            "length": len(command.encode("utf-16-le")) // 2,
        }
        return self._user_message(user, chat, None, kind="text", text=text, entities=[entity])

    async def send_photo(
        self,
        user: EmuUser,
        data: bytes,
        caption: str | None = None,
        media_group_id: str | None = None,
        chat: EmuChat | int | None = None,
    ) -> EmuMessage:
        """The user sends a photo; real PNG/JPEG bytes get their real size."""
        stored = self.world.store_file(data, "photo", size=image_size(data) or _DEFAULT_PHOTO_SIZE)
        return self._user_file(user, chat, stored, caption, media_group_id)

    async def send_document(
        self,
        user: EmuUser,
        data: bytes,
        file_name: str = "file.bin",
        mime_type: str = "application/octet-stream",
        caption: str | None = None,
        chat: EmuChat | int | None = None,
    ) -> EmuMessage:
        """The user sends a file as a document."""
        stored = self.world.store_file(data, "document", file_name=file_name, mime_type=mime_type)
        return self._user_file(user, chat, stored, caption)

    async def send_video(
        self,
        user: EmuUser,
        data: bytes,
        caption: str | None = None,
        duration: int = 1,
        media_group_id: str | None = None,
        chat: EmuChat | int | None = None,
    ) -> EmuMessage:
        """The user sends a video."""
        stored = self.world.store_file(
            data, "video", mime_type="video/mp4", duration=duration, size=(640, 360)
        )
        return self._user_file(user, chat, stored, caption, media_group_id)

    async def send_voice(
        self,
        user: EmuUser,
        data: bytes,
        duration: int = 1,
        chat: EmuChat | int | None = None,
    ) -> EmuMessage:
        """The user records a voice message."""
        stored = self.world.store_file(data, "voice", mime_type="audio/ogg", duration=duration)
        return self._user_file(user, chat, stored, None)

    async def send_audio(
        self,
        user: EmuUser,
        data: bytes,
        caption: str | None = None,
        duration: int = 1,
        file_name: str = "audio.mp3",
        chat: EmuChat | int | None = None,
    ) -> EmuMessage:
        """The user sends a music file."""
        stored = self.world.store_file(
            data, "audio", file_name=file_name, mime_type="audio/mpeg", duration=duration
        )
        return self._user_file(user, chat, stored, caption)

    async def send_sticker(self, user: EmuUser, chat: EmuChat | int | None = None) -> EmuMessage:
        """The user sends a sticker."""
        stored = self.world.store_file(b"RIFF\0\0\0\0WEBP", "sticker", size=(512, 512))
        return self._user_file(user, chat, stored, None)

    async def send_contact(
        self,
        user: EmuUser,
        phone: str,
        first_name: str,
        last_name: str | None = None,
        user_id: int | None = None,
        chat: EmuChat | int | None = None,
    ) -> EmuMessage:
        """The user shares a contact card (their own when ``user_id`` is their id)."""
        contact: JsonDict = {"phone_number": phone, "first_name": first_name}
        if last_name is not None:
            contact["last_name"] = last_name
        if user_id is not None:
            contact["user_id"] = user_id
        return self._user_message(user, chat, None, kind="contact", payload={"contact": contact})

    async def send_location(
        self,
        user: EmuUser,
        latitude: float,
        longitude: float,
        chat: EmuChat | int | None = None,
    ) -> EmuMessage:
        """The user shares a location."""
        location = {"latitude": latitude, "longitude": longitude}
        return self._user_message(
            user, chat, None, kind="location", payload={"location": location}
        )

    async def click(self, user: EmuUser, message: EmuMessage, label_or_data: str) -> str:
        """Press the inline button with this label or callback data; returns the query id."""
        if message.deleted:
            raise LookupError(f"message {message.message_id} was deleted")
        for row in message.buttons:
            for button in row:
                if label_or_data in (button.label, button.data) and button.data is not None:
                    return await self.click_data(user, message, button.data)
        raise LookupError(
            f"no callback button {label_or_data!r} on message {message.message_id}; "
            f"buttons: {[[(b.label, b.data) for b in row] for row in message.buttons]}"
        )

    async def click_data(self, user: EmuUser, message: EmuMessage, data: str) -> str:
        """A callback query with any ``data``, on the button or not (stale or forged presses)."""
        query_id = str(secrets.randbits(63))
        self.world.callback_queries[query_id] = False
        self.world.push_update(
            "callback_query",
            {
                "id": query_id,
                "from": user.to_json(),
                "message": message.raw,
                "chat_instance": self.world.chats[message.chat_id].instance,
                "data": data,
            },
        )
        return query_id

    def inject_update(self, fields: JsonDict) -> int:
        """Queue a raw update as given, whatever its shape; returns its update_id.

        Only ``update_id`` is added. The bot's ``allowed_updates`` is ignored, so that tests
        can show the bot what Telegram should never send it (a malformed or unasked-for
        update), and what a change of settings on Telegram's side could.
        """
        update_id = self.world.next_update_id
        self.world.updates.append({**fields, "update_id": update_id})
        self.world.next_update_id += 1
        self.world.changes.notify()
        return update_id

    def pending_updates(self) -> int:
        """How many updates the bot has not yet confirmed with getUpdates' offset."""
        return len(self.world.updates)

    # Inspection

    @property
    def callback_answers(self) -> list[JsonDict]:
        """Every answerCallbackQuery: callback_query_id, text, show_alert, url."""
        return self.world.callback_answers

    def messages(self, chat_id: int) -> list[EmuMessage]:
        """Every message in the chat, both directions, in order; deleted ones are marked."""
        return list(self.world.history.get(chat_id, []))

    def bot_messages(self, chat_id: int) -> list[EmuMessage]:
        """The bot's messages in the chat that are not deleted."""
        return [m for m in self.messages(chat_id) if m.from_bot and not m.deleted]

    def calls_to(self, method: str) -> list[ApiCall]:
        """The logged calls of one method."""
        return [call for call in self.calls if call.method == method]

    def reply_keyboard(self, chat_id: int) -> list[list[str]] | None:
        """The labels of the reply keyboard the bot currently shows in the chat."""
        return self.world.chats[chat_id].reply_keyboard

    def file_bytes(self, file_id: str) -> bytes:
        """The stored bytes behind a file id."""
        return self.world.files[file_id].data

    # Timeouts are arguments, not the caller's asyncio.timeout, so that failures dump the chat.
    async def next_bot_message(
        self,
        chat_id: int,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> EmuMessage:
        """The bot's next message in the chat not yet returned here, waiting up to ``timeout``.

        Deleted messages still count: the bot did send them.
        """

        def sent() -> list[EmuMessage]:
            return [m for m in self.world.history.get(chat_id, []) if m.from_bot]

        seen = self._delivered.get(chat_id, 0)
        try:
            async with asyncio.timeout(timeout):
                await self.world.changes.wait_for(lambda: len(sent()) > seen)
        except TimeoutError:
            raise TimeoutError(
                f"no new bot message in chat {chat_id} within {timeout}s\n{self.dump(chat_id)}"
            ) from None
        self._delivered[chat_id] = seen + 1
        return sent()[seen]

    async def wait_until(
        self,
        predicate: Callable[[Self], bool],
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> None:
        """Wait until ``predicate(emulator)`` holds, re-checking on every state change."""
        try:
            async with asyncio.timeout(timeout):
                await self.world.changes.wait_for(lambda: predicate(self))
        except TimeoutError:
            raise TimeoutError(f"condition not met within {timeout}s\n{self.dump()}") from None

    def dump(self, chat_id: int | None = None) -> str:
        """A readable transcript of one chat (or all) plus the last API calls, for failures."""
        chat_ids = [chat_id] if chat_id is not None else list(self.world.history)
        lines = []
        for cid in chat_ids:
            lines.append(f"chat {cid}:")
            for m in self.world.history.get(cid, []):
                who = "bot" if m.from_bot else f"user {m.sender}"
                flags = " [deleted]" if m.deleted else ""
                buttons = f" {[[b.label for b in row] for row in m.buttons]}" if m.buttons else ""
                lines.append(f"  #{m.message_id} {who} {m.kind}: {m.content!r}{buttons}{flags}")
        lines.append("last calls:")
        for call in self.calls[-10:]:
            outcome = "ok" if call.ok else f"{call.status} {call.description}"
            lines.append(f"  {call.method} {call.params} -> {outcome}")
        return "\n".join(lines)

    # Faults

    def fail(
        self,
        method: str,
        *,
        error_code: int,
        description: str | None = None,
        retry_after: int | None = None,
        times: int = 1,
        chat_id: int | None = None,
    ) -> None:
        """Make the next ``times`` calls of ``method`` (to ``chat_id``, if set) fail so."""
        canonical = self.api.resolve(method)
        if canonical is None:
            raise ValueError(f"unknown Bot API method {method!r}")
        self._faults.add(
            canonical,
            error_code=error_code,
            description=description,
            retry_after=retry_after,
            times=times,
            chat_id=chat_id,
        )

    # HTTP side

    async def _dispatch(self, name: str, params: Params) -> tuple[int, JsonDict]:
        started = time.time()
        method = self.api.resolve(name)
        if self.latency:
            await asyncio.sleep(self.latency)
        try:
            result = await self._call(method, params)
            status, body = 200, {"ok": True, "result": result}
        except ApiError as error:
            status, body = error.code, error.to_json()
        self.stats.record_call(method or name, status)
        self.calls.append(
            ApiCall(
                method=method or name,
                params=params.values,
                time=started,
                status=status,
                description=body.get("description"),
                uploads=tuple(params.uploads),
            )
        )
        self.world.changes.notify()
        return status, body

    async def _call(self, method: str | None, params: Params) -> Any:
        if method is None:
            raise ApiError(404, "Not Found")
        fault = self._faults.take(method, params.get("chat_id"))
        if fault is not None:
            raise fault
        chat = self.world.chats.get(params.get("chat_id"))
        if self.limits is None or method not in _LIMITED or chat is None:
            return await self.api.methods[method](params)
        now = time.monotonic()
        self._limiter.check(self.limits, chat.id, chat.is_group, now)
        result = await self.api.methods[method](params)
        self._limiter.record(
            self.limits,
            chat.id,
            chat.is_group,
            now,
            len(result) if isinstance(result, list) else 1,
        )
        return result

    def _user_message(
        self,
        user: EmuUser,
        chat: EmuChat | int | None,
        reply_to: int | None,
        **fields: Any,
    ) -> EmuMessage:
        target = self._chat_for(user, chat)
        replied = self.world.find(target.id, reply_to) if reply_to is not None else None
        if reply_to is not None and replied is None:
            raise LookupError(f"no message {reply_to} in chat {target.id} to reply to")
        message = self.world.add_message(target, user, reply_to=replied, **fields)
        self.world.push_update("message", message.raw)
        return message

    def _user_file(
        self,
        user: EmuUser,
        chat: EmuChat | int | None,
        stored: StoredFile,
        caption: str | None,
        media_group_id: str | None = None,
    ) -> EmuMessage:
        return self._user_message(
            user,
            chat,
            None,
            kind=stored.kind,
            file=stored,
            caption=caption,
            media_group_id=media_group_id,
        )

    def _chat_for(self, user: EmuUser, chat: EmuChat | int | None) -> EmuChat:
        if chat is None:
            return self.world.chats[user.id]
        return self.world.chats[chat if isinstance(chat, int) else chat.id]
