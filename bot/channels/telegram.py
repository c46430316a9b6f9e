"""Telegram adapter: python-telegram-bot Updates in, chat-neutral events out, and back."""

from __future__ import annotations

import asyncio
import copy
import datetime as dtm
import json
import logging
import math
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any, Final, TypeVar

from telegram import (
    Bot,
    ForceReply,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    ReplyParameters,
    Update,
)
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import Application, ContextTypes, TypeHandler
from telegram.request import BaseRequest, HTTPXRequest, RequestData

from bot import metrics
from bot.config import TelegramSection
from handlers.dispatch import Dispatcher
from handlers.events import (
    MEDIA_KINDS,
    Capabilities,
    DeliveryError,
    DeliveryReason,
    EventKind,
    Inbound,
    Location,
    Media,
    Outbound,
    Sent,
)
from handlers.text import split_text, utf16_length

log = logging.getLogger(__name__)

T = TypeVar("T")

NAME: Final = "telegram"
TEXT_LIMIT: Final = 4096
CAPTION_LIMIT: Final = 1024
ATTEMPTS: Final = 4
# Telegram's flood waits are seconds long, rarely minutes. Waiting keeps a receipt from being
# lost; a longer wait fails the send, and cards are then re-posted by the timer.
MAX_FLOOD_WAIT: Final = 120.0
BACKOFF: Final = (0.5, 1.0, 2.0)
# getFile refuses bigger files (a local Bot API server would allow more; nothing here needs it).
DOWNLOAD_LIMIT: Final = 20 * 1024 * 1024
# PTB's default read timeout (5 s) is too short for 20 MB on a slow link.
DOWNLOAD_TIMEOUT: Final = 60.0
DELETE_BATCH: Final = 100


def _retry_after(error: RetryAfter) -> float:
    with warnings.catch_warnings():
        # PTB 22 warns while it migrates this attribute from int to timedelta.
        warnings.simplefilter("ignore")
        value = error.retry_after
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


