"""The emulator's webhook: posts queued updates to the bot's URL as Telegram does.

Telegram sends each update once the bot has a webhook, with the secret token in a header,
and keeps an update until the bot answers it with a 2xx; any other answer, or none, is
retried later and shown in getWebhookInfo's last_error_message. Several requests may be in
flight at once (max_connections, 40 by default), but never two for the same chat, so that a
chat's updates arrive in order (modelled on telegram-bot-api's WebhookActor, which queues
updates by chat).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Final

import aiohttp

from bot.emulator.state import JsonDict, World

SECRET_HEADER: Final = "X-Telegram-Bot-Api-Secret-Token"
DEFAULT_CONNECTIONS: Final = 40
# Telegram waits longer between retries (seconds to minutes); tests want them fast.
RETRY_SECONDS: Final = 0.05
TIMEOUT_SECONDS: Final = 10.0


def _chat_of(update: JsonDict) -> object:
    """The chat an update belongs to, or its own id when it names none."""
    for kind in ("message", "edited_message", "callback_query"):
        payload = update.get(kind)
        if isinstance(payload, dict):
            message = payload.get("message", payload)
            chat = message.get("chat") if isinstance(message, dict) else None
            if isinstance(chat, dict) and "id" in chat:
                return chat["id"]
            sender = payload.get("from")
            if isinstance(sender, dict) and "id" in sender:
                return sender["id"]
    return ("update", update.get("update_id"))


class WebhookSender:
    """Delivers the world's queued updates to one URL while a webhook is set."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.url = ""
        self.secret_token: str | None = None
        self.max_connections = DEFAULT_CONNECTIONS
        self.retry_seconds = RETRY_SECONDS
        self.last_error_message: str | None = None
        self.last_error_date: int | None = None
        # Every POST made: (update_id, HTTP status or 0 when the connection failed).
        self.attempts: list[tuple[int, int]] = []
        # The updates the bot answered with a 2xx, as posted (a test may post one again).
        self.delivered: list[JsonDict] = []
        self._workers: list[asyncio.Task[None]] = []
        self._in_flight: set[int] = set()
        self._busy_chats: set[object] = set()
        self._session: aiohttp.ClientSession | None = None

    def set(self, url: str, secret_token: str | None, max_connections: int | None) -> None:
        """Start posting to ``url`` (replacing any earlier webhook)."""
        self._stop_workers()
        self.url = url
        self.secret_token = secret_token
        self.max_connections = max_connections or DEFAULT_CONNECTIONS
        self.last_error_message = None
        self.last_error_date = None
        self._workers = [asyncio.create_task(self._work()) for _ in range(self.max_connections)]

    def clear(self) -> None:
        """Stop posting; updates wait for getUpdates again."""
        self.url = ""
        self._stop_workers()

    async def close(self) -> None:
        """Stop posting and close the connections."""
        workers = self._workers
        self.clear()
        for worker in workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _stop_workers(self) -> None:
        for worker in self._workers:
            worker.cancel()
        self._workers = []
        self._in_flight.clear()
        self._busy_chats.clear()

    def _next(self) -> JsonDict | None:
        for update in self.world.updates:
            chat = _chat_of(update)
            if update["update_id"] not in self._in_flight and chat not in self._busy_chats:
                return update
        return None

    async def _work(self) -> None:
        world = self.world
        while True:
            await world.changes.wait_for(lambda: self._next() is not None)
            update = self._next()
            if update is None:
                continue
            update_id, chat = update["update_id"], _chat_of(update)
            self._in_flight.add(update_id)
            self._busy_chats.add(chat)
            try:
                delivered = await self._post(update)
            finally:
                self._in_flight.discard(update_id)
                self._busy_chats.discard(chat)
            if delivered:
                self.delivered.append(update)
                world.updates[:] = [u for u in world.updates if u["update_id"] != update_id]
                world.changes.notify()
            else:
                await asyncio.sleep(self.retry_seconds)
                world.changes.notify()

    async def _post(self, update: JsonDict) -> bool:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS)
            )
        headers = {"Content-Type": "application/json"}
        if self.secret_token:
            headers[SECRET_HEADER] = self.secret_token
        try:
            async with self._session.post(
                self.url, data=json.dumps(update), headers=headers
            ) as response:
                status, reason = response.status, response.reason
                await response.read()
        except (aiohttp.ClientError, TimeoutError) as error:
            self.attempts.append((update["update_id"], 0))
            self._failed(
                "Connection refused"
                if isinstance(error, aiohttp.ClientConnectionError)
                else "Connection timed out"
            )
            return False
        self.attempts.append((update["update_id"], status))
        if 200 <= status < 300:
            return True
        self._failed(f"Wrong response from the webhook: {status} {reason}")
        return False

    def _failed(self, message: str) -> None:
        self.last_error_message = message
        self.last_error_date = int(self.world.clock())
