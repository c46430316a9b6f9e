"""Zalo Bot Platform adapter: a token-in-the-URL API, no buttons, one update per poll.

A thin aiohttp client of our own (see ../shared/ZALO.md). The token is part of every URL,
so no URL is ever logged. getUpdates returns one update, 408 when there is none, and has no
offset: updates come back, and are dropped by message id like a webhook's retries. Webhook
bodies arrive wrapped in ``result`` or bare, images as ``photo_url`` or ``photo``: both are
accepted. Only the chat's id is read about a person; ``display_name`` is never read.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

import aiohttp
from aiohttp import web

from bot.channels import zalo
from handlers.dispatch import Dispatcher
from handlers.events import (
    Capabilities,
    DeliveryError,
    DeliveryReason,
    EventKind,
    Inbound,
    Media,
    Outbound,
    Sent,
)
from handlers.settings import ZaloBotSection
from handlers.text import split_text

log = logging.getLogger(__name__)

NAME: Final = "zalo_bot"
PATH: Final = "/zalo/bot"
HTTP_TIMEOUT: Final = 15.0
POLL_TIMEOUT: Final = 30
ATTEMPTS: Final = 3
BACKOFF: Final = (0.5, 2.0)
# Zalo asks for at most one poll a second.
POLL_INTERVAL: Final = 1.0
# Stickers, voice, and message.unsupported.received (files, videos, contacts, and anything
# from "protected" users, with no content): a kind answer. Other events are not a person's.
_UNSUPPORTED_EVENTS: Final = frozenset(
    {
        "message.sticker.received",
        "message.voice.received",
        "message.unsupported.received",
        "message.image.received",
        "message.text.received",
    }
)


def capabilities(rate_per_second: float) -> Capabilities:
    """What a Zalo bot can show and carry: text only, no buttons."""
    return Capabilities(
        text_limit=zalo.TEXT_LIMIT,
        caption_limit=0,
        max_buttons=0,
        button_label_limit=0,
        can_edit=False,
        can_delete=False,
        delete_window=None,
        can_pin=False,
        receives=frozenset({EventKind.PHOTO}),
        # sendPhoto takes only a URL Zalo fetches; the bot serves no files to the Internet.
        sends=frozenset(),
        download_limit=zalo.DOWNLOAD_LIMIT,
        photo_upload_limit=0,
        send_rate=rate_per_second,
        paid_send_rate=rate_per_second,
    )


def _failure(status: int, body: object) -> DeliveryError:
    """Judge a Bot API error from its code and description."""
    code = body.get("error_code", status) if isinstance(body, dict) else status
    text = body.get("description") if isinstance(body, dict) else None
    description = f"Zalo Bot error {code}: {text}"
    if isinstance(text, str) and "quota" in text.lower():
        # [guess] the quota error's shape is undocumented: any "quota" in the description.
        return DeliveryError(description, reason=DeliveryReason.QUOTA_SPENT)
    if code == 429:
        return DeliveryError(description, reason=DeliveryReason.RATE_LIMITED, retry_after=1.0)
    if isinstance(code, int) and (code >= 500 or code == 408):
        return DeliveryError(description, reason=DeliveryReason.TRANSIENT)
    if code == 403:
        return DeliveryError(description, reason=DeliveryReason.BLOCKED)
    if code == 400 and isinstance(text, str) and "chat not found" in text.lower():
        return DeliveryError(description, reason=DeliveryReason.CHAT_GONE)
    return DeliveryError(description, reason=DeliveryReason.REFUSED)


class ZaloBotChannel:
    """Texts to the bot's users; the core shows choices as a numbered list."""

    name = NAME
    supports_buttons = False

    def __init__(
        self,
        settings: ZaloBotSection,
        token: str,
        http: aiohttp.ClientSession,
        media: zalo.MediaStore | None = None,
    ) -> None:
        self._settings = settings
        self._token = token
        self._http = http
        self.media = media or zalo.MediaStore(NAME)
        self.capabilities = capabilities(settings.rate_per_second)

    def _url(self, method: str) -> str:
        # Holds the token: never logged.
        return f"{self._settings.base_url}/bot{self._token}/{method}"

    async def call(
        self, method: str, params: dict[str, Any], *, seconds: float = HTTP_TIMEOUT
    ) -> tuple[int, Any]:
        """POST a method once; return the HTTP status and the decoded body."""
        try:
            async with self._http.post(
                self._url(method), json=params, timeout=aiohttp.ClientTimeout(total=seconds)
            ) as response:
                return response.status, await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            raise DeliveryError(type(error).__name__, reason=DeliveryReason.TRANSIENT) from None

    async def _send_one(self, params: dict[str, Any], *, patient: bool) -> str:
        attempt = 0
        while True:
            try:
                status, body = await self.call("sendMessage", params)
                if isinstance(body, dict) and body.get("ok") is True:
                    result = body.get("result") or {}
                    return str(result.get("message_id", ""))
                raise _failure(status, body)
            except DeliveryError as failure:
                attempt += 1
                if failure.permanent or not patient or attempt >= ATTEMPTS:
                    raise
                await asyncio.sleep(failure.retry_after or BACKOFF[min(attempt, len(BACKOFF)) - 1])

    async def send(self, chat: str, message: Outbound, *, patient: bool = True) -> Sent:
        """Send the text in pieces of 2,000 characters; choices arrive already as a list."""
        if message.media is not None and not message.text:
            raise DeliveryError("the bot sends no files", reason=DeliveryReason.REFUSED)
        ids = [
            await self._send_one({"chat_id": chat, "text": piece}, patient=patient)
            for piece in split_text(message.text, zalo.TEXT_LIMIT)
        ]
        return Sent(chat, ids[0], tuple(ids[1:]))

    async def download(self, file_id: str) -> bytes:
        """Return a photo fetched when it arrived."""
        return self.media.get(file_id)

    async def acknowledge(
        self, event: Inbound, notice: str | None = None, *, alert: bool = False
    ) -> None:
        """Nothing to acknowledge: the bot has no buttons."""

    async def remove_choices(self, chat: str, message_id: str) -> None:
        """Nothing to do: the bot has no buttons."""

    async def edit(self, chat: str, message_id: str, message: Outbound) -> None:
        """Refuse: a Zalo bot cannot edit."""
        raise DeliveryError("Zalo bots cannot edit messages", reason=DeliveryReason.REFUSED)

    async def pin(self, chat: str, message_id: str) -> None:
        """Refuse: a Zalo bot cannot pin."""
        raise DeliveryError("Zalo bots cannot pin messages", reason=DeliveryReason.REFUSED)

    async def unpin(self, chat: str, message_id: str) -> None:
        """Refuse: a Zalo bot cannot pin."""
        raise DeliveryError("Zalo bots cannot pin messages", reason=DeliveryReason.REFUSED)

    async def delete(self, chat: str, message_ids: Sequence[str]) -> list[str]:
        """Return every id: a Zalo bot cannot delete."""
        return list(message_ids)


