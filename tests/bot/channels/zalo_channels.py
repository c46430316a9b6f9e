"""Fixtures and helpers for the Zalo adapters' tests: both emulators, the bot with Zalo on."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from bot.app import Runtime, open_services
from bot.config import Settings
from bot.emulator import BotApiEmulator
from bot.emulator.zalo_bot import ZaloBotEmulator
from bot.emulator.zalo_oa import ZaloOAEmulator
from bot.webhook import WebhookServer
from chat import Group
from conftest import GROUP_ID, SECRET, TOKEN, FakeClock, secrets_in_logs
from handlers.settings import WebhookSection, ZaloBotSection, ZaloOASection

BOT_WEBHOOK_SECRET = "zalo-bot-webhook-secret-never-logged"


def zalo_settings(
    settings: Settings, oa: ZaloOAEmulator, zbot: ZaloBotEmulator, *, bot_mode: str = "webhook"
) -> Settings:
    """The test settings with the OA and the bot enabled, pointing at their emulators."""
    return settings.model_copy(
        update={
            "webhook": WebhookSection(port=0, max_body_bytes=64 * 1024),
            "zalo_oa": ZaloOASection(
                enabled=True,
                api_url=oa.url,
                oauth_url=oa.url,
                app_id=oa.app_id,
                oa_id=oa.oa_id,
            ),
            "zalo_bot": ZaloBotSection(enabled=True, base_url=zbot.url, mode=bot_mode),
            "zalo_oa_app_secret": SecretStr(oa.app_secret),
            "zalo_oa_secret_key": SecretStr(oa.secret_key),
            "zalo_oa_refresh_token": SecretStr(oa.grant()),
            "zalo_bot_token": SecretStr(zbot.token),
            "zalo_bot_webhook_secret": SecretStr(BOT_WEBHOOK_SECRET),
        }
    )


async def settle(runtime: Runtime) -> None:
    """Wait until every accepted Zalo event has been answered."""
    await runtime.zalo.idle()
    await runtime.dispatcher.idle()


@pytest.fixture
async def oa(clock: FakeClock) -> AsyncIterator[ZaloOAEmulator]:
    """A Zalo OA Open API emulator on loopback, on the test's clock."""
    async with ZaloOAEmulator(clock=clock) as emulator:
        yield emulator


@pytest.fixture
async def zbot() -> AsyncIterator[ZaloBotEmulator]:
    """A Zalo Bot API emulator on loopback."""
    async with ZaloBotEmulator() as emulator:
        emulator.webhook_secret = BOT_WEBHOOK_SECRET
        yield emulator


@pytest.fixture
async def zalo_runtime(
    settings: Settings,
    clock: FakeClock,
    emulator: BotApiEmulator,
    oa: ZaloOAEmulator,
    zbot: ZaloBotEmulator,
    emitted: io.StringIO,
) -> AsyncIterator[Runtime]:
    """The real bot with the OA and the Zalo bot (webhook) enabled, webhooks on loopback.

    Afterwards, the logs hold no Zalo secret, no Zalo user id and no display name.
    """
    configured = zalo_settings(settings, oa, zbot)
    services = await open_services(configured, secret=SECRET, clock=clock)
    bot = Runtime(configured, services, token=TOKEN)
    server = WebhookServer(configured.webhook)
    bot.zalo.route(server)
    await server.start()
    await bot.start(jobs=False)
    oa.webhook_url = server.url + "/zalo/oa"
    zbot.webhook_url = server.url + "/zalo/bot"
    yield bot
    await bot.stop()
    await server.stop()
    written = emitted.getvalue()
    secrets = [
        *secrets_in_logs(emulator),
        oa.app_secret,
        oa.secret_key,
        *oa.refresh_tokens,
        *oa.spent_refresh_tokens,
        *oa.access_tokens,
        zbot.token,
        BOT_WEBHOOK_SECRET,
        *oa.users,
        *(u.display_name for u in oa.users.values()),
        *zbot.users,
        *(u.display_name for u in zbot.users.values()),
    ]
    leaks = [secret for secret in secrets if secret in written]
    assert not leaks, f"found in the logs: {leaks!r}"


@pytest.fixture
def zalo_officers(emulator: BotApiEmulator, zalo_runtime: Runtime) -> Group:
    """The ward's officers' group on Telegram."""
    group = emulator.add_group(chat_id=GROUP_ID, title="CA phường Đông Cương")
    return Group(emulator, group, zalo_runtime.dispatcher.idle)
