"""How updates reach the dispatcher: a frontend each (Telegram polling, Telegram webhook).

The Runtime starts the services and jobs; a frontend only brings updates in and, on stop,
stops taking new ones. Zalo's webhooks are frontends of the same kind on the same server.
"""

from __future__ import annotations

import hmac
import json
import logging
from datetime import timedelta
from typing import Any, Final, Protocol

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from bot import metrics
from bot.channels import telegram as telegram_channel
from handlers.context import Services
from handlers.settings import TelegramSection
from storage import inbound
from storage.db import unit_of_work

log = logging.getLogger(__name__)

# PTB's Application; only the adapter and bot/app.py import telegram (tests/test_layout.py).
Application = Any

ALLOWED_UPDATES: Final = ["message", "callback_query"]
SECRET_HEADER: Final = "X-Telegram-Bot-Api-Secret-Token"
SOURCE: Final = "telegram"


class Frontend(Protocol):
    """Brings updates in, until stopped."""

    async def start(self) -> None:
        """Start taking updates."""

    async def stop(self) -> None:
        """Stop taking new updates (those already taken are finished by the Runtime)."""


class TelegramPolling:
    """Long polling with getUpdates: one process only, no public address needed."""

    def __init__(self, application: Application, settings: TelegramSection) -> None:
        self.application = application
        self.settings = settings

    async def start(self) -> None:
        """Start polling; PTB first deletes any webhook (Telegram refuses getUpdates then)."""
        assert self.application.updater is not None
        await self.application.updater.start_polling(
            poll_interval=0.0,
            timeout=timedelta(seconds=self.settings.poll_timeout),
            allowed_updates=ALLOWED_UPDATES,
        )

    async def stop(self) -> None:
        """Stop polling; the updates fetched already are handled."""
        updater = self.application.updater
        if updater is not None and updater.running:
            await updater.stop()


class TelegramWebhook:
    """Telegram posts each update to ``public_url`` + PATH; any process may receive it.

    The secret token is checked in constant time; an update is answered 200 as soon as it is
    recorded as seen (a repeat, which Telegram sends when an answer did not reach it, is
    dropped by its update_id in the database, whichever process it reaches), and handled after.
    """

    PATH: Final = "/telegram"

    def __init__(
        self,
        application: Application,
        services: Services,
        *,
        secret: str,
        public_url: str,
    ) -> None:
        self.application = application
        self.services = services
        self._secret = secret.encode()
        self.url = public_url.rstrip("/") + self.PATH
        self._accepting = False

    async def start(self) -> None:
        """Register the webhook with Telegram and start taking updates."""
        self._accepting = True
        await self.application.bot.set_webhook(
            url=self.url, secret_token=self._secret.decode(), allowed_updates=ALLOWED_UPDATES
        )
        log.info("Telegram webhook set")

    async def stop(self) -> None:
        """Answer 503 from now on: Telegram retries, and another process takes the update.

        The webhook stays registered: the other processes go on serving it.
        """
        self._accepting = False

    async def handle(self, request: web.Request) -> web.Response:
        """Check, record and queue one update; answer at once."""
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, self._secret):
            # Not logged with its body or its sender: whoever it is, it is not Telegram.
            metrics.WEBHOOK_REQUESTS.labels(SOURCE, "unauthorized").inc()
            log.warning("Telegram webhook: a request without the right secret token refused")
            return web.Response(status=401, text="Unauthorized")
        if not self._accepting:
            metrics.WEBHOOK_REQUESTS.labels(SOURCE, "stopping").inc()
            return web.Response(status=503, text="Stopping")
        try:
            data = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError):
            metrics.WEBHOOK_REQUESTS.labels(SOURCE, "malformed").inc()
            log.warning("Telegram webhook: a body that is not JSON refused")
            return web.Response(status=400, text="Bad Request: not JSON")
        update_id = data.get("update_id") if isinstance(data, dict) else None
        if not isinstance(update_id, int) or isinstance(update_id, bool):
            metrics.WEBHOOK_REQUESTS.labels(SOURCE, "malformed").inc()
            log.warning("Telegram webhook: JSON without an update_id refused")
            return web.Response(status=400, text="Bad Request: no update_id")
        try:
            async with unit_of_work(self.services.sessions) as session:
                first = await inbound.first_delivery(
                    session=session,
                    source=SOURCE,
                    update_id=str(update_id),
                    now=self.services.clock(),
                )
        except (SQLAlchemyError, OSError) as error:
            # Telegram tries again later; nothing is lost.
            log.error(
                "Telegram webhook: update %d not recorded: %s", update_id, type(error).__name__
            )
            return web.Response(status=503, text="Try again")
        if not first:
            metrics.WEBHOOK_REQUESTS.labels(SOURCE, "repeat").inc()
            log.info("Telegram webhook: update %d was already received; dropped", update_id)
            return web.Response(text="ok")
        update = telegram_channel.read_update(data, self.application.bot)
        if update is not None:
            await self.application.update_queue.put(update)
        metrics.WEBHOOK_REQUESTS.labels(SOURCE, "accepted").inc()
        return web.Response(text="ok")
