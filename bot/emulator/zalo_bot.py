"""ZaloBotEmulator: an in-process Zalo Bot Platform API and the users who write to the bot.

What it reproduces, each from ../shared/ZALO.md: ``/bot<TOKEN>/<method>``; getUpdates that
returns one update (not a list), HTTP 408 when there is none, and no offset, so that updates
already returned come back (``replays``); webhook deliveries with ``X-Bot-Api-Secret-Token``,
wrapped in ``{"ok": true, "result": ...}`` or bare (``envelope``); images as ``photo_url`` or
``photo`` (``photo_field``); ids and times as strings; texts of 1-2,000 characters; the plan's
monthly message quota; a photo sent as a URL that Zalo fetches itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Self

import aiohttp
from aiohttp import web

JsonDict = dict[str, Any]

TEXT_LIMIT: Final = 2000
# The Basic plan (August 2026): 3,000 messages a month.
BASIC_QUOTA: Final = 3000
# How long an empty getUpdates waits at most here, whatever the client asks: tests stay fast.
MAX_POLL_WAIT: Final = 1.0


@dataclass
class BotUser:
    """A Zalo user in a private chat with the bot; ``id`` is a string."""

    id: str
    display_name: str


@dataclass
class BotMessage:
    """What the bot sent to a chat."""

    chat_id: str
    message_id: str
    text: str | None = None
    photo: bytes | None = None
    caption: str | None = None
    extra: JsonDict = field(default_factory=dict)


class ZaloBotEmulator:
    """The Bot API server on loopback, plus the users who write to the bot."""

    def __init__(
        self, token: str = "3105740812:zalo-bot-token-never-logged", bot_name: str = "Hòm thư"
    ) -> None:
        self.token = token
        self.bot_name = bot_name
        self.users: dict[str, BotUser] = {}
        self.sent: list[BotMessage] = []
        self.calls: list[str] = []
        self.quota = BASIC_QUOTA
        self.used = 0
        # Updates polling has not returned yet, and the last one returned (which comes back).
        self._pending: deque[JsonDict] = deque()
        self._returned: JsonDict | None = None
        self._arrived = asyncio.Event()
        # Each update is returned this many extra times by getUpdates before the next one.
        self.replays = 1
        self._replayed = 0
        self.envelope: Literal["wrapped", "bare"] = "wrapped"
        self.photo_field: Literal["photo_url", "photo"] = "photo_url"
        self.webhook_url = ""
        self.webhook_secret = ""
        self._media: dict[str, bytes] = {}
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve on ``host:port``; port 0 picks a free one."""
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/media/{key}", self._serve_media)
        self._runner = web.AppRunner(
            app, access_log=None, shutdown_timeout=1.0, handler_cancellation=True
        )
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        self.url = f"http://{host}:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        """Shut the server down."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # Users and what they see

    def user(self, display_name: str = "Trần Thị Bình") -> BotUser:
        """Return a new user of the bot."""
        person = BotUser(secrets.token_hex(8), display_name)
        self.users[person.id] = person
        return person

    def texts_to(self, user: BotUser) -> list[str]:
        """The texts (a photo's caption) the bot sent to ``user``, oldest first."""
        return [m.text if m.text is not None else m.caption or "" for m in self.messages_to(user)]

    def messages_to(self, user: BotUser) -> list[BotMessage]:
        """Everything the bot sent to ``user``, oldest first."""
        return [m for m in self.sent if m.chat_id == user.id]

    def host(self, data: bytes) -> str:
        """Serve ``data`` at a URL, as Zalo serves a user's photo."""
        key = secrets.token_urlsafe(12)
        self._media[key] = data
        return f"{self.url}/media/{key}"

    # Updates, as Zalo sends them

    def update(self, user: BotUser, event_name: str, **fields: Any) -> JsonDict:
        """Build an update: ``{"event_name", "message"}``, ids and the date as strings."""
        message: JsonDict = {
            "message_id": secrets.token_hex(16),
            "date": str(int(time.time() * 1000)),
            "from": {"id": user.id, "display_name": user.display_name, "is_bot": False},
            "chat": {"id": user.id, "chat_type": "PRIVATE"},
            **fields,
        }
        return {"event_name": event_name, "message": message}

    def text(self, user: BotUser, text: str) -> JsonDict:
        """A ``message.text.received`` update."""
        return self.update(user, "message.text.received", text=text)

    def image(self, user: BotUser, data: bytes, caption: str = "") -> JsonDict:
        """A ``message.image.received`` update, the URL under ``photo_field``."""
        fields: JsonDict = {self.photo_field: self.host(data)}
        if caption:
            fields["caption"] = caption
        return self.update(user, "message.image.received", **fields)

    def sticker(self, user: BotUser) -> JsonDict:
        """A ``message.sticker.received`` update."""
        return self.update(user, "message.sticker.received", sticker="a1b2c3", url="")

    def unsupported(self, user: BotUser) -> JsonDict:
        """A ``message.unsupported.received`` update: a file, a video, a contact; no content."""
        return self.update(user, "message.unsupported.received")

    def queue(self, update: JsonDict) -> None:
        """Hold an update for getUpdates."""
        self._pending.append(update)
        self._arrived.set()

    def wrap(self, update: JsonDict) -> JsonDict:
        """The body as posted: wrapped in ``result``, or bare, per ``envelope``."""
        return {"ok": True, "result": update} if self.envelope == "wrapped" else update

    async def deliver(
        self, update: JsonDict | bytes, *, secret: str | None = None, send_secret: bool = True
    ) -> int:
        """POST an update to the webhook as Zalo does; return the HTTP status."""
        body = update if isinstance(update, bytes) else json.dumps(self.wrap(update)).encode()
        headers = {"Content-Type": "application/json"}
        if send_secret:
            headers["X-Bot-Api-Secret-Token"] = self.webhook_secret if secret is None else secret
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.webhook_url, data=body, headers=headers) as response,
        ):
            await response.read()
            return response.status

    # The server

    @staticmethod
    def _fail(code: int, description: str) -> web.Response:
        return web.json_response(
            {"ok": False, "error_code": code, "description": description}, status=code
        )

    @staticmethod
    def _ok(result: Any) -> web.Response:
        return web.json_response({"ok": True, "result": result})

    async def _api(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return self._fail(401, "Unauthorized")
        method = request.match_info["method"]
        self.calls.append(method)
        params: JsonDict = dict(request.query)
        if request.can_read_body:
            try:
                body = await request.json()
            except ValueError:
                return self._fail(400, "Bad Request: invalid JSON")
            if isinstance(body, dict):
                params |= body
        if method == "getMe":
            return self._ok({"id": self.token.split(":", 1)[0], "account_name": self.bot_name})
        if method == "getUpdates":
            return await self._get_updates(params)
        if method == "setWebhook":
            secret = str(params.get("secret_token", ""))
            url = str(params.get("url", ""))
            if not 8 <= len(secret) <= 256 or not url:
                return self._fail(400, "Bad Request: invalid secret_token or url")
            self.webhook_url, self.webhook_secret = url, secret
            return self._ok({"url": url})
        if method == "deleteWebhook":
            self.webhook_url = ""
            return self._ok({"url": ""})
        if method == "getWebhookInfo":
            if not self.webhook_url:
                return self._fail(404, "Not Found")
            return self._ok({"url": self.webhook_url})
        if method == "sendChatAction":
            return self._ok(True)
        if method in ("sendMessage", "sendPhoto"):
            return await self._send(method, params)
        return self._fail(404, "Not Found: method not found")

    async def _get_updates(self, params: JsonDict) -> web.Response:
        if self._returned is not None and self._replayed < self.replays:
            # No offset and no acknowledgement: what was returned comes back.
            self._replayed += 1
            return self._ok(self._returned)
        if not self._pending:
            self._arrived.clear()
            wait = min(float(params.get("timeout", 0) or 0), MAX_POLL_WAIT)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), wait)
        if not self._pending:
            return self._fail(408, "Request timeout")
        self._returned, self._replayed = self._pending.popleft(), 0
        return self._ok(self._returned)

    async def _send(self, method: str, params: JsonDict) -> web.Response:
        chat_id = params.get("chat_id")
        if not isinstance(chat_id, str) or chat_id not in self.users:
            return self._fail(400, "Bad Request: chat not found")
        if self.used >= self.quota:
            # [guess] the shape of a spent quota is not documented anywhere we could read.
            return self._fail(403, "Forbidden: monthly message quota exceeded")
        sent = BotMessage(chat_id, secrets.token_hex(16))
        if method == "sendMessage":
            text = params.get("text")
            if not isinstance(text, str) or not 1 <= len(text) <= TEXT_LIMIT:
                return self._fail(400, "Bad Request: text must be 1-2000 characters")
            sent.text = text
        else:
            url = params.get("photo")
            if not isinstance(url, str):
                return self._fail(400, "Bad Request: photo is required")
            # Zalo fetches the photo from the URL itself (perhaps more than once).
            async with aiohttp.ClientSession() as session, session.get(url) as response:
                if response.status != 200:
                    return self._fail(400, "Bad Request: cannot fetch photo")
                sent.photo = await response.read()
            caption = params.get("caption")
            sent.caption = caption if isinstance(caption, str) else None
        self.used += 1
        self.sent.append(sent)
        return self._ok({"message_id": sent.message_id, "date": str(int(time.time() * 1000))})

    async def _serve_media(self, request: web.Request) -> web.Response:
        data = self._media.get(request.match_info["key"])
        if data is None:
            return web.Response(status=404)
        return web.Response(body=data, content_type="image/jpeg")
