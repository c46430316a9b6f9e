"""ZaloOAEmulator: an in-process Zalo Official Account Open API and the followers who write to it.

What it reproduces, each from ../shared/ZALO.md: OAuth refresh with single-use refresh tokens
(an OAuth error is HTTP 200 without ``access_token``), the bare ``access_token`` header, every
API error as HTTP 200 with a negative ``error``, the 7-day window (-230), the app's rate limit
(-32), expired (-220) and unknown (-216) tokens, up to 5 buttons of ``oa.query.hide`` whose tap
comes back as text, image upload to an attachment id, image URLs that expire, and webhook
deliveries signed ``mac=sha256(app_id + body + timestamp + OA secret key)`` with every id and
time a string. Zalo retries a delivery that was not answered 200: ``deliver`` can do the same.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Self

import aiohttp
from aiohttp import web

JsonDict = dict[str, Any]
Clock = Callable[[], datetime]

WINDOW: Final = timedelta(days=7)
TEXT_LIMIT: Final = 2000
MAX_BUTTONS: Final = 5
BUTTON_TITLE_LIMIT: Final = 20
IMAGE_UPLOAD_LIMIT: Final = 1024 * 1024
ACCESS_SECONDS: Final = 90000
# Endpoints that would tell the bot who a resident is: the bot must never call them.
PROFILE_PATHS: Final = (
    "/v2.0/oa/getprofile",
    "/v3.0/oa/user/detail",
    "/v3.0/oa/user/getlist",
    "/v2.0/oa/conversation",
    "/v2.0/oa/listrecentchat",
)


def _now() -> datetime:
    return datetime.now(UTC)


def _ms(moment: datetime) -> str:
    return str(int(moment.timestamp() * 1000))


def signature(app_id: str, body: bytes, timestamp: str, secret_key: str) -> str:
    """Return the X-ZEvent-Signature value Zalo sends with a webhook body."""
    digest = hashlib.sha256(app_id.encode() + body + timestamp.encode() + secret_key.encode())
    return f"mac={digest.hexdigest()}"


@dataclass
class OAUser:
    """A Zalo user who follows the OA; ``id`` is scoped to this OA, a string of digits."""

    id: str
    display_name: str
    last_interaction: datetime | None = None
    following: bool = True


@dataclass
class OAMessage:
    """What the OA sent to a user, as the user sees it."""

    user_id: str
    message_id: str
    text: str | None = None
    buttons: list[JsonDict] = field(default_factory=list)
    image: bytes | None = None


class ZaloOAEmulator:
    """The Open API and OAuth server on loopback, plus the users who write to the OA."""

    def __init__(
        self,
        *,
        app_id: str = "4183021950237788512",
        oa_id: str = "579745863508352884",
        app_secret: str = "zalo-app-secret-never-logged",
        secret_key: str = "zalo-oa-secret-key-never-logged",
        clock: Clock = _now,
    ) -> None:
        self.app_id = app_id
        self.oa_id = oa_id
        self.app_secret = app_secret
        self.secret_key = secret_key
        self.clock = clock
        self.webhook_url = ""
        self.users: dict[str, OAUser] = {}
        self.sent: list[OAMessage] = []
        # Every API path the bot called, in order, to prove what it never calls.
        self.calls: list[str] = []
        self.refresh_tokens: set[str] = set()
        # Each access token and when it expires.
        self.access_tokens: dict[str, datetime] = {}
        # A refresh token that was already used: using it again is what loses the grant.
        self.spent_refresh_tokens: set[str] = set()
        self.refreshes = 0
        # Seconds each OAuth answer takes, so that two refreshes overlap in tests.
        self.oauth_delay = 0.0
        # Calls an app may make per minute before -32; None: no limit.
        self.rate_limit: int | None = None
        self._minute: tuple[int, int] = (0, 0)
        # How long an image URL in a webhook can be fetched.
        self.media_ttl = timedelta(hours=1)
        self._media: dict[str, tuple[bytes, datetime]] = {}
        self._uploads: dict[str, bytes] = {}
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.url = ""

    # Lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve on ``host:port``; port 0 picks a free one."""
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_post("/v4/oa/access_token", self._oauth)
        app.router.add_post("/v3.0/oa/message/cs", self._send)
        app.router.add_post("/v2.0/oa/upload/image", self._upload)
        app.router.add_get("/media/{key}", self._serve_media)
        app.router.add_route("*", "/{path:.*}", self._unknown)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
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

    # Grants and users

    def grant(self) -> str:
        """Return a fresh refresh token, as an OA admin's consent in the browser yields."""
        token = secrets.token_urlsafe(32)
        self.refresh_tokens.add(token)
        return token

    def expire_access_tokens(self) -> None:
        """Make every access token expired (-220), as 25 hours later."""
        past = self.clock() - timedelta(seconds=1)
        self.access_tokens = dict.fromkeys(self.access_tokens, past)

    @property
    def grant_alive(self) -> bool:
        """Whether some refresh token still works (else an admin must consent again)."""
        return bool(self.refresh_tokens)

    def user(self, display_name: str = "Nguyễn Văn An") -> OAUser:
        """Return a new follower who has not written yet."""
        user_id = str(secrets.randbelow(9 * 10**18) + 10**18)
        person = OAUser(user_id, display_name)
        self.users[user_id] = person
        return person

    def messages_to(self, user: OAUser) -> list[OAMessage]:
        """Everything the OA sent to ``user``, oldest first."""
        return [m for m in self.sent if m.user_id == user.id]

    async def wait_for(self, user: OAUser, count: int) -> None:
        """Wait until the OA has sent ``user`` at least ``count`` messages."""
        async with self._changed:
            await self._changed.wait_for(lambda: len(self.messages_to(user)) >= count)

    def texts_to(self, user: OAUser) -> list[str]:
        """The texts the OA sent to ``user``, oldest first."""
        return [m.text for m in self.messages_to(user) if m.text is not None]

    # Webhook deliveries, as Zalo posts them

    def envelope(self, user: OAUser, event_name: str, message: JsonDict | None = None) -> JsonDict:
        """Build an event as Zalo posts it; the user has just interacted with the OA."""
        now = self.clock()
        user.last_interaction = now
        body: JsonDict = {
            "app_id": self.app_id,
            "user_id_by_app": str(int(user.id) + 7),
            "event_name": event_name,
            "timestamp": _ms(now),
        }
        if event_name in ("follow", "unfollow"):
            body["oa_id"] = self.oa_id
            body["follower"] = {"id": user.id}
            body["source"] = "oa_profile"
            return body
        body["sender"] = {"id": user.id}
        body["recipient"] = {"id": self.oa_id}
        body["message"] = {"msg_id": secrets.token_hex(16), **(message or {})}
        return body

    def text(self, user: OAUser, text: str) -> JsonDict:
        """A ``user_send_text`` event (also what a tap on an ``oa.query.hide`` button sends)."""
        return self.envelope(user, "user_send_text", {"text": text})

    def tap(self, user: OAUser, title: str) -> JsonDict:
        """The event a tap on the last message's button ``title`` sends: its payload, as text."""
        for message in reversed(self.messages_to(user)):
            for button in message.buttons:
                if button["title"] == title:
                    return self.text(user, button["payload"])
            if message.buttons:
                break
        raise LookupError(f"no button {title!r} on the last message with buttons")

    def image(self, user: OAUser, data: bytes, *, caption: str = "") -> JsonDict:
        """A ``user_send_image`` event whose URL serves ``data`` until ``media_ttl`` passes."""
        url = self._host(data)
        attachment = {"type": "image", "payload": {"url": url, "thumbnail": url}}
        return self.envelope(
            user, "user_send_image", {"text": caption, "attachments": [attachment]}
        )

    def file(self, user: OAUser, data: bytes, name: str, kind: str = "file") -> JsonDict:
        """A ``user_send_file`` (or audio/video, by ``kind``) event with a fetchable URL."""
        payload: JsonDict = {"url": self._host(data)}
        if kind == "file":
            payload |= {"name": name, "size": str(len(data)), "type": name.rsplit(".", 1)[-1]}
        return self.envelope(
            user, f"user_send_{kind}", {"attachments": [{"type": kind, "payload": payload}]}
        )

    def location(self, user: OAUser, latitude: float, longitude: float) -> JsonDict:
        """A ``user_send_location`` event; Zalo sends the coordinates as strings."""
        coordinates = {"latitude": str(latitude), "longitude": str(longitude)}
        attachment = {"type": "location", "payload": {"coordinates": coordinates}}
        return self.envelope(user, "user_send_location", {"attachments": [attachment]})

    def sticker(self, user: OAUser) -> JsonDict:
        """A ``user_send_sticker`` event."""
        payload = {"id": "bd5a1bd7ac92", "url": f"{self.url}/media/sticker"}
        return self.envelope(
            user, "user_send_sticker", {"attachments": [{"type": "sticker", "payload": payload}]}
        )

    async def deliver(
        self, event: JsonDict | bytes, *, signed: bool = True, key: str | None = None
    ) -> int:
        """POST an event to ``webhook_url`` as Zalo does; return the HTTP status.

        ``key`` signs with another key (a forger's); ``signed=False`` sends no signature.
        """
        body = event if isinstance(event, bytes) else json.dumps(event).encode()
        timestamp = event.get("timestamp", "0") if isinstance(event, dict) else "0"
        headers = {"Content-Type": "application/json"}
        if signed:
            headers["X-ZEvent-Signature"] = signature(
                self.app_id, body, str(timestamp), key or self.secret_key
            )
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.webhook_url, data=body, headers=headers) as response,
        ):
            await response.read()
            return response.status

    # The server

    def _host(self, data: bytes) -> str:
        key = secrets.token_urlsafe(12)
        self._media[key] = (data, self.clock() + self.media_ttl)
        return f"{self.url}/media/{key}"

    def _error(self, code: int, message: str) -> web.Response:
        return web.json_response({"error": code, "message": message})

    def _limited(self) -> bool:
        if self.rate_limit is None:
            return False
        minute = int(time.monotonic() // 60)
        start, count = self._minute
        count = count + 1 if start == minute else 1
        self._minute = (minute, count)
        return count > self.rate_limit

    def _token_problem(self, request: web.Request) -> web.Response | None:
        token = request.headers.get("access_token", "")
        expires = self.access_tokens.get(token)
        if expires is None:
            return self._error(-216, "Access token is invalid")
        if expires <= self.clock():
            return self._error(-220, "Access token has expired")
        if self._limited():
            return self._error(-32, "Exceeded the limit on requests")
        return None

    async def _oauth(self, request: web.Request) -> web.Response:
        form = await request.post()
        if self.oauth_delay:
            await asyncio.sleep(self.oauth_delay)
        failure = {
            "error_name": "Invalid parameter",
            "error_reason": "Invalid refresh token",
            "error_description": "Refresh token is invalid or expired",
            "error": -14014,
        }
        if request.headers.get("secret_key") != self.app_secret or form.get("app_id") != (
            self.app_id
        ):
            return web.json_response(failure | {"error_reason": "Invalid app"})
        refresh = str(form.get("refresh_token", ""))
        if form.get("grant_type") != "refresh_token" or refresh not in self.refresh_tokens:
            if refresh in self.spent_refresh_tokens:
                # A spent token used again voids the grant: an admin must consent again.
                self.refresh_tokens.clear()
            return web.json_response(failure)
        self.refresh_tokens.discard(refresh)
        self.spent_refresh_tokens.add(refresh)
        self.refreshes += 1
        access = secrets.token_urlsafe(48)
        self.access_tokens[access] = self.clock() + timedelta(seconds=ACCESS_SECONDS)
        new_refresh = self.grant()
        return web.json_response(
            {
                "access_token": access,
                "refresh_token": new_refresh,
                "expires_in": str(ACCESS_SECONDS),
            }
        )

    async def _send(self, request: web.Request) -> web.Response:
        self.calls.append(request.path)
        problem = self._token_problem(request)
        if problem is not None:
            return problem
        try:
            body = await request.json()
            user_id = body["recipient"]["user_id"]
            message = body["message"]
        except (ValueError, KeyError, TypeError):
            return self._error(-201, "Parameters are invalid")
        user = self.users.get(user_id) if isinstance(user_id, str) else None
        if user is None:
            return self._error(-201, "User id is invalid")
        if not user.following:
            return self._error(-213, "User has not followed the OA")
        if user.last_interaction is None or self.clock() - user.last_interaction > WINDOW:
            return self._error(-230, "User has not interacted with the OA in the last 7 days")
        sent = OAMessage(user_id, secrets.token_hex(16))
        text = message.get("text")
        if text is not None:
            if not isinstance(text, str) or not 0 < len(text) <= TEXT_LIMIT:
                return self._error(-201, "Text length is invalid")
            sent.text = text
        attachment = message.get("attachment")
        if isinstance(attachment, dict):
            payload = attachment.get("payload") or {}
            buttons = payload.get("buttons")
            if buttons is not None:
                if len(buttons) > MAX_BUTTONS or any(
                    len(b.get("title", "")) > BUTTON_TITLE_LIMIT for b in buttons
                ):
                    return self._error(-201, "Buttons are invalid")
                sent.buttons = buttons
            if payload.get("template_type") == "media":
                element = (payload.get("elements") or [{}])[0]
                data = self._uploads.get(element.get("attachment_id", ""))
                if data is None:
                    return self._error(-201, "Attachment id is invalid")
                sent.image = data
        if sent.text is None and sent.image is None:
            return self._error(-201, "Message is empty")
        self.sent.append(sent)
        async with self._changed:
            self._changed.notify_all()
        return web.json_response(
            {
                "error": 0,
                "message": "Success",
                "data": {"message_id": sent.message_id, "user_id": user_id},
            }
        )

    async def _upload(self, request: web.Request) -> web.Response:
        self.calls.append(request.path)
        problem = self._token_problem(request)
        if problem is not None:
            return problem
        form = await request.post()
        upload = form.get("file")
        if not isinstance(upload, web.FileField):
            return self._error(-201, "File is missing")
        data = upload.file.read()
        if len(data) > IMAGE_UPLOAD_LIMIT:
            return self._error(-210, "File size exceeds 1MB")
        key = secrets.token_urlsafe(24)
        self._uploads[key] = data
        return web.json_response(
            {"error": 0, "message": "Success", "data": {"attachment_id": key}}
        )

    async def _serve_media(self, request: web.Request) -> web.Response:
        stored = self._media.get(request.match_info["key"])
        if stored is None or stored[1] <= self.clock():
            return web.Response(status=403, text="URL signature expired")
        return web.Response(body=stored[0], content_type="image/jpeg")

    async def _unknown(self, request: web.Request) -> web.Response:
        self.calls.append(request.path)
        return self._error(-201, "Unknown endpoint")
