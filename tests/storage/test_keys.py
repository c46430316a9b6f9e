"""Encryption at rest: a canary tip is found nowhere at rest, and rotation keeps it readable."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel, select

from bot.app import Runtime, open_services, refresh_keys
from bot.config import Settings
from bot.emulator import BotApiEmulator
from chat import Group, Person
from conftest import SECRET, TOKEN, FakeClock, database_file
from storage import keys
from storage.crypto import SealError
from storage.db import alembic_config, create_engine, unit_of_work, upgrade_async
from storage.models import DataKey, Draft, Tip, TipMessage
from storage.sealed import MARK, SealedText, prefix
from tests_support import database_text, send_tip, send_tip_with_conversation

ROOT = Path(__file__).resolve().parents[2]
CANARY_TEXT = "Canary-text-51c2: bán ma túy đá ở nhà số 9"
CANARY_PLACE = "Canary-place-8d0e: hẻm 14 Lê Lợi"
CANARY_QUESTION = "Canary-question-2b7f: mấy giờ?"
CANARY_ANSWER = "Canary-answer-9e41: tám giờ tối"
CANARIES = [CANARY_TEXT, CANARY_PLACE, CANARY_QUESTION, CANARY_ANSWER]


async def send_canary_tip(resident: Person, officers: Group) -> str:
    """A tip with canary words, place and conversation; return its receipt."""
    receipt, *_ = await send_tip_with_conversation(
        resident,
        officers,
        text=CANARY_TEXT,
        place=CANARY_PLACE,
        question=CANARY_QUESTION,
        answer=CANARY_ANSWER,
    )
    return receipt


def at_rest(url: str) -> bytes:
    """The database as it lies on disk: the SQLite files, or a pg_dump of the database."""
    path = database_file(url)
    if path is not None:
        return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    parsed = make_url(url).set(drivername="postgresql")
    dump = subprocess.run(
        ["pg_dump", "--no-owner", parsed.render_as_string(hide_password=False)],
        capture_output=True,
        check=True,
        timeout=60,
    )
    return dump.stdout


async def test_a_canary_tip_is_found_nowhere_at_rest(
    resident: Person,
    officers: Group,
    emulator: BotApiEmulator,
    runtime: Runtime,
    logs: pytest.LogCaptureFixture,
) -> None:
    await send_canary_tip(resident, officers)
    async with unit_of_work(runtime.services.sessions) as session:
        tip = (await session.exec(select(Tip))).one()
        answers = (await session.exec(select(TipMessage))).all()
    # The bot reads it all back through its keyring...
    assert (tip.text, tip.place, tip.latitude) == (CANARY_TEXT, CANARY_PLACE, 21.02851)
    assert {m.text for m in answers} == {CANARY_QUESTION, CANARY_ANSWER}
    # ...while the rows, the files (or the dump) and the logs hold none of it.
    dump = await database_text(runtime)
    assert tip.receipt_hash in dump and "dealing" in dump  # the search sees the rows
    disk = at_rest(runtime.settings.database.url)
    assert tip.receipt_hash.encode() in disk
    secrets = [*CANARIES, "21.02851", str(resident.user.id), resident.user.first_name]
    for secret in secrets:
        assert secret not in dump, f"{secret!r} found in a table"
        assert secret.encode() not in disk, f"{secret!r} found in the database at rest"
        assert secret not in logs.text, f"{secret!r} found in the logs"


async def test_statistics_stay_plain_and_queryable(
    resident: Person, officers: Group, runtime: Runtime
) -> None:
    await send_tip(resident)
    await officers.sees()
    async with unit_of_work(runtime.services.sessions) as session:
        stored = await session.exec(  # type: ignore[call-overload]
            text("SELECT ward_code, category, area, status, priority, text FROM tips")
        )
        row = stored.one()
    assert tuple(row[:5]) == ("dong-cuong", "dealing", "Khu phố 3", "new", "high")
    assert row.text.startswith(MARK)


async def test_a_sealed_value_moved_to_another_column_does_not_open(
    resident: Person, officers: Group, runtime: Runtime
) -> None:
    await send_tip(resident)
    await officers.sees()
    async with unit_of_work(runtime.services.sessions) as session:
        stored = (await session.exec(text("SELECT text FROM tips"))).one()  # type: ignore[call-overload]
    keyring = runtime.services.keyring
    opened = SealedText("tips.text").open(stored.text, keyring)
    assert opened == "Tối nào cũng có người bán ma túy đá"
    with pytest.raises(SealError):
        SealedText("tip_messages.text").open(stored.text, keyring)


async def stored_values(runtime: Runtime) -> list[str]:
    """Every sealed value as stored, across all sealed columns."""
    values: list[str] = []
    async with unit_of_work(runtime.services.sessions) as session:
        for sealed in keys.sealed_columns(SQLModel.metadata):
            query = f"SELECT {sealed.column.name} FROM {sealed.table.name}"
            result = await session.exec(text(query))  # type: ignore[call-overload]
            values += [row[0] for row in result if row[0] is not None]
    return values


async def test_rotation_seals_everything_anew_and_forgets_the_old_key(
    resident: Person,
    officers: Group,
    emulator: BotApiEmulator,
    runtime: Runtime,
    clock: FakeClock,
) -> None:
    receipt = await send_canary_tip(resident, officers)
    await resident.says("/start")
    await resident.taps("📝 Gửi tin tố giác")  # a draft in progress is sealed too
    services = runtime.services
    old_key = services.keyring.current_key_id
    before = await stored_values(runtime)
    async with unit_of_work(services.sessions) as session:
        old_text = (await session.exec(text("SELECT text FROM tips"))).one()[0]  # type: ignore[call-overload]
    assert len(before) >= 6 and all(v.startswith(prefix(old_key)) for v in before)

    async with unit_of_work(services.sessions) as session:
        report = await keys.rotate(session=session, metadata=SQLModel.metadata, now=clock())
    assert report.retired == 1 and report.new_key != old_key
    assert report.resealed["tips.text"] == 1 and report.resealed["tip_messages.text"] == 2
    assert report.resealed["contact_links.sealed"] == 1
    after = await stored_values(runtime)
    assert all(v.startswith(prefix(report.new_key)) for v in after)
    assert len(after) == len(before)

    clock.advance(minutes=10)
    assert await refresh_keys(services) == 1
    async with unit_of_work(services.sessions) as session:
        remaining = (await session.exec(select(DataKey))).all()
    assert [k.id for k in remaining] == [report.new_key]
    with pytest.raises(SealError):
        SealedText("tips.text").open(old_text, services.keyring)

    # Nothing is lost: the receipt still shows the conversation; the draft is where it was.
    found = await resident.says(f"/tracuu {receipt}")
    assert CANARY_ANSWER in found.content and CANARY_QUESTION in found.content
    async with unit_of_work(services.sessions) as session:
        draft = (await session.exec(select(Draft))).one()
    assert draft.step == "c"
    assert "Khu phố 3" in (await resident.taps("💊 Mua bán ma túy")).button_labels()


async def test_rows_stored_plain_by_an_older_version_are_sealed_at_start(
    empty_database: str, settings: Settings
) -> None:
    await upgrade_async(empty_database, "0003")
    engine = create_engine(empty_database)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO tips (ward_code, category, text, place, latitude, status,"
                " receipt_hash, attachment_count, created_at, updated_at, priority, flags,"
                " card_version, pinned)"
                " VALUES ('dong-cuong', 'dealing', :text, :place, 21.5, 'new', 'h', 0,"
                " :now, :now, 'normal', '[]', 1, false)"
            ),
            {"text": CANARY_TEXT, "place": CANARY_PLACE, "now": now},
        )
    await upgrade_async(empty_database)
    services = await open_services(settings, secret=SECRET)
    try:
        async with unit_of_work(services.sessions) as session:
            tip = (await session.exec(select(Tip))).one()
            raw = (await session.exec(text("SELECT text, place, latitude FROM tips"))).one()  # type: ignore[call-overload]
    finally:
        await services.sessions.kw["bind"].dispose()
        await engine.dispose()
    assert (tip.text, tip.place, tip.latitude) == (CANARY_TEXT, CANARY_PLACE, 21.5)
    assert all(str(value).startswith(MARK) for value in raw)


async def test_another_secret_key_cannot_open_the_database(settings: Settings) -> None:
    services = await open_services(settings, secret=SECRET)
    await services.sessions.kw["bind"].dispose()
    with pytest.raises(keys.WrongSecretKey, match="not the one this database was created with"):
        await open_services(settings, secret=b"another-secret-key-of-32-bytes!!")


async def test_keys_rotate_from_the_command_line(
    resident: Person, officers: Group, runtime: Runtime, tmp_path: Path
) -> None:
    await send_tip(resident)
    await officers.sees()
    old_key = runtime.services.keyring.current_key_id
    # The fixture built the schema without alembic: tell it the schema is current.
    await asyncio.to_thread(command.stamp, alembic_config(runtime.settings.database.url), "head")
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "{runtime.settings.database.url}"\n'
        f'[bot]\ndata_dir = "{tmp_path / "data"}"\n'
        '[[wards]]\ncode = "dong-cuong"\nname = "Phường Đông Cương"\nofficer_chat_id = -1\n'
        'areas = ["Khu phố 3"]\n',
        encoding="utf-8",
    )
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("HOMTHU_", "TELEGRAM_"))}
    env = {**keep, "HOMTHU_CONFIG": str(config), "HOMTHU_SECRET_KEY": SECRET.decode()}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "keys", "rotate", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()
    assert "1 old key(s) retired" in out.decode() and "tips.text: 1" in out.decode()
    assert TOKEN not in out.decode() + err.decode()
    # The running bot switches to the new key at its next refresh and reads the tip still.
    await refresh_keys(runtime.services)
    assert runtime.services.keyring.current_key_id != old_key
    async with unit_of_work(runtime.services.sessions) as session:
        tip = (await session.exec(select(Tip))).one()
    assert tip.text == "Tối nào cũng có người bán ma túy đá"

    env["HOMTHU_SECRET_KEY"] = "another-secret-key-of-32-bytes!!"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "keys", "rotate", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 2
    assert "not the one this database was created with" in err.decode()
