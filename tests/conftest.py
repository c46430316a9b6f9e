"""Shared fixtures: a fresh database per test, the Bot API emulator and the real bot."""

from __future__ import annotations

import io
import logging
import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

import storage.models  # noqa: F401  (registers the tables)
from bot.app import Runtime, open_services
from bot.config import Settings
from bot.emulator import BotApiEmulator
from bot.logs import HANDLER_NAME, setup_logging
from bot.playground import Playground
from chat import Group, Person
from storage.db import create_engine

TOKEN = "123456:AAH-test-token-never-logged"
SECRET = b"test-secret-key-with-32-characters!!"
GROUP_ID = -1001234567890
OTHER_GROUP_ID = -1009876543210
OFFICER_ID = 700001
SUPERVISOR_ID = 700002
AREAS = [f"Khu phố {n}" for n in range(1, 11)]


class FakeClock:
    """A clock the test moves by hand instead of sleeping."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        """Move the clock forward."""
        self.now += timedelta(**delta)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep a developer's own token or overrides out of the tests."""
    for name in list(os.environ):
        if (name.startswith("HOMTHU_") and name != "HOMTHU_TEST_DATABASE_URL") or name in (
            "TELEGRAM_BOT_TOKEN",
        ):
            monkeypatch.delenv(name)
    # As bot.cli does: PTB 22 warns on every 429 unless durations are timedeltas.
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


@pytest.fixture
async def database_url(tmp_path: Path) -> AsyncIterator[str]:
    """A database with the current schema and no rows: SQLite, or PostgreSQL when asked."""
    url = os.environ.get("HOMTHU_TEST_DATABASE_URL") or (
        f"sqlite+aiosqlite:///{tmp_path / 'homthu.db'}"
    )
    engine = create_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(SQLModel.metadata.drop_all)
        await connection.run_sync(SQLModel.metadata.create_all)
    await engine.dispose()
    yield url


@pytest.fixture
async def empty_database(database_url: str) -> AsyncIterator[str]:
    """The test database with no tables at all, alembic's included, for migrations to fill."""
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        await connection.run_sync(SQLModel.metadata.drop_all)
        await connection.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    await engine.dispose()
    yield database_url


def ward(code: str, name: str, chat_id: int, **extra: Any) -> dict[str, Any]:
    """A ward table as config.toml would hold it."""
    return {
        "code": code,
        "name": name,
        "officer_chat_id": chat_id,
        "officers": [OFFICER_ID],
        "supervisors": [SUPERVISOR_ID],
        "areas": AREAS,
        "hotlines": [
            {"name": "Cảnh sát 113", "phone": "113"},
            {"name": "Công an phường", "phone": "0237 3 123 456"},
        ],
        **extra,
    }


@pytest.fixture
def wards() -> list[dict[str, Any]]:
    """One ward, like the example config."""
    return [ward("dong-cuong", "Phường Đông Cương", GROUP_ID)]


@pytest.fixture
def clock() -> FakeClock:
    """Ten past eight in the morning, Vietnam time."""
    return FakeClock(datetime(2026, 11, 23, 1, 10, tzinfo=UTC))


@pytest.fixture
async def emulator() -> AsyncIterator[BotApiEmulator]:
    """A Bot API emulator on loopback."""
    emu = BotApiEmulator(token=TOKEN, bot_username="homthu_test_bot")
    await emu.start()
    yield emu
    await emu.stop()


@pytest.fixture
def settings(
    database_url: str, emulator: BotApiEmulator, wards: list[dict[str, Any]], tmp_path: Path
) -> Settings:
    """Settings pointing at the emulator and the test database."""
    return Settings(
        bot={"data_dir": str(tmp_path / "data"), "log_level": "DEBUG"},
        telegram={
            "base_url": emulator.base_url,
            "base_file_url": emulator.base_file_url,
            "poll_timeout": 1,
        },
        database={"url": database_url},
        wards=wards,
    )


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Everything logged, at DEBUG, under the app's real logging set-up."""
    setup_logging("DEBUG", secrets=[TOKEN])
    caplog.set_level(logging.DEBUG)
    yield caplog
    logging.getLogger().handlers.clear()


@pytest.fixture
def emitted(logs: pytest.LogCaptureFixture) -> io.StringIO:
    """What the app's own log handler writes, as whoever reads the server's logs sees it."""
    [handler] = [h for h in logging.getLogger().handlers if h.name == HANDLER_NAME]
    buffer = io.StringIO()
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buffer)
    return buffer


def secrets_in_logs(emulator: BotApiEmulator) -> list[str]:
    """What must never reach the logs: the token, and who the people are and what they wrote."""
    found = [TOKEN, quote(TOKEN, ""), TOKEN.partition(":")[2]]
    for user in emulator.world.users.values():
        if user.is_bot:
            continue
        found.append(str(user.id))
        # Short names ("An") also occur in ordinary words; long ones identify.
        found += [n for n in (user.first_name, user.last_name, user.username) if n and len(n) > 5]
    for history in emulator.world.history.values():
        for message in history:
            words = message.content.strip()
            # Long and varied enough not to occur in a log line by chance ("000000000000").
            if not message.from_bot and len(words) >= 12 and len(set(words)) >= 5:
                found.append(words)
    return found


@pytest.fixture
async def runtime(
    settings: Settings,
    clock: FakeClock,
    emulator: BotApiEmulator,
    emitted: io.StringIO,
) -> AsyncIterator[Runtime]:
    """The real bot (PTB Application, long polling) running against the emulator.

    Every test that runs it also checks the log hygiene promise: at DEBUG, nothing in the logs
    names a person who wrote to the bot, quotes what they wrote, or shows the token.
    """
    services = await open_services(settings, secret=SECRET, clock=clock)
    bot = Runtime(settings, services, token=TOKEN)
    await bot.start(jobs=False)
    yield bot
    await bot.stop()
    written = emitted.getvalue()
    assert "is running for" in written, "the log handler was not captured"
    leaks = [secret for secret in secrets_in_logs(emulator) if secret in written]
    assert not leaks, f"found in the logs: {leaks!r}"


@pytest.fixture
def resident(emulator: BotApiEmulator, runtime: Runtime) -> Person:
    """A resident with a distinctive identity, so any leak of it can be searched for."""
    user = emulator.add_user(
        user_id=5550001234,
        first_name="Trần Văn",
        last_name="Bíẩn",
        username="tran_van_bian_secret",
        language_code="vi",
    )
    return Person(emulator, user, runtime.dispatcher.idle)


@pytest.fixture
def officers(emulator: BotApiEmulator, runtime: Runtime) -> Group:
    """The ward's officers' group."""
    group = emulator.add_group(chat_id=GROUP_ID, title="CA phường Đông Cương")
    return Group(emulator, group, runtime.dispatcher.idle)


@pytest.fixture
async def playground(
    database_url: str, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[Playground]:
    """The playground on a free port, the real bot inside, the test database under it."""
    settings = Settings(
        bot={"data_dir": str(tmp_path / "data")},
        telegram={"poll_timeout": 1},
        database={"url": database_url},
        playground={"port": 0},
        wards=[ward("dong-cuong", "Phường Đông Cương", GROUP_ID)],
    )
    running = Playground(settings, secret=SECRET, clock=clock)
    await running.start(jobs=False)
    yield running
    await running.stop()


def database_file(url: str) -> Path | None:
    """The SQLite file behind a URL, or None for a server database."""
    parsed = make_url(url)
    return Path(parsed.database) if parsed.get_backend_name() == "sqlite" else None
