"""The playground's web page and its JSON API: read the chats, act as a demo person."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

from aiohttp import web

from bot.emulator import BotApiEmulator, EmuUser
from bot.playground.cast import Cast
from bot.playground.views import snapshot

STATIC: Final = Path(__file__).parent / "static"
DEMO_PHOTO: Final = STATIC / "demo-photo.png"
# A quiet lane in Phường Đông Cương, Thanh Hóa: where the demo resident "is".
DEMO_LOCATION: Final = (19.8235, 105.8046)
# Long polls end before common proxies and browsers give up on an idle request.
POLL_SECONDS: Final = 25.0

SendMonth = Callable[[], Awaitable[int]]

_EMULATOR: Final = web.AppKey("emulator", BotApiEmulator)
_CAST: Final = web.AppKey("cast", Cast)
_SEND_MONTH: Final[web.AppKey[SendMonth]] = web.AppKey("send_month")


def build_app(emulator: BotApiEmulator, cast: Cast, send_month: SendMonth) -> web.Application:
    """The page, its static files, the state long poll and the demo people's actions."""
    app = web.Application()
    app[_EMULATOR] = emulator
    app[_CAST] = cast
    app[_SEND_MONTH] = send_month
    app.router.add_get("/", _index)
    app.router.add_static("/static/", STATIC)
    app.router.add_get("/api/state", _state)
    app.router.add_get("/api/files/{file_id}", _file)
    app.router.add_post("/api/send", _send)
    app.router.add_post("/api/click", _click)
    app.router.add_post("/api/location", _location)
    app.router.add_post("/api/photo", _photo)
    app.router.add_post("/api/broadcast", _broadcast)
    return app


async def _index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})


async def _state(request: web.Request) -> web.Response:
    """Answer at once if the client's version is old, else when something changes."""
    emulator, cast = request.app[_EMULATOR], request.app[_CAST]
    known = request.query.get("v")
    state = snapshot(emulator, cast)
    if state["version"] == known:

        def changed() -> bool:
            nonlocal state
            state = snapshot(emulator, cast)
            return bool(state["version"] != known)

        try:
            async with asyncio.timeout(POLL_SECONDS):
                await emulator.world.changes.wait_for(changed)
        except TimeoutError:
            pass
    return web.json_response(state, headers={"Cache-Control": "no-store"})


async def _file(request: web.Request) -> web.Response:
    stored = request.app[_EMULATOR].world.files.get(request.match_info["file_id"])
    if stored is None:
        raise web.HTTPNotFound()
    mime = stored.mime_type
    if stored.kind == "photo":
        mime = "image/png" if stored.data.startswith(b"\x89PNG") else "image/jpeg"
    return web.Response(body=stored.data, content_type=mime or "application/octet-stream")


async def _send(request: web.Request) -> web.Response:
    """Type a message, a command, a reply-keyboard label, or a reply to a message."""
    emulator, body, user, chat = await _actor(request)
    text = _field(body, "text", str).strip()
    if not text:
        raise _refused("Tin nhắn trống")
    reply_to = body.get("reply_to")
    if reply_to is not None and not isinstance(reply_to, int):
        raise _refused("reply_to phải là số")
    if text.startswith("/") and reply_to is None:
        command, _, args = text.partition(" ")
        message = await emulator.send_command(user, command, args=args, chat=chat)
    else:
        try:
            message = await emulator.send_text(user, text, chat=chat, reply_to=reply_to)
        except LookupError:
            raise _refused("Tin nhắn được trả lời không còn") from None
    return web.json_response({"message_id": message.message_id})


async def _click(request: web.Request) -> web.Response:
    """Tap an inline button; the page shows the bot's answer when it comes."""
    emulator, body, user, chat = await _actor(request)
    message = emulator.world.find(chat, _field(body, "message_id", int))
    if message is None:
        raise _refused("Tin nhắn không còn")
    data = _field(body, "data", str)
    if not any(button.data == data for row in message.buttons for button in row):
        raise _refused("Nút này không còn trên tin nhắn")
    query_id = await emulator.click_data(user, message, data)
    return web.json_response({"query_id": query_id})


async def _location(request: web.Request) -> web.Response:
    """Share the demo location, as the 📎 → Vị trí menu would."""
    emulator, _, user, chat = await _actor(request)
    message = await emulator.send_location(user, *DEMO_LOCATION, chat=chat)
    return web.json_response({"message_id": message.message_id})


async def _photo(request: web.Request) -> web.Response:
    """Send the demo photo that ships with the page."""
    emulator, body, user, chat = await _actor(request)
    caption = body.get("caption") or None
    if caption is not None and not isinstance(caption, str):
        raise _refused("Chú thích phải là chữ")
    message = await emulator.send_photo(user, DEMO_PHOTO.read_bytes(), caption=caption, chat=chat)
    return web.json_response({"message_id": message.message_id})


async def _broadcast(request: web.Request) -> web.Response:
    """Send this month's awareness message to the demo residents who subscribed."""
    sent = await request.app[_SEND_MONTH]()
    return web.json_response({"sent": sent})


async def _actor(
    request: web.Request,
) -> tuple[BotApiEmulator, dict[str, Any], EmuUser, int]:
    """The emulator, the JSON body, the demo user acting and the chat they act in."""
    emulator, cast = request.app[_EMULATOR], request.app[_CAST]
    try:
        body = await request.json()
    except ValueError:
        raise _refused("Cần một đối tượng JSON") from None
    if not isinstance(body, dict):
        raise _refused("Cần một đối tượng JSON")
    user_id, chat_id = _field(body, "user", int), _field(body, "chat", int)
    # Only the demo people, each where they belong: the page is no back door into other chats.
    if cast.person(user_id) is None or not cast.may_write(user_id, chat_id):
        raise _refused("Người này không ở trong cuộc trò chuyện đó")
    return emulator, body, emulator.world.users[user_id], chat_id


def _field(body: dict[str, Any], name: str, kind: type) -> Any:
    value = body.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise _refused(f"Thiếu hoặc sai trường {name}")
    return value


def _refused(reason: str) -> web.HTTPBadRequest:
    """A request the page never makes: 400 with a short reason the page can show."""
    body = json.dumps({"error": reason}, ensure_ascii=False)
    return web.HTTPBadRequest(text=body, content_type="application/json")
