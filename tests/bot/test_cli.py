"""The command line as an operator meets it, and a bot killed in the middle of a tip."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from sqlalchemy import inspect

from bot.emulator import BotApiEmulator
from chat import Person
from conftest import GROUP_ID, SECRET, TOKEN
from storage.db import create_engine

ROOT = Path(__file__).resolve().parents[2]

CONFIG = """
[bot]
data_dir = "{data}"
[telegram]
base_url = "{base_url}"
base_file_url = "{base_file_url}"
poll_timeout = 1
[database]
url = "{database}"
[webhook]
port = 0
[[wards]]
code = "dong-cuong"
name = "Phường Đông Cương"
officer_chat_id = {group}
officers = [700001]
areas = ["Khu phố 1", "Khu phố 2", "Khu phố 3"]
hotlines = [{{ name = "Cảnh sát 113", phone = "113" }}]
"""


def write_config(tmp_path: Path, emulator: BotApiEmulator | None, database: str) -> Path:
    """Write a config file as an operator would."""
    path = tmp_path / "config.toml"
    path.write_text(
        CONFIG.format(
            data=tmp_path / "data",
            base_url=emulator.base_url if emulator else "https://api.telegram.org/bot",
            base_file_url=emulator.base_file_url if emulator else "https://x/file/bot",
            database=database,
            group=GROUP_ID,
        ),
        encoding="utf-8",
    )
    return path


def environment(config: Path, **extra: str) -> dict[str, str]:
    """The bot's environment: our config, nothing inherited from the developer's shell."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("HOMTHU_", "TELEGRAM_"))}
    return {**keep, "HOMTHU_CONFIG": str(config), **extra}


async def homthu(*args: str, env: dict[str, str]) -> tuple[int, str]:
    """Run ``python -m bot`` to completion; return its exit code and standard error."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), timeout=60)
    return process.returncode or 0, err.decode()


async def test_a_bad_config_stops_with_one_clear_line(tmp_path: Path) -> None:
    config = write_config(tmp_path, None, f"sqlite+aiosqlite:///{tmp_path}/x.db")
    config.write_text(
        config.read_text().replace(f"officer_chat_id = {GROUP_ID}", 'officer_chat_id = "abc"')
    )
    code, err = await homthu("run", env=environment(config, TELEGRAM_BOT_TOKEN=TOKEN))
    assert code == 2
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "wards[0].officer_chat_id" in lines[0]


async def test_db_upgrade_creates_the_schema(tmp_path: Path, empty_database: str) -> None:
    config = write_config(tmp_path, None, empty_database)
    code, err = await homthu("db", "upgrade", env=environment(config))
    assert code == 0, err
    engine = create_engine(empty_database)
    async with engine.connect() as connection:
        tables = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
    await engine.dispose()
    assert {"tips", "drafts", "contact_links", "alembic_version"} <= tables


async def start_bot(
    config: Path, emulator: BotApiEmulator, log: Path
) -> asyncio.subprocess.Process:
    """Start ``python -m bot run`` and wait until it polls the emulator."""
    polls = len(emulator.calls_to("getUpdates"))
    stderr = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            cwd=ROOT,
            env=environment(config, TELEGRAM_BOT_TOKEN=TOKEN, HOMTHU_SECRET_KEY=SECRET.decode()),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=stderr,
        )
    finally:
        os.close(stderr)
    await emulator.wait_until(lambda emu: len(emu.calls_to("getUpdates")) > polls, timeout=30)
    return process


async def test_a_bot_killed_mid_tip_carries_on_where_the_resident_was(
    tmp_path: Path, emulator: BotApiEmulator, empty_database: str
) -> None:
    config = write_config(tmp_path, emulator, empty_database)
    log = tmp_path / "bot.log"
    emulator.add_group(chat_id=GROUP_ID, title="CA phường")
    user = emulator.add_user(user_id=5550009999, first_name="Lê Thị", username="le_thi_secret")
    resident = Person(emulator, user)

    bot = await start_bot(config, emulator, log)
    try:
        await resident.says("/start")
        await resident.taps("📝 Gửi tin tố giác")
        await resident.taps("🏚 Tụ điểm, nơi chứa chấp")
        place = await resident.taps("Khu phố 2")
        assert "Bước 3/5" in place.text
    finally:
        bot.send_signal(signal.SIGKILL)
        await bot.wait()

    bot = await start_bot(config, emulator, log)
    try:
        await resident.send("Nhà cuối hẻm 5")
        answers = [await resident.sees(timeout=10)]
        while "Bước 4/5" not in answers[-1].text and len(answers) < 3:
            answers.append(await resident.sees(timeout=10))
        assert "Bước 4/5" in answers[-1].text
        await resident.says("Đêm nào cũng tụ tập hút chích")
        await resident.taps("⏭ Bỏ qua")
        review = await resident.taps("✅ Gửi tin")  # the receipt: nothing was lost
        assert "Đã gửi tin #1" in review.text
        await emulator.wait_until(lambda emu: bool(emu.bot_messages(GROUP_ID)), timeout=10)
        card = emulator.bot_messages(GROUP_ID)[0].text or ""
        assert "Khu phố 2" in card and "Nhà cuối hẻm 5" in card and "hút chích" in card
    finally:
        bot.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(bot.wait(), timeout=30) == 0

    written = log.read_text(encoding="utf-8")
    assert "Bot @homthu_test_bot is running" in written
    for secret in ("5550009999", "Lê Thị", "le_thi_secret", "hút chích", TOKEN):
        assert secret not in written
