"""Start and stop the playground: emulator, the real bot against it, and the web page."""

from __future__ import annotations

import asyncio
import logging
import signal
from functools import partial
from typing import Final

from aiohttp import web

from bot.app import Runtime, open_services
from bot.config import Settings
from bot.emulator import BotApiEmulator
from bot.playground.cast import Cast
from bot.playground.web import build_app
from broadcasts import schedule
from handlers.context import Clock, utc_now

log = logging.getLogger(__name__)

# Only ever sent to the emulator on loopback; it unlocks nothing on the real Telegram.
PLAYGROUND_TOKEN: Final = "4242424242:playground-local-only"
BOT_USERNAME: Final = "homthu_playground_bot"


class ListenError(Exception):
    """The page cannot listen where config.toml says: the port is taken or not allowed."""


class Playground:
    """The real bot Runtime talking to the emulator, and a page to be its users on."""

    def __init__(self, settings: Settings, *, secret: bytes, clock: Clock = utc_now) -> None:
        self.cast = Cast.from_settings(settings)
        self.emulator = BotApiEmulator(token=PLAYGROUND_TOKEN, bot_username=BOT_USERNAME)
        self._settings = settings
        self._secret = secret
        self._clock = clock
        self.runtime: Runtime | None = None
        self._web: web.AppRunner | None = None
        self.url = ""

    async def start(self, *, jobs: bool = True) -> None:
        """Start the emulator, the bot, then the page; stop what started if a step fails."""
        try:
            await self.emulator.start()
            self.cast.populate(self.emulator)
            settings = self._settings.model_copy(
                update={
                    "telegram": self._settings.telegram.model_copy(
                        update={
                            "base_url": self.emulator.base_url,
                            "base_file_url": self.emulator.base_file_url,
                        }
                    )
                }
            )
            services = await open_services(settings, secret=self._secret, clock=self._clock)
            self.runtime = Runtime(settings, services, token=PLAYGROUND_TOKEN)
            await self.runtime.start(jobs=jobs)
            self._web = web.AppRunner(
                build_app(self.emulator, self.cast, partial(schedule.send_this_month, services)),
                handler_cancellation=True,
                access_log=None,
                shutdown_timeout=1.0,
            )
            await self._web.setup()
            where = self._settings.playground
            try:
                await web.TCPSite(self._web, where.host, where.port).start()
            except OSError as error:
                raise ListenError(
                    f"playground: cannot listen on {where.host}:{where.port} "
                    f"({error.strerror}); set another port in config.toml [playground] "
                    "or HOMTHU_PLAYGROUND__PORT."
                ) from None
        except BaseException:
            await self.stop()
            raise
        host, port = self._web.addresses[0][:2]
        self.url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"

    async def stop(self) -> None:
        """Close the page, stop the bot, then the emulator it talks to."""
        if self._web is not None:
            await self._web.cleanup()
            self._web = None
        if self.runtime is not None:
            await self.runtime.stop()
            self.runtime = None
        await self.emulator.stop()


async def serve(settings: Settings, secret: bytes) -> None:
    """Run the playground until Ctrl-C or SIGTERM, printing the page's address."""
    playground = Playground(settings, secret=secret)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await playground.start()
    print(
        f"Playground: open {playground.url} in a browser "
        "(the real bot, a pretend Telegram on this computer). Ctrl-C stops it.",
        flush=True,
    )
    try:
        await stop.wait()
    finally:
        log.info("Stopping the playground")
        await playground.stop()
