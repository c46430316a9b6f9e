"""``python -m bot broadcast`` as an operator runs it, and a delivery killed with SIGKILL."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from broadcast_support import add_broadcast, subscribe

from bot.emulator import BotApiEmulator
from conftest import GROUP_ID, SECRET, TOKEN
from storage import keys
from storage.crypto import Keyring
from storage.db import (
    SessionFactory,
    create_engine,
    session_factory,
    unit_of_work,
    upgrade_async,
)

ROOT = Path(__file__).resolve().parents[2]
FIRST_ID = 5_550_200_000
# Four senders at 25 a second: at most four sends are in flight when the process dies.
SENDERS = 4

CONFIG = """
[bot]
data_dir = "{data}"
[telegram]
base_url = "{base_url}"
base_file_url = "{base_file_url}"
[database]
url = "{database}"
[broadcasts]
quiet_hours = ""
rate_per_second = 25
progress_seconds = 0.2
[[wards]]
code = "dong-cuong"
name = "Phường Đông Cương"
officer_chat_id = {group}
areas = ["Khu phố 1", "Khu phố 2"]
"""


@pytest.fixture
async def sessions(empty_database: str) -> AsyncIterator[SessionFactory]:
    """The migrated database, as the bot's own `db upgrade` leaves it."""
    await upgrade_async(empty_database)
    engine = create_engine(empty_database)
    yield session_factory(engine)
    await engine.dispose()


@pytest.fixture
def env(tmp_path: Path, emulator: BotApiEmulator, empty_database: str) -> dict[str, str]:
    """The environment of `python -m bot`: our config, the test token and key."""
    config = tmp_path / "config.toml"
    config.write_text(
        CONFIG.format(
            data=tmp_path / "data",
            base_url=emulator.base_url,
            base_file_url=emulator.base_file_url,
            database=empty_database,
            group=GROUP_ID,
        ),
        encoding="utf-8",
    )
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("HOMTHU_", "TELEGRAM_"))}
    return {
        **keep,
        "HOMTHU_CONFIG": str(config),
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "HOMTHU_SECRET_KEY": SECRET.decode(),
    }


async def start(env: dict[str, str], *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "broadcast",
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def homthu(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """Run `python -m bot broadcast ...` to the end: exit code, stdout, stderr."""
    process = await start(env, *args)
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    return process.returncode or 0, out.decode(), err.decode()


async def seed(emulator: BotApiEmulator, sessions: SessionFactory, count: int) -> list[int]:
    chats = list(range(FIRST_ID, FIRST_ID + count))
    for chat_id in chats:
        emulator.add_user(user_id=chat_id, first_name="Cư dân")
    keyring = Keyring(SECRET)
    async with unit_of_work(sessions) as session:
        await keys.load(session=session, keyring=keyring, now=datetime.now(UTC))
    await subscribe(sessions, keyring, chats, datetime.now(UTC))
    return chats


async def test_send_wait_delivers_and_ends_with_one_summary_line(
    emulator: BotApiEmulator, sessions: SessionFactory, env: dict[str, str]
) -> None:
    chats = await seed(emulator, sessions, 12)
    emulator.block_bot(emulator.world.users[chats[0]])
    broadcast_id = await add_broadcast(sessions)

    code, out, err = await homthu(env, "send", "--id", str(broadcast_id), "--wait")

    assert code == 0, err
    assert out.strip().splitlines() == [
        f"Broadcast #{broadcast_id}: sent 11, failed 0, unsubscribed 1, "
        + out.split("unsubscribed 1, ")[1].strip()
    ]
    assert "messages/s" in out and "12/12 100%" in err
    assert all(len(emulator.bot_messages(c)) == 1 for c in chats[1:])

    code, out, _ = await homthu(env, "list")
    assert code == 0
    assert f"#{broadcast_id}\t-\tdong-cuong\tdone\tpending 0, sending 0, sent 11" in out
    code, out, _ = await homthu(env, "status", str(broadcast_id))
    assert code == 0
    assert "dong-cuong: 11/11 (100%)" in out and "Khu phố 1: 11/11 (100%)" in out


async def test_send_without_wait_queues_for_the_bot(
    emulator: BotApiEmulator, sessions: SessionFactory, env: dict[str, str]
) -> None:
    await seed(emulator, sessions, 3)
    broadcast_id = await add_broadcast(sessions)

    code, out, err = await homthu(env, "send", "--id", str(broadcast_id))

    assert code == 0, err
    assert "3 recipient(s) queued" in out
    assert emulator.calls_to("sendMessage") == []
    code, out, err = await homthu(env, "send", "--id", "999", "--wait")
    assert code == 2 and "There is no broadcast #999." in err


async def test_a_delivery_killed_midway_resumes_without_missing_anyone(
    emulator: BotApiEmulator, sessions: SessionFactory, env: dict[str, str]
) -> None:
    emulator.latency = 0.15  # each send in flight a while, so the kill lands mid-send
    chats = await seed(emulator, sessions, 40)
    broadcast_id = await add_broadcast(sessions)

    first = await start(env, "send", "--id", str(broadcast_id), "--wait")
    try:
        await emulator.wait_until(lambda emu: len(emu.calls_to("sendMessage")) >= 15, timeout=30)
    finally:
        first.send_signal(signal.SIGKILL)
        await first.wait()
    before = sum(len(emulator.bot_messages(c)) for c in chats)
    assert 0 < before < 40

    code, out, err = await homthu(env, "send", "--id", str(broadcast_id), "--wait")

    assert code == 0, err
    counts = [len(emulator.bot_messages(c)) for c in chats]
    assert min(counts) == 1  # nobody missed
    duplicates = sum(n - 1 for n in counts)
    assert duplicates <= SENDERS
    assert "sent " in out and int(out.split("sent ")[1].split(",")[0]) >= 40 - before