def unwrap(body: object) -> dict[str, Any] | None:
    """Return the update from either envelope: ``{"ok", "result": update}`` or the bare update."""
    if not isinstance(body, dict):
        return None
    result = body.get("result")
    if isinstance(result, dict):
        log.debug("Zalo Bot update arrived wrapped in result")
        return result
    if "event_name" in body:
        log.debug("Zalo Bot update arrived bare")
        return body
    return None


def message_id(update: dict[str, Any]) -> str | None:
    """The update's message id, by which repeats are dropped."""
    message = update.get("message")
    value = message.get("message_id") if isinstance(message, dict) else None
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None


async def to_inbound(
    update: dict[str, Any], http: aiohttp.ClientSession, media: zalo.MediaStore
) -> Inbound | None:
    """Turn an update into a neutral event, fetching a photo at once; None: ignore it."""
    name = update.get("event_name")
    message = update.get("message")
    if not isinstance(name, str) or not isinstance(message, dict):
        return None
    chat_info = message.get("chat")
    if not isinstance(chat_info, dict) or chat_info.get("chat_type", "PRIVATE") != "PRIVATE":
        # Groups are beta and mention-gated; residents write in private.
        return None
    chat_id = chat_info.get("id")
    if not isinstance(chat_id, str | int) or isinstance(chat_id, bool) or chat_id == "":
        return None
    chat = str(chat_id)
    common: dict[str, Any] = {
        "channel": NAME,
        "chat": chat,
        "user": chat,
        "message_id": message_id(update),
    }
    text = message.get("text")
    caption = message.get("caption")
    if name == "message.text.received" and isinstance(text, str) and text:
        if text.startswith("/") and len(text) > 1:
            command, _, args = text[1:].partition(" ")
            return Inbound(kind=EventKind.COMMAND, command=command.lower(), args=args, **common)
        return Inbound(kind=EventKind.TEXT, text=text, **common)
    if name == "message.image.received":
        url = message.get("photo_url") or message.get("photo")
        if isinstance(url, str) and url:
            try:
                data = await zalo.fetch(http, url)
            except DeliveryError as error:
                log.warning("Zalo Bot: a photo could not be fetched (%s)", error.reason)
                return Inbound(kind=EventKind.UNSUPPORTED, **common)
            item = Media(EventKind.PHOTO, media.keep(data), size=len(data))
            return Inbound(
                kind=EventKind.PHOTO,
                media=item,
                text=caption if isinstance(caption, str) and caption else None,
                **common,
            )
    if name in _UNSUPPORTED_EVENTS:
        return Inbound(kind=EventKind.UNSUPPORTED, **common)
    log.info("Zalo Bot: event %r ignored", name[:40])
    return None


