"""Zalo Official Account adapter: signed webhooks in, consultation messages out, rotating tokens.

A thin aiohttp client of our own (no Zalo SDK is fit to depend on; see ../shared/ZALO.md).
Every API error arrives as HTTP 200 with a negative ``error``; the token goes in a bare
``access_token`` header; the refresh token works once, so the pair lives in the database.
The bot never calls the profile, follower list, conversation or request-info endpoints.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Final

import aiohttp
from aiohttp import web
from sqlmodel import select

from bot.channels import zalo
from handlers.dispatch import Dispatcher
from handlers.events import (
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
from handlers.settings import ZaloOASection
from handlers.text import split_text
from storage.db import SessionFactory, dialect_insert, unit_of_work
from storage.models import ZaloToken

log = logging.getLogger(__name__)

NAME: Final = "zalo_oa"
PATH: Final = "/zalo/oa"
MAX_BUTTONS: Final = 5
# A consultation message reaches only someone who wrote in the last 7 days (else -230).
REPLY_WINDOW: Final = timedelta(days=7)
BUTTON_LABEL_LIMIT: Final = 20
PHOTO_UPLOAD_LIMIT: Final = 1024 * 1024
# A tap on an oa.query.hide button comes back as a text: this mark tells it from typing.
CHOICE_MARK: Final = "#homthu:"
HTTP_TIMEOUT: Final = 15.0
ATTEMPTS: Final = 3
BACKOFF: Final = (0.5, 2.0)
# Twice a day, well inside the access token's 25 hours.
REFRESH_EVERY: Final = timedelta(hours=12)
# An access token this close to expiry is refreshed before use.
EXPIRY_MARGIN: Final = timedelta(minutes=30)
_TOKEN_ERRORS: Final = frozenset({-216, -220})
_WINDOW_ERRORS: Final = frozenset({-230, -232})
_IGNORED_PREFIXES: Final = ("oa_send_", "anonymous_send_", "user_received_", "user_seen_")
_MEDIA_EVENTS: Final = {
    "user_send_image": EventKind.PHOTO,
    "user_send_gif": EventKind.PHOTO,
    "user_send_file": EventKind.DOCUMENT,
    "user_send_audio": EventKind.VOICE,
    "user_send_video": EventKind.VIDEO,
}
_UNSUPPORTED_EVENTS: Final = frozenset(
    {"user_send_sticker", "user_send_link", "user_send_business_card"}
)


def capabilities(rate_per_second: float) -> Capabilities:
    """What an OA can show and carry."""
    return Capabilities(
        text_limit=zalo.TEXT_LIMIT,
        # A photo goes as its own message, the text after it.
        caption_limit=0,
        max_buttons=MAX_BUTTONS,
        button_label_limit=BUTTON_LABEL_LIMIT,
        can_edit=False,
        can_delete=False,
        delete_window=None,
        can_pin=False,
        receives=frozenset(
            {EventKind.PHOTO, EventKind.DOCUMENT, EventKind.VOICE, EventKind.VIDEO}
        ),
        sends=frozenset({EventKind.PHOTO}),
        download_limit=zalo.DOWNLOAD_LIMIT,
        photo_upload_limit=PHOTO_UPLOAD_LIMIT,
        send_rate=rate_per_second,
        paid_send_rate=rate_per_second,
        reply_window=REPLY_WINDOW,
    )


def expected_signature(app_id: str, body: bytes, timestamp: str, secret_key: str) -> str:
    """Return the ``X-ZEvent-Signature`` a genuine delivery of ``body`` carries."""
    digest = hashlib.sha256(app_id.encode() + body + timestamp.encode() + secret_key.encode())
    return f"mac={digest.hexdigest()}"


class RefreshFailed(Exception):
    """Zalo refused to refresh the OA's tokens: an OA admin must grant access again."""


