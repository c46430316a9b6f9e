"""The Zalo frontends: the OA's and the bot's channels, webhook routes, polling and token jobs."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web
from pydantic import SecretStr

from bot.channels import zalo, zalo_bot, zalo_oa
from bot.webhook import WebhookServer
from handlers.context import Services
from handlers.dispatch import Dispatcher
from handlers.events import DeliveryError, Outbound
from handlers.settings import Settings
from storage import broadcasts
from storage.db import unit_of_work

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.Response]]


def _secret(value: SecretStr | None) -> str:
    return value.get_secret_value() if value is not None else ""


class MissingSecret(Exception):
    """A Zalo frontend is enabled but a secret it needs is not in the environment."""


class ZaloFrontends:
    """Whatever of the OA and the bot config.toml enables, started and stopped as one."""

    def __init__(self, settings: Settings, services: Services, dispatcher: Dispatcher) -> None:
        self.settings = settings
        self.services = services
        self.dispatcher = dispatcher
        self.http: aiohttp.ClientSession | None = None
        self.tokens: zalo_oa.TokenKeeper | None = None
        self.poller: zalo_bot.Poller | None = None
        self.intakes: list[zalo.Intake] = []
        self._oa_handler: Handler | None = None
        self._bot_handler: Handler | None = None
        # Zalo asks for one poll a second at most; tests poll faster.
        self.poll_interval = zalo_bot.POLL_INTERVAL
        self.poll_timeout = zalo_bot.POLL_TIMEOUT
        self._check()

    def _check(self) -> None:
        oa, bot = self.settings.zalo_oa, self.settings.zalo_bot
        needed: list[str] = []
        if oa.enabled:
            if not oa.app_id:
                needed.append("[zalo_oa] app_id")
            if not _secret(self.settings.zalo_oa_app_secret):
                needed.append("ZALO_OA_APP_SECRET")
            if not _secret(self.settings.zalo_oa_secret_key):
                needed.append("ZALO_OA_SECRET_KEY")
        if bot.enabled:
            if not _secret(self.settings.zalo_bot_token):
                needed.append("ZALO_BOT_TOKEN")
            if bot.mode == "webhook" and len(_secret(self.settings.zalo_bot_webhook_secret)) < 8:
                needed.append("ZALO_BOT_WEBHOOK_SECRET (8 to 256 characters)")
        if needed:
            raise MissingSecret("Zalo is enabled but these are not set: " + ", ".join(needed))

    @property
    def enabled(self) -> bool:
        """Whether any Zalo frontend runs."""
        return self.settings.zalo_oa.enabled or self.settings.zalo_bot.enabled

    @property
    def needs_webhooks(self) -> bool:
        """Whether the webhook server must listen for Zalo."""
        bot = self.settings.zalo_bot
        return self.settings.zalo_oa.enabled or (bot.enabled and bot.mode == "webhook")

    def route(self, server: WebhookServer) -> None:
        """Serve /zalo/oa and /zalo/bot on the webhook server; call before it starts.

        Until ``start`` has made the channels, a delivery gets 503 and Zalo sends it again.
        """
        if self.settings.zalo_oa.enabled:
            server.route(zalo_oa.PATH, self._on_oa)
        bot = self.settings.zalo_bot
        if bot.enabled and bot.mode == "webhook":
            server.route(zalo_bot.PATH, self._on_bot)

    async def _on_oa(self, request: web.Request) -> web.Response:
        if self._oa_handler is None:
            return web.Response(status=503, text="starting")
        return await self._oa_handler(request)

    async def _on_bot(self, request: web.Request) -> web.Response:
        if self._bot_handler is None:
            return web.Response(status=503, text="starting")
        return await self._bot_handler(request)

    async def start(self) -> None:
        """Create the channels and the webhook handlers, or start polling."""
        if not self.enabled:
            return
        self.http = aiohttp.ClientSession()
        services, settings = self.services, self.settings
        if settings.zalo_oa.enabled:
            self.tokens = zalo_oa.TokenKeeper(
                settings.zalo_oa,
                app_secret=_secret(settings.zalo_oa_app_secret),
                sessions=services.sessions,
                clock=services.clock,
                http=self.http,
                on_failure=self.tell_officers,
            )
            await self.tokens.seed(_secret(settings.zalo_oa_refresh_token) or None)
            channel = zalo_oa.ZaloOAChannel(settings.zalo_oa, self.tokens, self.http)
            services.channels[zalo_oa.NAME] = channel
            intake = zalo.Intake(zalo_oa.NAME, services.sessions, services.clock)
            self.intakes.append(intake)
            self._oa_handler = zalo_oa.webhook(
                settings.zalo_oa,
                secret_key=_secret(settings.zalo_oa_secret_key),
                intake=intake,
                dispatcher=self.dispatcher,
                http=self.http,
                media=channel.media,
                on_unfollow=self.forget_follower,
            )
        if settings.zalo_bot.enabled:
            bot = zalo_bot.ZaloBotChannel(
                settings.zalo_bot, _secret(settings.zalo_bot_token), self.http
            )
            services.channels[zalo_bot.NAME] = bot
            intake = zalo.Intake(zalo_bot.NAME, services.sessions, services.clock)
            self.intakes.append(intake)
            if settings.zalo_bot.mode == "polling":
                self.poller = zalo_bot.Poller(
                    bot,
                    intake=intake,
                    dispatcher=self.dispatcher,
                    http=self.http,
                    interval=self.poll_interval,
                    timeout=self.poll_timeout,
                )
                self.poller.start()
            else:
                self._bot_handler = zalo_bot.webhook(
                    secret=_secret(settings.zalo_bot_webhook_secret),
                    intake=intake,
                    dispatcher=self.dispatcher,
                    http=self.http,
                    media=bot.media,
                )
                await self._set_bot_webhook(bot)

    async def _set_bot_webhook(self, bot: zalo_bot.ZaloBotChannel) -> None:
        public = self.settings.webhook.public_url
        if not public:
            log.warning("Zalo bot in webhook mode but [webhook] public_url is empty: not set")
            return
        status, body = await bot.call(
            "setWebhook",
            {
                "url": public + zalo_bot.PATH,
                "secret_token": _secret(self.settings.zalo_bot_webhook_secret),
            },
        )
        if status != 200 or not isinstance(body, dict) or body.get("ok") is not True:
            log.error("Zalo bot: setWebhook refused (HTTP %d)", status)

    async def forget_follower(self, follower: str) -> None:
        """End the subscription of someone who unfollowed the OA, and delete its address."""
        services = self.services
        chat_key = services.keyring.chat_key(zalo_oa.NAME, follower)
        async with unit_of_work(services.sessions) as session:
            forgot = await broadcasts.forget_subscriber(
                session=session, chat_key=chat_key, now=services.clock()
            )
        if forgot:
            log.info("A Zalo OA follower left: their subscription and address were deleted")

    async def refresh_tokens(self, services: Services) -> None:
        """Refresh the OA's tokens: the twice-daily job."""
        if self.tokens is not None:
            await self.tokens.refresh(force=True)

    async def tell_officers(self) -> None:
        """Tell every ward's officers' group once that the OA stopped working."""
        services = self.services
        text = services.officer_text("zalo.refresh_failed")
        for ward in self.settings.wards:
            try:
                await services.channel(services.officer_channel).send(
                    str(ward.officer_chat_id), Outbound(text=text)
                )
            except DeliveryError as error:
                log.warning("Ward %s not told of the Zalo failure: %s", ward.code, error.reason)

    async def idle(self) -> None:
        """Wait for every accepted Zalo event to be handled."""
        for intake in self.intakes:
            await intake.idle()

    async def stop(self) -> None:
        """Stop polling and finish the events already accepted."""
        if self.poller is not None:
            await self.poller.stop()
        await self.idle()

    async def close(self) -> None:
        """Close the HTTP client, once nothing sends any more."""
        if self.http is not None:
            await self.http.close()
            self.http = None