def webhook(
    *,
    secret: str,
    intake: zalo.Intake,
    dispatcher: Dispatcher,
    http: aiohttp.ClientSession,
    media: zalo.MediaStore,
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The handler of POST /zalo/bot: check the secret header, answer 200, work after."""

    async def handle(request: web.Request) -> web.Response:
        """Check the secret token in constant time; accept the update and work after."""
        if not zalo.same_secret(request.headers.get("X-Bot-Api-Secret-Token"), secret):
            log.warning("Zalo Bot webhook: a delivery with a wrong secret was refused")
            return web.Response(status=401, text="bad secret")
        try:
            update = unwrap(json.loads(await request.read()))
        except ValueError:
            log.warning("Zalo Bot webhook: a body that is not JSON was refused")
            return web.Response(status=400, text="not JSON")
        if update is None:
            log.info("Zalo Bot webhook: a body with no update was ignored")
            return web.Response(text="ok")
        accept(update, intake=intake, dispatcher=dispatcher, http=http, media=media)
        return web.Response(text="ok")

    return handle


def accept(
    update: dict[str, Any],
    *,
    intake: zalo.Intake,
    dispatcher: Dispatcher,
    http: aiohttp.ClientSession,
    media: zalo.MediaStore,
) -> None:
    """Drop a repeat and serve the update after the caller has moved on."""

    async def convert() -> Inbound | None:
        return await to_inbound(update, http, media)

    message = update.get("message")
    chat = message.get("chat") if isinstance(message, dict) else None
    chat_id = chat.get("id") if isinstance(chat, dict) else None
    key = str(chat_id) if isinstance(chat_id, str | int) else None
    intake.later(zalo.serve(intake, dispatcher, message_id(update), convert), chat=key)


class Poller:
    """getUpdates in a loop: one update a call, 408 when none, repeats dropped by message id."""

    def __init__(
        self,
        channel: ZaloBotChannel,
        *,
        intake: zalo.Intake,
        dispatcher: Dispatcher,
        http: aiohttp.ClientSession,
        interval: float = POLL_INTERVAL,
        timeout: int = POLL_TIMEOUT,
    ) -> None:
        self._channel = channel
        self._intake = intake
        self._dispatcher = dispatcher
        self._http = http
        self._interval = interval
        self._timeout = timeout
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start polling in the background."""
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop polling, then wait for the updates already accepted."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self._intake.idle()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            began = loop.time()
            try:
                status, body = await self._channel.call(
                    "getUpdates", {"timeout": self._timeout}, seconds=self._timeout + 10
                )
            except DeliveryError as error:
                log.warning("Zalo Bot getUpdates failed: %s", error.reason)
                status, body = 0, None
            if status == 200 and isinstance(body, dict) and body.get("ok") is True:
                update = unwrap(body)
                if update is not None:
                    accept(
                        update,
                        intake=self._intake,
                        dispatcher=self._dispatcher,
                        http=self._http,
                        media=self._channel.media,
                    )
            elif status not in (408, 0):
                log.warning("Zalo Bot getUpdates answered HTTP %d", status)
            # At most one poll per interval, whatever came back.
            await asyncio.sleep(max(0.0, self._interval - (loop.time() - began)))