def _keyboard(message: Outbound) -> InlineKeyboardMarkup | ForceReply | None:
    if message.force_reply:
        return ForceReply(selective=False)
    if not message.choices:
        return None
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(c.label, callback_data=c.data) for c in row]
            for row in message.choices
        ]
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _whole(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _point(message: Message) -> Location | None:
    """Return the shared location if it is a point on Earth."""
    place = message.location
    if place is None:
        return None
    latitude, longitude = place.latitude, place.longitude
    numbers = all(
        isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        for value in (latitude, longitude)
    )
    if not numbers or not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        return None
    return Location(float(latitude), float(longitude))


def _media(message: Message) -> Media | None:
    album = _text(message.media_group_id)
    photo = message.photo[-1] if message.photo else None
    for kind, item in (
        (EventKind.PHOTO, photo),
        (EventKind.VIDEO, message.video),
        (EventKind.VIDEO, message.video_note),
        (EventKind.VIDEO, message.animation),
        (EventKind.VOICE, message.voice),
        (EventKind.AUDIO, message.audio),
        (EventKind.DOCUMENT, message.document),
    ):
        if item is None:
            continue
        file_id = _text(item.file_id)
        if not file_id:
            return None
        return Media(
            kind,
            file_id,
            file_name=_text(getattr(item, "file_name", None)),
            mime_type=_text(getattr(item, "mime_type", None)),
            size=_whole(item.file_size),
            album=album,
        )
    return None


def to_inbound(update: Update, bot_username: str | None = None) -> Inbound | None:
    """Translate an Update into a neutral event; None for updates the core does not handle.

    Only what the core needs crosses over: never the sender's name, username or phone. Values
    that are not of the type the Bot API documents do not cross over either.
    """
    query = update.callback_query
    if query is not None:
        message = query.message
        if message is None or message.chat is None:
            return None
        if None in (_whole(message.chat.id), _whole(query.from_user.id)):
            return None
        private = message.chat.type == "private"
        return Inbound(
            channel=NAME,
            chat=str(message.chat.id),
            kind=EventKind.CHOICE,
            user=str(query.from_user.id),
            private=private,
            message_id=str(message.message_id) if _whole(message.message_id) else None,
            choice=_text(query.data) or "",
            language=_text(query.from_user.language_code),
            callback_id=_text(query.id),
            user_name=None if private else query.from_user.full_name,
        )
    message = update.message
    # PTB builds a Message without a chat from a message dated 0 (one the bot cannot see).
    if not isinstance(message, Message) or message.from_user is None or message.chat is None:
        return None
    chat, sender, number = message.chat.id, message.from_user.id, message.message_id
    if _whole(chat) is None or _whole(sender) is None or _whole(number) is None:
        return None
    # Stickers, contacts, polls, dice...: the core answers them without seeing their content.
    private = message.chat.type == "private"
    replied = message.reply_to_message
    base = Inbound(
        channel=NAME,
        chat=str(chat),
        kind=EventKind.UNSUPPORTED,
        user=str(sender),
        private=private,
        message_id=str(number),
        language=_text(message.from_user.language_code),
        reply_to=str(replied.message_id)
        if isinstance(replied, Message) and _whole(replied.message_id)
        else None,
        # Names cross over only from groups (officers); a resident's never does.
        user_name=None if private else message.from_user.full_name,
    )
    text = _text(message.text)
    if text is not None:
        if text.startswith("/"):
            head, _, args = text.partition(" ")
            command, _, target = head[1:].partition("@")
            if target and bot_username and target.lower() != bot_username.lower():
                return None
            return replace(
                base, kind=EventKind.COMMAND, command=command.lower(), args=args.strip(), text=text
            )
        return replace(base, kind=EventKind.TEXT, text=text)
    point = _point(message)
    if point is not None:
        return replace(base, kind=EventKind.LOCATION, location=point)
    media = _media(message)
    if media is not None:
        return replace(base, kind=media.kind, media=media, text=_text(message.caption))
    return base


def _readable(update: object) -> dict[str, Any] | None:
    """Return the update if python-telegram-bot can read it, its bare id if not, or None."""
    if not isinstance(update, dict):
        return None
    update_id = update.get("update_id")
    if not isinstance(update_id, int) or isinstance(update_id, bool):
        return None
    try:
        # A copy: de_json may rewrite the dict it reads.
        Update.de_json(copy.deepcopy(update), None)
    except Exception as error:
        log.warning("Update %d cannot be read (%s); skipped", update_id, type(error).__name__)
        return {"update_id": update_id}
    return update


def read_update(data: object, bot: Bot) -> Update | None:
    """An update as a webhook posted it; one PTB cannot read is reduced to its bare id."""
    readable = _readable(data)
    return None if readable is None else Update.de_json(readable, bot)


class UpdatesRequest(BaseRequest):
    """The getUpdates connection, which replaces an update PTB cannot read by its bare id.

    Left as it is, one malformed update makes python-telegram-bot refuse the whole batch,
    log it raw at CRITICAL (names, ids, words) and fetch it again forever: no resident would be
    answered again. An update reduced to its id is confirmed and passed on as empty.
    """

    def __init__(self, inner: BaseRequest | None = None) -> None:
        # As PTB builds its own getUpdates connection: one connection, HTTP/1.1.
        self._inner = inner or HTTPXRequest(connection_pool_size=1)

    @property
    def read_timeout(self) -> float | None:
        """Return the inner connection's read timeout."""
        return self._inner.read_timeout

    async def initialize(self) -> None:
        """Open the inner connection."""
        await self._inner.initialize()

    async def shutdown(self) -> None:
        """Close the inner connection."""
        await self._inner.shutdown()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """Make the request on the inner connection."""
        return await self._inner.do_request(
            url,
            method,
            request_data,
            read_timeout=read_timeout,
            write_timeout=write_timeout,
            connect_timeout=connect_timeout,
            pool_timeout=pool_timeout,
        )

    @staticmethod
    def parse_json_payload(payload: bytes) -> dict[str, Any]:
        """Parse the answer, keeping only the updates python-telegram-bot can read."""
        try:
            answer = json.loads(payload.decode("utf-8", "replace"))
        except ValueError as error:
            # PTB's own parser would log the whole payload; say only that it was not JSON.
            raise TelegramError("Invalid server response") from error
        if not isinstance(answer, dict):
            raise TelegramError("Invalid server response")
        result = answer.get("result")
        if isinstance(result, list):
            answer["result"] = [u for u in map(_readable, result) if u is not None]
        return answer


# Telegram's numbers (Bot API docs, tdlib/telegram-bot-api Client.cpp); the core reads them here.
CAPABILITIES: Final = Capabilities(
    text_limit=TEXT_LIMIT,
    caption_limit=CAPTION_LIMIT,
    max_buttons=100,
    button_label_limit=0,
    can_edit=True,
    can_delete=True,
    delete_window=dtm.timedelta(hours=48),
    can_pin=True,
    receives=frozenset(EventKind),
    sends=MEDIA_KINDS,
    download_limit=DOWNLOAD_LIMIT,
    photo_upload_limit=10 * 1024 * 1024,
    send_rate=30,
    paid_send_rate=1000,
)


def _forbidden_reason(message: str) -> DeliveryReason:
    """Judge a 403: the account is gone, or the person blocked or removed the bot."""
    if "deactivated" in message.lower():
        return DeliveryReason.CHAT_GONE
    return DeliveryReason.BLOCKED


def _bad_request_reason(message: str) -> DeliveryReason:
    """Judge a 400 by Telegram's own wording (tdlib/telegram-bot-api Client.cpp)."""
    text = message.lower()
    if "chat not found" in text or "user not found" in text:
        return DeliveryReason.CHAT_GONE
    if "too big" in text or "too long" in text:
        return DeliveryReason.TOO_BIG
    return DeliveryReason.REFUSED


class TelegramChannel:
    """Sends neutral replies through a telegram.Bot; holds it, never extends it."""

    name = NAME
    supports_buttons = True
    capabilities = CAPABILITIES

    def __init__(self, bot: Bot) -> None:
        self._bot = bot

    async def _call(self, action: Callable[[], Awaitable[T]], *, patient: bool = True) -> T:
        """Run one Bot API call, waiting out flood control and retrying network errors."""
        attempts = ATTEMPTS if patient else 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                return await action()
            except RetryAfter as error:
                metrics.FLOOD_WAITS.labels(NAME).inc()
                wait = _retry_after(error)
                if last or wait > MAX_FLOOD_WAIT:
                    raise DeliveryError(
                        f"flood control, retry after {wait:g}s",
                        reason=DeliveryReason.RATE_LIMITED,
                        retry_after=wait,
                    ) from error
                log.warning("Telegram flood control: waiting %.1f s", wait)
                await asyncio.sleep(wait)
            except ChatMigrated as error:
                raise DeliveryError(
                    "group chat was upgraded to a supergroup chat",
                    reason=DeliveryReason.CHAT_MOVED,
                    moved_to=str(error.new_chat_id),
                ) from error
            except Forbidden as error:
                raise DeliveryError(
                    f"forbidden: {error.message}", reason=_forbidden_reason(error.message)
                ) from error
            except BadRequest as error:
                raise DeliveryError(
                    f"bad request: {error.message}", reason=_bad_request_reason(error.message)
                ) from error
            except (NetworkError, TelegramError) as error:
                if last:
                    raise DeliveryError(
                        f"network: {error.message}", reason=DeliveryReason.TRANSIENT
                    ) from error
                await asyncio.sleep(BACKOFF[attempt])
        raise AssertionError("unreachable")

    async def send(self, chat: str, message: Outbound, *, patient: bool = True) -> Sent:
        """Send text, or media with a caption, splitting what is over Telegram's limits."""
        try:
            sent = await self._send(chat, message, patient=patient)
        except DeliveryError as error:
            metrics.SENDS.labels(NAME, error.reason.value).inc()
            raise
        metrics.SENDS.labels(NAME, "sent").inc()
        return sent

    async def _send(self, chat: str, message: Outbound, *, patient: bool) -> Sent:
        reply = (
            ReplyParameters(message_id=int(message.reply_to), allow_sending_without_reply=True)
            if message.reply_to
            else None
        )
        markup = _keyboard(message)
        if message.media is not None:
            caption = message.text if utf16_length(message.text) <= CAPTION_LIMIT else None
            sent = await self._call(
                lambda: self._send_media(
                    chat, message, caption, reply, markup if caption is not None else None
                ),
                patient=patient,
            )
            if caption is None:
                text = await self._send_text(chat, message, markup, None, patient)
                return Sent(chat, str(sent.message_id), text.message_ids)
            return Sent(chat, str(sent.message_id))
        return await self._send_text(chat, message, markup, reply, patient)

    async def _send_text(
        self,
        chat: str,
        message: Outbound,
        markup: InlineKeyboardMarkup | ForceReply | None,
        reply: ReplyParameters | None,
        patient: bool,
    ) -> Sent:
        pieces = split_text(message.text, TEXT_LIMIT)
        ids: list[str] = []
        for index, piece in enumerate(pieces):
            last = index == len(pieces) - 1

            def send(
                piece: str = piece,
                keyboard: InlineKeyboardMarkup | ForceReply | None = markup if last else None,
                reply_to: ReplyParameters | None = reply if index == 0 else None,
            ) -> Awaitable[Message]:
                return self._bot.send_message(
                    chat_id=int(chat),
                    text=piece,
                    reply_markup=keyboard,
                    reply_parameters=reply_to,
                    disable_notification=message.silent,
                    allow_paid_broadcast=message.paid_broadcast or None,
                )

            sent = await self._call(send, patient=patient)
            ids.append(str(sent.message_id))
        return Sent(chat, ids[0], tuple(ids[1:]))

    async def _send_media(
        self,
        chat: str,
        message: Outbound,
        caption: str | None,
        reply: ReplyParameters | None,
        markup: InlineKeyboardMarkup | ForceReply | None,
    ) -> Message:
        assert message.media is not None
        media = message.media
        common = {
            "chat_id": int(chat),
            "caption": caption,
            "reply_parameters": reply,
            "reply_markup": markup,
            "disable_notification": message.silent,
            "allow_paid_broadcast": message.paid_broadcast or None,
        }
        source: str | bytes = media.file_id
        if media.data is not None:
            source, common["filename"] = media.data, media.file_name
        if media.kind is EventKind.PHOTO:
            return await self._bot.send_photo(photo=source, **common)  # type: ignore[arg-type]
        if media.kind is EventKind.VIDEO:
            return await self._bot.send_video(video=source, **common)  # type: ignore[arg-type]
        if media.kind is EventKind.VOICE:
            return await self._bot.send_voice(voice=source, **common)  # type: ignore[arg-type]
        if media.kind is EventKind.AUDIO:
            return await self._bot.send_audio(audio=source, **common)  # type: ignore[arg-type]
        return await self._bot.send_document(document=source, **common)  # type: ignore[arg-type]

    async def download(self, file_id: str) -> bytes:
        """Fetch a file's bytes by getFile and its download link, retrying like a send."""
        file = await self._call(lambda: self._bot.get_file(file_id))
        if file.file_size is not None and file.file_size > DOWNLOAD_LIMIT:
            raise DeliveryError("file too big to download", reason=DeliveryReason.TOO_BIG)
        data = await self._call(lambda: file.download_as_bytearray(read_timeout=DOWNLOAD_TIMEOUT))
        return bytes(data)

    async def acknowledge(
        self, event: Inbound, notice: str | None = None, *, alert: bool = False
    ) -> None:
        """Answer the button press so the spinner stops, with a notice or an alert."""
        if event.callback_id is None:
            return
        try:
            await self._bot.answer_callback_query(event.callback_id, text=notice, show_alert=alert)
        except TelegramError as error:
            # An old query cannot be answered any more; the reply that follows still goes.
            log.info("Callback answer failed: %s", error.message)

    async def remove_choices(self, chat: str, message_id: str) -> None:
        """Take the buttons off a message whose choice has been made."""
        try:
            await self._bot.edit_message_reply_markup(
                chat_id=int(chat), message_id=int(message_id), reply_markup=None
            )
        except TelegramError as error:
            log.info("Could not remove buttons: %s", error.message)

    async def edit(self, chat: str, message_id: str, message: Outbound) -> None:
        """Replace a message's text and buttons; an unchanged message is not an error."""
        markup = _keyboard(message)

        def edit() -> Awaitable[object]:
            return self._bot.edit_message_text(
                chat_id=int(chat),
                message_id=int(message_id),
                text=split_text(message.text, TEXT_LIMIT)[0],
                reply_markup=markup if isinstance(markup, InlineKeyboardMarkup) else None,
            )

        try:
            await self._call(edit)
        except DeliveryError as error:
            if "not modified" not in str(error):
                raise

    async def pin(self, chat: str, message_id: str) -> None:
        """Pin a message without a second notification."""
        await self._call(
            lambda: self._bot.pin_chat_message(
                chat_id=int(chat), message_id=int(message_id), disable_notification=True
            )
        )

    async def unpin(self, chat: str, message_id: str) -> None:
        """Unpin a message."""
        await self._call(
            lambda: self._bot.unpin_chat_message(chat_id=int(chat), message_id=int(message_id))
        )

    async def delete(self, chat: str, message_ids: Sequence[str]) -> list[str]:
        """Delete messages 100 at a time; return the ids that could not be deleted.

        deleteMessages skips messages already gone. A batch Telegram refuses (one message past
        the 48 hours, say) is retried one message at a time, so that the others still go.
        """
        ids = sorted({int(message_id) for message_id in message_ids})
        kept: list[str] = []
        for start in range(0, len(ids), DELETE_BATCH):
            batch = ids[start : start + DELETE_BATCH]

            def delete_batch(batch: list[int] = batch) -> Awaitable[bool]:
                return self._bot.delete_messages(chat_id=int(chat), message_ids=batch)

            try:
                await self._call(delete_batch)
            except DeliveryError as error:
                if not error.permanent:
                    kept += [str(message_id) for message_id in batch]
                    continue
                kept += await self._delete_one_by_one(chat, batch)
        if kept:
            log.info("%d of %d message(s) could not be deleted", len(kept), len(ids))
        return kept

    async def _delete_one_by_one(self, chat: str, message_ids: list[int]) -> list[str]:
        kept: list[str] = []
        for message_id in message_ids:

            def delete_one(message_id: int = message_id) -> Awaitable[bool]:
                return self._bot.delete_message(chat_id=int(chat), message_id=message_id)

            try:
                await self._call(delete_one)
            except DeliveryError as error:
                if "not found" not in str(error):
                    kept.append(str(message_id))
        return kept


@asynccontextmanager
async def connected(token: str, settings: TelegramSection) -> AsyncIterator[TelegramChannel]:
    """A channel on a connected bot that only sends (no polling): for the command line."""
    bot = Bot(token, base_url=settings.base_url, base_file_url=settings.base_file_url)
    async with bot:
        yield TelegramChannel(bot)


def register(application: Application, dispatcher: Dispatcher) -> None:  # type: ignore[type-arg]
    """Route every Update through the dispatcher, and log failures by pseudonym only."""

    async def on_update(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Hand the update to the core as a neutral event."""
        try:
            event = to_inbound(update, context.bot.username)
        except (AttributeError, TypeError, ValueError) as error:
            # A shape the Bot API does not document; nobody to answer for sure.
            name = type(error).__name__
            log.warning(
                "Update %d has a shape the adapter does not know (%s)", update.update_id, name
            )
            return
        if event is not None:
            await dispatcher.handle(event)

    async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Log an error without the update, which carries the sender's identity."""
        error = context.error
        log.error("Telegram update failed: %s", type(error).__name__ if error else "unknown")

    application.add_handler(TypeHandler(Update, on_update))
    application.add_error_handler(on_error)
