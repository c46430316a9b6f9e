"""Telegram webhook mode: the emulator posts updates to the bot's one HTTP server."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from sqlmodel import select

from bot.app import Runtime, database_answers, open_services
from bot.config import ConfigError, Settings, load_settings
from bot.emulator import BotApiEmulator
from bot.runners import TelegramWebhook
from bot.webhook import WebhookServer
from chat import Person
from conftest import SECRET, TOKEN, FakeClock, secrets_in_logs
from storage.db import unit_of_work
from storage.models import SeenUpdate

WEBHOOK_SECRET = "webhook-secret-for-the-tests_0123456789"
WORDS = "Nhà số 7 hẻm 12 có người bán ma túy đá mỗi tối"


@dataclass
class WebhookBot:
    """The bot in webhook mode, its server, and the emulator posting to it."""

    runtime: Runtime
    server: WebhookServer
    frontend: TelegramWebhook
    emulator: BotApiEmulator

    @property
    def endpoint(self) -> str:
        return self.server.url + TelegramWebhook.PATH

    async def post(
        self, body: bytes, *, secret: str | None = WEBHOOK_SECRET, chunked: bool = False
    ) -> tuple[int, str]:
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret

        async def chunks() -> AsyncIterator[bytes]:
            yield body

        async with (
            aiohttp.ClientSession() as session,
            session.post(self.endpoint, data=chunks() if chunked else body, headers=headers) as r,
        ):
            return r.status, await r.text()


@pytest.fixture
async def webhook_bot(
    settings: Settings, clock: FakeClock, emulator: BotApiEmulator, emitted: io.StringIO
) -> AsyncIterator[WebhookBot]:
    """The real bot taking updates from its webhook; the logs are checked after, as for polling."""
    settings = settings.model_copy(
        update={"webhook": settings.webhook.model_copy(update={"port": 0, "max_body_bytes": 4096})}
    )
    services = await open_services(settings, secret=SECRET, clock=clock)
    runtime = Runtime(settings, services, token=TOKEN)
    server = WebhookServer(settings.webhook, health=lambda: database_answers(services))
    frontend = TelegramWebhook(
        runtime.application, services, secret=WEBHOOK_SECRET, public_url="http://unset"
    )
    server.route(TelegramWebhook.PATH, frontend.handle)
    await server.start()
    # Port 0: the address is known only now; a deployment has it in [webhook] public_url.
    frontend.url = server.url + TelegramWebhook.PATH
    await runtime.start(jobs=False, frontend=frontend)
    yield WebhookBot(runtime, server, frontend, emulator)
    server.draining()
    await runtime.stop()
    await server.stop()
    written = emitted.getvalue()
    leaks = [secret for secret in secrets_in_logs(emulator) if secret in written]
    assert not leaks, f"found in the logs: {leaks!r}"
    assert WEBHOOK_SECRET not in written


@pytest.fixture
def person(webhook_bot: WebhookBot) -> Person:
    user = webhook_bot.emulator.add_user(
        user_id=5550001234, first_name="Trần Văn", last_name="Bíẩn", language_code="vi"
    )
    return Person(webhook_bot.emulator, user, webhook_bot.runtime.dispatcher.idle)


async def test_updates_arrive_by_webhook_with_the_secret(
    webhook_bot: WebhookBot, person: Person, database_url: str
) -> None:
    welcome = await person.says("/start")
    assert "Hòm thư tố giác ma túy · Phường Đông Cương" in welcome.text

    emulator = webhook_bot.emulator
    assert emulator.calls_to("getUpdates") == []
    [registered] = emulator.calls_to("setWebhook")
    assert registered.params["secret_token"] == WEBHOOK_SECRET
    assert registered.params["allowed_updates"] == ["message", "callback_query"]
    info = await webhook_bot.runtime.application.bot.get_webhook_info()
    assert (info.url, info.pending_update_count, info.last_error_message) == (
        webhook_bot.endpoint,
        0,
        None,
    )
    async with unit_of_work(webhook_bot.runtime.services.sessions) as session:
        seen = (await session.exec(select(SeenUpdate))).all()
    assert [(row.source, row.update_id) for row in seen] == [
        ("telegram", str(emulator.api.webhook.delivered[0]["update_id"]))
    ]


async def test_the_emulator_refuses_get_updates_while_a_webhook_is_set(
    webhook_bot: WebhookBot,
) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{webhook_bot.emulator.base_url}{TOKEN}/getUpdates") as response,
    ):
        answer = await response.json()
    assert answer == {
        "ok": False,
        "error_code": 409,
        "description": "Conflict: can't use getUpdates method while webhook is active; "
        "use deleteWebhook to delete the webhook first",
    }


async def test_a_wrong_secret_is_refused_and_nothing_of_the_body_is_logged(
    webhook_bot: WebhookBot, person: Person, emitted: io.StringIO
) -> None:
    update = {
        "update_id": 77,
        "message": {
            "message_id": 1,
            "date": 0,
            "chat": {"id": person.chat_id, "type": "private"},
            "from": {"id": person.chat_id, "is_bot": False, "first_name": "Trần Văn"},
            "text": WORDS,
        },
    }
    body = json.dumps(update).encode()
    assert await webhook_bot.post(body, secret="not-the-secret") == (401, "Unauthorized")
    assert await webhook_bot.post(body, secret=None) == (401, "Unauthorized")
    assert webhook_bot.emulator.bot_messages(person.chat_id) == []
    written = emitted.getvalue()
    assert "without the right secret token refused" in written
    assert WORDS not in written
    assert str(person.chat_id) not in written


async def test_the_emulator_retries_until_the_bot_answers(
    webhook_bot: WebhookBot, person: Person
) -> None:
    emulator = webhook_bot.emulator
    await webhook_bot.frontend.stop()  # as a process stopping does: 503 to every update
    await person.send("/start")
    await emulator.wait_until(lambda e: any(s == 503 for _, s in e.api.webhook.attempts))
    info = await webhook_bot.runtime.application.bot.get_webhook_info()
    assert info.last_error_message == "Wrong response from the webhook: 503 Service Unavailable"
    assert info.pending_update_count == 1

    await webhook_bot.frontend.start()
    welcome = await person.sees()
    assert "Hòm thư tố giác ma túy" in welcome.text
    assert emulator.api.webhook.attempts[-1][1] == 200


async def test_a_replayed_update_is_answered_but_handled_once(
    webhook_bot: WebhookBot, person: Person
) -> None:
    await person.says("/start")
    [delivered] = webhook_bot.emulator.api.webhook.delivered
    # What Telegram does when the bot's 200 did not reach it: the same update again.
    assert await webhook_bot.post(json.dumps(delivered).encode()) == (200, "ok")
    await webhook_bot.runtime.dispatcher.idle()
    assert len(webhook_bot.emulator.bot_messages(person.chat_id)) == 1


async def test_an_oversized_body_is_refused_before_it_is_read(
    webhook_bot: WebhookBot, person: Person
) -> None:
    update = {"update_id": 78, "message": {"text": "x" * 5000}}
    body = json.dumps(update).encode()
    assert await webhook_bot.post(body) == (413, "Request body too large")
    # Without a Content-Length, the cap applies while the body is read.
    assert await webhook_bot.post(body, chunked=True) == (413, "Request body too large")
    # Checked before the secret: a stranger cannot make the server read megabytes.
    assert (await webhook_bot.post(body, secret=None))[0] == 413
    welcome = await person.says("/start")
    assert "Hòm thư tố giác ma túy" in welcome.text


async def test_malformed_json_is_refused_and_the_bot_goes_on(
    webhook_bot: WebhookBot, person: Person
) -> None:
    assert await webhook_bot.post(b"{not json") == (400, "Bad Request: not JSON")
    assert await webhook_bot.post(b"\xff\xfe") == (400, "Bad Request: not JSON")
    assert await webhook_bot.post(b'["a list"]') == (400, "Bad Request: no update_id")
    assert await webhook_bot.post(b'{"update_id": "79"}') == (400, "Bad Request: no update_id")
    # A shape PTB cannot read is taken (Telegram would resend it forever) and skipped.
    assert await webhook_bot.post(b'{"update_id": 80, "message": {"chat": 5}}') == (200, "ok")
    welcome = await person.says("/start")
    assert "Hòm thư tố giác ma túy" in welcome.text


def test_webhook_mode_needs_its_address_and_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[telegram]\nmode = "webhook"\n[[wards]]\ncode = "w"\nname = "Phường Đông Cương"\n'
        'officer_chat_id = -1001\nofficers = [1]\nareas = ["Khu phố 1"]\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert caught.value.lines == [
        f'{path}: webhook.public_url: is empty, and telegram.mode is "webhook"; use the '
        'https:// address your reverse proxy serves, e.g. "https://bot.example.org".',
        "environment variable TELEGRAM_WEBHOOK_SECRET: is missing, and telegram.mode is "
        '"webhook"; set it to 32 or more random letters, digits, _ or -, e.g. the output of '
        "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`.",
    ]

    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", "has spaces and a secret")
    monkeypatch.setenv("HOMTHU_WEBHOOK__PUBLIC_URL", "http://bot.example.org")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert caught.value.lines == [
        'environment variable HOMTHU_WEBHOOK__PUBLIC_URL: "http://bot.example.org" is not an '
        "https:// address; use the https:// address your reverse proxy serves, e.g. "
        '"https://bot.example.org".',
        "environment variable TELEGRAM_WEBHOOK_SECRET: is not 1 to 256 letters, digits, _ or -; "
        "set it to 32 or more random letters, digits, _ or -, e.g. the output of "
        "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`.",
    ]

    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", WEBHOOK_SECRET)
    monkeypatch.setenv("HOMTHU_WEBHOOK__PUBLIC_URL", "https://bot.example.org/")
    settings = load_settings(path)
    assert settings.webhook.public_url == "https://bot.example.org"
    assert settings.telegram.mode == "webhook"