class TokenKeeper:
    """The OA's access token, refreshed with the single-use refresh token kept in the database.

    A refresh runs inside one transaction that holds the token row's lock (SQLite: the write
    lock) from before the OAuth call until the new pair is committed, so that the lock outlasts
    the HTTP timeout: a second process waits, then finds the new pair instead of spending the
    old refresh token again (which loses the grant for good).
    """

    def __init__(
        self,
        settings: ZaloOASection,
        *,
        app_secret: str,
        sessions: SessionFactory,
        clock: Callable[[], datetime],
        http: aiohttp.ClientSession,
        on_failure: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._settings = settings
        self._app_secret = app_secret
        self._sessions = sessions
        self._clock = clock
        self._http = http
        self._on_failure = on_failure
        self._lock = asyncio.Lock()
        self._access: tuple[str, datetime] | None = None

    async def seed(self, refresh_token: str | None) -> None:
        """Store the refresh token from the environment when none is stored, or when the
        stored one was refused and the admin has since granted a new one."""
        if not refresh_token:
            return
        now = self._clock()
        async with unit_of_work(self._sessions) as session:
            row = await session.get(ZaloToken, self._settings.app_id)
            if row is None:
                epoch = datetime.fromtimestamp(0, tz=now.tzinfo)
                await session.exec(
                    dialect_insert(session)(ZaloToken)
                    .values(
                        app_id=self._settings.app_id,
                        access_token="",
                        refresh_token=refresh_token,
                        expires_at=epoch,
                        refreshed_at=now,
                    )
                    .on_conflict_do_nothing()
                )
            elif row.failed_at is not None and row.refresh_token != refresh_token:
                row.refresh_token, row.access_token = refresh_token, ""
                row.expires_at, row.failed_at = now, None
                session.add(row)
                log.info(
                    "Zalo OA: a new refresh token from the environment replaces the refused one"
                )

    async def access_token(self) -> str:
        """Return a usable access token, refreshing first when it is near expiry."""
        now = self._clock()
        if self._access is not None and self._access[1] - EXPIRY_MARGIN > now:
            return self._access[0]
        async with unit_of_work(self._sessions) as session:
            row = await session.get(ZaloToken, self._settings.app_id)
        if row is not None and row.access_token and row.expires_at - EXPIRY_MARGIN > now:
            self._access = (row.access_token, row.expires_at)
            return row.access_token
        return await self.refresh(stale=row.access_token if row else None)

    async def refresh(self, *, stale: str | None = None, force: bool = False) -> str:
        """Refresh the pair unless another process already did since ``stale`` was read.

        ``force``: refresh even a token that still works (the twice-daily job).
        """
        async with self._lock:
            self._access = None
            async with unit_of_work(self._sessions) as session:
                statement = (
                    select(ZaloToken)
                    .where(ZaloToken.app_id == self._settings.app_id)
                    .with_for_update()
                )
                row = (await session.exec(statement)).first()
                if row is None:
                    raise RefreshFailed("no refresh token stored or in ZALO_OA_REFRESH_TOKEN")
                now = self._clock()
                fresh = row.access_token and row.expires_at - EXPIRY_MARGIN > now
                if fresh and (row.access_token != stale or stale is None) and not force:
                    self._access = (row.access_token, row.expires_at)
                    return row.access_token
                if force and row.refreshed_at > now - REFRESH_EVERY / 2 and fresh:
                    # Another process did the twice-daily refresh a moment ago.
                    self._access = (row.access_token, row.expires_at)
                    return row.access_token
                answer = await self._ask(row.refresh_token)
                if answer is None:
                    first = row.failed_at is None
                    row.failed_at = now
                    session.add(row)
                else:
                    access, refresh, seconds = answer
                    row.access_token, row.refresh_token = access, refresh
                    row.expires_at = now + timedelta(seconds=seconds)
                    row.refreshed_at, row.failed_at = now, None
                    session.add(row)
            # Committed: the new pair is stored before anything uses it.
            if answer is None:
                if first:
                    log.error(
                        "Zalo OA token refresh refused: an OA admin must grant the app access "
                        "again and put the new refresh token in ZALO_OA_REFRESH_TOKEN, "
                        "then restart the bot"
                    )
                    if self._on_failure is not None:
                        await self._on_failure()
                raise RefreshFailed("Zalo refused the refresh token")
            self._access = (row.access_token, row.expires_at)
            log.info("Zalo OA tokens refreshed")
            return row.access_token

    async def _ask(self, refresh_token: str) -> tuple[str, str, int] | None:
        """Spend the refresh token for a new pair; None when Zalo says no."""
        try:
            async with self._http.post(
                f"{self._settings.oauth_url}/v4/oa/access_token",
                data={
                    "app_id": self._settings.app_id,
                    "grant_type": "refresh_token",
                    "refresh_token": refresh_token,
                },
                headers={"secret_key": self._app_secret},
                timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT),
            ) as response:
                body = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            # Not a refusal: the token may or may not be spent; the next try tells.
            raise DeliveryError(
                f"token refresh: {type(error).__name__}", reason=DeliveryReason.TRANSIENT
            ) from None
        # OAuth errors come with HTTP 200 and no numeric code: no access_token is a failure.
        access = body.get("access_token") if isinstance(body, dict) else None
        refresh = body.get("refresh_token") if isinstance(body, dict) else None
        if not isinstance(access, str) or not access or not isinstance(refresh, str):
            return None
        try:
            seconds = int(body.get("expires_in", 3600))
        except (TypeError, ValueError):
            seconds = 3600
        return access, refresh, seconds


