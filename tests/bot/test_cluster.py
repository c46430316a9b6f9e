"""Several processes: start-up one at a time, one leader for the jobs, SQLite kept to one
process, and a stop that finishes what is in flight within a bounded time."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path

import pytest
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import text
from sqlmodel import select

from bot.app import Runtime, open_services, prepare
from bot.config import Settings
from bot.emulator import BotApiEmulator
from bot.leader import Leadership
from chat import Person
from conftest import SECRET, TOKEN, FakeClock
from handlers.context import Services
from storage.db import AlreadyServed, create_engine, is_postgresql, single_process, unit_of_work
from storage.models import DataKey

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def needs_postgresql(url: str) -> None:
    if not is_postgresql(url):
        pytest.skip("several processes share PostgreSQL only")


def test_a_second_process_on_the_same_sqlite_database_is_refused(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'homthu.db'}"
    with single_process(url):
        with pytest.raises(AlreadyServed) as refused, single_process(url):
            pass  # pragma: no cover - never entered
        assert str(refused.value) == (
            f"Another bot process is already running on {tmp_path / 'homthu.db'}; SQLite serves "
            "one process only: stop the other one, or use PostgreSQL to run several."
        )
    with single_process(url):  # free again once the first has stopped
        pass


async def test_processes_starting_together_migrate_and_make_one_data_key(
    empty_database: str, settings: Settings
) -> None:
    needs_postgresql(empty_database)
    opened: list[Services] = await asyncio.gather(
        *(prepare(settings, secret=SECRET) for _ in range(3))
    )
    try:
        async with unit_of_work(opened[0].sessions) as session:
            keys = (await session.exec(select(DataKey))).all()
            query = text("SELECT version_num FROM alembic_version")
            version = (await session.exec(query)).all()  # type: ignore[call-overload]
        assert len(keys) == 1
        assert len(version) == 1
        # Each can open what another sealed: they share the one key.
        assert {s.keyring.current_key_id for s in opened} == {keys[0].id}
        sealed = opened[0].keyring.seal(b"tip", context="tips.text")
        assert opened[2].keyring.open(sealed, context="tips.text") == b"tip"
    finally:
        for services in opened:
            await services.sessions.kw["bind"].dispose()


async def test_one_leader_and_the_lead_moves_when_it_dies(database_url: str) -> None:
    changes: list[tuple[str, bool]] = []

    def recorder(name: str):  # type: ignore[no-untyped-def]
        async def record(leader: bool) -> None:
            changes.append((name, leader))

        return record

    first = Leadership(database_url, recorder("first"))
    second = Leadership(database_url, recorder("second"))
    try:
        assert await first.step() is True
        if not is_postgresql(database_url):
            return  # SQLite: the one process leads, always
        assert await second.step() is False
        assert await second.step() is False

        # The leader's process dies (SIGKILL): PostgreSQL ends its session.
        engine = create_engine(database_url)
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks"
                    " WHERE locktype = 'advisory' AND pid <> pg_backend_pid()"
                )
            )
        await engine.dispose()
        assert await second.step() is True
        assert await first.step() is False  # its check fails: it steps down
        assert await first.step() is False  # and cannot take it back
        assert changes == [("first", True), ("second", True), ("first", False)]

        await second.close()  # a clean stop hands the lead over at once
        assert await first.step() is True
    finally:
        await first.close()
        await second.close()


@pytest.fixture
async def own_runtime(settings: Settings, clock: FakeClock) -> Runtime:
    """A running bot that the test stops itself."""
    settings = settings.model_copy(
        update={"bot": settings.bot.model_copy(update={"stop_seconds": 0.5})}
    )
    runtime = Runtime(
        settings, await open_services(settings, secret=SECRET, clock=clock), token=TOKEN
    )
    await runtime.start(jobs=False)
    return runtime


async def test_stopping_finishes_the_turn_in_progress(
    own_runtime: Runtime, emulator: BotApiEmulator
) -> None:
    person = Person(emulator, emulator.add_user(5550001, "An"))
    emulator.latency = 0.2  # Telegram is slow today: the turn is still sending
    await person.send("/start")
    await emulator.wait_until(lambda e: not own_runtime.dispatcher._idle.is_set())
    await own_runtime.stop()
    [welcome] = emulator.bot_messages(person.chat_id)
    assert "Hòm thư tố giác ma túy" in welcome.text


async def test_stopping_is_bounded_when_a_job_waits_for_hours(
    own_runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    forever = asyncio.Event()

    async def quiet_hours(services: Services) -> None:
        await forever.wait()  # a broadcast waiting for the morning

    own_runtime._schedule(quiet_hours, IntervalTrigger(hours=1), "quiet-hours")
    job = own_runtime.scheduler.get_job("quiet-hours")
    assert job is not None
    running = asyncio.create_task(job.func())
    await asyncio.sleep(0)
    caplog.set_level(logging.WARNING)
    async with asyncio.timeout(5):
        await own_runtime.stop()
    assert running.cancelled() or running.done()
    assert "Stopped after 0.5 s with 1 job(s) unfinished" in caplog.text


async def test_the_command_line_refuses_a_second_process_on_sqlite(tmp_path: Path) -> None:
    database = tmp_path / "homthu.db"
    config = tmp_path / "config.toml"
    config.write_text(
        f'[bot]\ndata_dir = "{tmp_path}"\n[database]\nurl = "sqlite+aiosqlite:///{database}"\n'
        '[[wards]]\ncode = "w"\nname = "Phường Đông Cương"\nofficer_chat_id = -1001\n'
        'officers = [1]\nareas = ["Khu phố 1"]\n',
        encoding="utf-8",
    )
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("HOMTHU_", "TELEGRAM_"))}
    env = {
        **keep,
        "HOMTHU_CONFIG": str(config),
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "HOMTHU_SECRET_KEY": SECRET.decode(),
    }
    with single_process(f"sqlite+aiosqlite:///{database}"):  # the first process, running
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", env=env, stderr=asyncio.subprocess.PIPE
        )
        _, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 2
    assert err.decode().splitlines() == [
        f"Cannot start: Another bot process is already running on {database}; SQLite serves "
        "one process only: stop the other one, or use PostgreSQL to run several."
    ]