def _choices_fit(message: Outbound) -> bool:
    flat = [choice for row in message.choices for choice in row]
    return 0 < len(flat) <= MAX_BUTTONS and all(
        len(choice.label) <= BUTTON_LABEL_LIMIT for choice in flat
    )


class ZaloOAChannel:
    """Consultation messages to the OA's followers; the core reads ``capabilities``."""

    name = NAME
    supports_buttons = True

    def __init__(
        self,
        settings: ZaloOASection,
        tokens: TokenKeeper,
        http: aiohttp.ClientSession,
        media: zalo.MediaStore | None = None,
    ) -> None:
        self._settings = settings
        self._tokens = tokens
        self._http = http
        self.media = media or zalo.MediaStore(NAME)
        self.capabilities = capabilities(settings.rate_per_second)

    async def _call(self, path: str, *, patient: bool, **kwargs: Any) -> dict[str, Any]:
        """POST to the Open API; refresh once on -216/-220; map errors to reasons."""
        refreshed = False
        attempt = 0
        while True:
            token = await self._tokens.access_token()
            try:
                async with self._http.post(
                    f"{self._settings.api_url}{path}",
                    headers={"access_token": token},
                    timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT),
                    **kwargs,
                ) as response:
                    body = await response.json(content_type=None)
                    status = response.status
            except (aiohttp.ClientError, TimeoutError, ValueError) as error:
                failure = DeliveryError(type(error).__name__, reason=DeliveryReason.TRANSIENT)
            else:
                code = body.get("error") if isinstance(body, dict) else None
                if status == 200 and code == 0:
                    return body.get("data") or {}
                if code in _TOKEN_ERRORS and not refreshed:
                    refreshed = True
                    await self._tokens.refresh(stale=token)
                    continue
                failure = _failure(status, code, body)
            attempt += 1
            if failure.permanent or not patient or attempt >= ATTEMPTS:
                raise failure
            await asyncio.sleep(failure.retry_after or BACKOFF[min(attempt, len(BACKOFF)) - 1])

    async def send(self, chat: str, message: Outbound, *, patient: bool = True) -> Sent:
        """Send a photo (uploaded first), then the text, the choices as buttons when they fit."""
        ids: list[str] = []
        if message.media is not None:
            ids.append(await self._send_photo(chat, message.media, patient=patient))
        pieces = split_text(message.text, zalo.TEXT_LIMIT) if message.text else []
        for number, piece in enumerate(pieces, start=1):
            body: dict[str, Any] = {"text": piece}
            if number == len(pieces) and _choices_fit(message):
                body["attachment"] = {
                    "type": "template",
                    "payload": {
                        "buttons": [
                            {
                                "title": choice.label,
                                "type": "oa.query.hide",
                                "payload": CHOICE_MARK + choice.data,
                            }
                            for row in message.choices
                            for choice in row
                        ]
                    },
                }
            data = await self._call(
                "/v3.0/oa/message/cs",
                patient=patient,
                json={"recipient": {"user_id": chat}, "message": body},
            )
            ids.append(str(data.get("message_id", "")))
        if not ids:
            raise DeliveryError("nothing to send", reason=DeliveryReason.REFUSED)
        return Sent(chat, ids[0], tuple(ids[1:]))

    async def _send_photo(self, chat: str, media: Media, *, patient: bool) -> str:
        if media.kind is not EventKind.PHOTO or media.data is None:
            raise DeliveryError("only uploaded photos reach Zalo", reason=DeliveryReason.REFUSED)
        if len(media.data) > PHOTO_UPLOAD_LIMIT:
            raise DeliveryError("photo over 1 MB", reason=DeliveryReason.TOO_BIG)
        form = aiohttp.FormData()
        form.add_field(
            "file",
            media.data,
            filename=media.file_name or "photo.jpg",
            content_type=media.mime_type or "image/jpeg",
        )
        uploaded = await self._call("/v2.0/oa/upload/image", patient=patient, data=form)
        element = {"media_type": "image", "attachment_id": uploaded.get("attachment_id", "")}
        attachment = {
            "type": "template",
            "payload": {"template_type": "media", "elements": [element]},
        }
        data = await self._call(
            "/v3.0/oa/message/cs",
            patient=patient,
            json={"recipient": {"user_id": chat}, "message": {"attachment": attachment}},
        )
        return str(data.get("message_id", ""))

    async def download(self, file_id: str) -> bytes:
        """Return a file fetched when it arrived (Zalo's links expire)."""
        return self.media.get(file_id)

    async def acknowledge(
        self, event: Inbound, notice: str | None = None, *, alert: bool = False
    ) -> None:
        """Nothing to acknowledge: a button tap arrives as an ordinary message."""

    async def remove_choices(self, chat: str, message_id: str) -> None:
        """Nothing to do: sent messages cannot be changed on Zalo."""

    async def edit(self, chat: str, message_id: str, message: Outbound) -> None:
        """Refuse: Zalo cannot edit a sent message."""
        raise DeliveryError("Zalo cannot edit messages", reason=DeliveryReason.REFUSED)

    async def pin(self, chat: str, message_id: str) -> None:
        """Refuse: a resident's chat has nothing to pin."""
        raise DeliveryError("Zalo cannot pin messages", reason=DeliveryReason.REFUSED)

    async def unpin(self, chat: str, message_id: str) -> None:
        """Refuse: a resident's chat has nothing to pin."""
        raise DeliveryError("Zalo cannot pin messages", reason=DeliveryReason.REFUSED)

    async def delete(self, chat: str, message_ids: Sequence[str]) -> list[str]:
        """Return every id: Zalo cannot delete a message from the user's phone."""
        return list(message_ids)


def _failure(status: int, code: object, body: object) -> DeliveryError:
    """Judge an Open API error; every error arrives as HTTP 200 with a negative code."""
    message = body.get("message") if isinstance(body, dict) else None
    description = f"Zalo OA error {code}: {message}" if code is not None else f"HTTP {status}"
    if status >= 500 or (status != 200 and code is None):
        return DeliveryError(description, reason=DeliveryReason.TRANSIENT)
    if code == -32:
        return DeliveryError(description, reason=DeliveryReason.RATE_LIMITED, retry_after=1.0)
    if code in _WINDOW_ERRORS:
        return DeliveryError(description, reason=DeliveryReason.WINDOW_CLOSED)
    if code == -213:
        return DeliveryError(description, reason=DeliveryReason.BLOCKED)
    if code in _TOKEN_ERRORS:
        return DeliveryError(description, reason=DeliveryReason.TRANSIENT)
    return DeliveryError(description, reason=DeliveryReason.REFUSED)


def _string(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _point(payload: object) -> Location | None:
    """Return a shared location (Zalo sends strings) if it is a point on Earth."""
    if not isinstance(payload, dict) or not isinstance(payload.get("coordinates"), dict):
        return None
    coordinates = payload["coordinates"]
    try:
        latitude = float(coordinates.get("latitude"))
        longitude = float(coordinates.get("longitude"))
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(latitude) and math.isfinite(longitude)):
        return None
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        return None
    return Location(latitude, longitude)


def message_id(body: dict[str, Any]) -> str | None:
    """The delivery's message id, by which repeats are dropped; None for events without one."""
    message = body.get("message")
    return _string(message.get("msg_id")) if isinstance(message, dict) else None


async def to_inbound(
    body: dict[str, Any], http: aiohttp.ClientSession, media: zalo.MediaStore
) -> Inbound | None:
    """Turn a webhook event into a neutral event, fetching its media at once; None: ignore.

    Only ``sender.id`` is read about the person: the body carries no name, and nothing else
    is kept.
    """
    name = body.get("event_name")
    sender = body.get("sender")
    message = body.get("message")
    if not isinstance(name, str) or name.startswith(_IGNORED_PREFIXES):
        return None
    if not isinstance(sender, dict) or not isinstance(message, dict):
        # follow/unfollow carry a follower, not a sender: nothing to answer.
        return None
    chat = _string(sender.get("id"))
    if chat is None:
        return None
    common: dict[str, Any] = {
        "channel": NAME,
        "chat": chat,
        "user": chat,
        "message_id": _string(message.get("msg_id")),
    }
    attachments = message.get("attachments")
    first = attachments[0] if isinstance(attachments, list) and attachments else {}
    payload = first.get("payload") if isinstance(first, dict) else None
    text = _string(message.get("text"))
    if name == "user_send_text" and text is not None:
        if text.startswith(CHOICE_MARK):
            return Inbound(kind=EventKind.CHOICE, choice=text[len(CHOICE_MARK) :], **common)
        if text.startswith("/") and len(text) > 1:
            command, _, args = text[1:].partition(" ")
            return Inbound(kind=EventKind.COMMAND, command=command.lower(), args=args, **common)
        return Inbound(kind=EventKind.TEXT, text=text, **common)
    if name == "user_send_location":
        place = _point(payload)
        if place is not None:
            return Inbound(kind=EventKind.LOCATION, location=place, **common)
    kind = _MEDIA_EVENTS.get(name)
    if kind is not None and isinstance(payload, dict) and _string(payload.get("url")):
        file_name = _string(payload.get("name"))
        try:
            data = await zalo.fetch(http, payload["url"])
        except DeliveryError as error:
            log.warning("Zalo OA: a %s could not be fetched (%s)", kind.value, error.reason)
            return Inbound(kind=EventKind.UNSUPPORTED, **common)
        handle = media.keep(data)
        item = Media(kind, handle, file_name=file_name, size=len(data))
        return Inbound(kind=kind, media=item, text=text, **common)
    if name in _UNSUPPORTED_EVENTS or name.startswith("user_send_"):
        return Inbound(kind=EventKind.UNSUPPORTED, **common)
    log.info("Zalo OA: event %r ignored", name[:40])
    return None


def webhook(
    settings: ZaloOASection,
    *,
    secret_key: str,
    intake: zalo.Intake,
    dispatcher: Dispatcher,
    http: aiohttp.ClientSession,
    media: zalo.MediaStore,
    on_unfollow: Callable[[str], Awaitable[None]] | None = None,
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The handler of POST /zalo/oa: check the signature, answer 200, then do the work.

    ``on_unfollow`` receives the id of a follower who left the OA.
    """

    async def handle(request: web.Request) -> web.Response:
        """Check a delivery's signature over its raw body; accept it and work after."""
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            log.warning("Zalo OA webhook: a body that is not JSON was refused")
            return web.Response(status=400, text="not JSON")
        timestamp = body.get("timestamp") if isinstance(body, dict) else None
        given = request.headers.get("X-ZEvent-Signature")
        expected = expected_signature(settings.app_id, raw, str(timestamp or ""), secret_key)
        if not isinstance(body, dict) or not zalo.same_secret(given, expected):
            # No body in the log: it holds the sender's id and words.
            log.warning("Zalo OA webhook: a delivery with a wrong signature was refused")
            return web.Response(status=401, text="bad signature")

        follower = body.get("follower")
        if body.get("event_name") == "unfollow" and isinstance(follower, dict):
            left = _string(follower.get("id"))
            if left is not None and on_unfollow is not None:
                intake.later(on_unfollow(left))
            return web.Response(text="ok")

        async def convert() -> Inbound | None:
            return await to_inbound(body, http, media)

        sender = body.get("sender")
        chat = _string(sender.get("id")) if isinstance(sender, dict) else None
        intake.later(zalo.serve(intake, dispatcher, message_id(body), convert), chat=chat)
        return web.Response(text="ok")

    return handle
