"""Anonymity is the product: each promise here fails loudly if it is ever broken."""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from sqlmodel import select

from bot.app import Runtime
from bot.emulator import BotApiEmulator
from bot.logs import QUIET_LOGGERS
from chat import Group, Officer, Person
from conftest import OFFICER_ID, SECRET, SUPERVISOR_ID, TOKEN, database_file
from handlers.tips import format_receipt
from storage.crypto import Keyring, SealError
from storage.db import unit_of_work
from storage.models import ContactLink, Draft, Tip
from tests_support import RECEIPT, database_text, send_tip

TIP_TEXT = "Canary-7f3a: bán ma túy đá ở nhà số 9"


def identity(resident: Person) -> list[str]:
    """Everything that would identify the resident."""
    user = resident.user
    return [str(user.id), user.first_name, user.last_name or "", user.username or ""]


async def test_no_tip_row_holds_the_senders_identity(
    resident: Person, officers: Group, runtime: Runtime
) -> None:
    receipt = await send_tip(resident, TIP_TEXT)
    await officers.sees()
    await resident.says("/start")
    await resident.taps("📝 Gửi tin tố giác")  # leaves a draft in the database too
    dump = await database_text(runtime)
    async with unit_of_work(runtime.services.sessions) as session:
        tip = (await session.exec(select(Tip))).one()
    assert tip.receipt_hash in dump  # the dump really holds the rows searched
    assert tip.text == TIP_TEXT  # and the bot still reads the tip through its keyring
    for secret in [*identity(resident), receipt, format_receipt(receipt), TIP_TEXT]:
        assert secret not in dump, f"{secret!r} found in the database"
    path = database_file(runtime.settings.database.url)
    if path is not None:
        raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
        for secret in [*identity(resident), TIP_TEXT]:
            assert secret.encode() not in raw, f"{secret!r} found in the SQLite files"


async def test_the_officers_group_never_learns_who_sent_a_tip(
    resident: Person, officers: Group, emulator: BotApiEmulator
) -> None:
    await send_tip(resident, TIP_TEXT)
    await emulator.send_photo(resident.user, b"\xff\xd8\xff\xe0photo")  # idle: not a tip
    await resident.sees()
    card = await officers.sees()
    assert TIP_TEXT in card.text
    seen = json.dumps([m.raw for m in emulator.messages(officers.chat_id)], ensure_ascii=False)
    for secret in identity(resident):
        assert secret not in seen
    assert "forward_origin" not in seen
    assert emulator.calls_to("forwardMessage") == []
    to_group = [c for c in emulator.calls if str(c.params.get("chat_id")) == str(officers.chat_id)]
    assert to_group
    for call in to_group:
        assert str(resident.user.id) not in json.dumps(call.params, default=str)


async def test_logs_carry_pseudonyms_only(
    resident: Person, officers: Group, runtime: Runtime, logs: pytest.LogCaptureFixture
) -> None:
    await send_tip(resident, TIP_TEXT)
    await officers.sees()
    await resident.emulator.send_sticker(resident.user)
    await resident.sees()
    await resident.says("/tracuu 0000 0000 0000 0000")
    captured = logs.text
    assert "Tip #1 stored" in captured  # logging was really captured, at DEBUG
    for secret in [*identity(resident), TIP_TEXT, "Canary-7f3a", TOKEN]:
        assert secret not in captured, f"{secret!r} found in the logs"


async def test_the_receipt_is_stored_only_as_a_keyed_hash(
    resident: Person, officers: Group, runtime: Runtime
) -> None:
    receipt = await send_tip(resident)
    async with unit_of_work(runtime.services.sessions) as session:
        tip = (await session.exec(select(Tip))).one()
    assert tip.receipt_hash == Keyring(SECRET).receipt_hash(receipt)
    assert tip.receipt_hash != hashlib.sha256(receipt.encode()).hexdigest()
    assert tip.receipt_hash != Keyring(b"another-secret-key-of-32-bytes!!").receipt_hash(receipt)


async def test_the_contact_link_is_sealed_to_its_tip(
    resident: Person, officers: Group, runtime: Runtime
) -> None:
    await send_tip(resident)
    async with unit_of_work(runtime.services.sessions) as session:
        link = (await session.exec(select(ContactLink))).one()
    assert str(resident.user.id).encode() not in link.sealed
    keyring = runtime.services.keyring
    opened = json.loads(keyring.open(link.sealed, context=f"contact:{link.tip_id}"))
    assert opened == {"channel": "telegram", "chat": str(resident.user.id), "language": "vi"}
    with pytest.raises(SealError):
        keyring.open(link.sealed, context="contact:2")
    stranger = Keyring(b"another-secret-key-of-32-bytes!!")
    stranger.install({keyring.current_key_id: b"k" * 32}, current=keyring.current_key_id)
    with pytest.raises(SealError):
        stranger.open(link.sealed, context=f"contact:{link.tip_id}")


async def test_drafts_are_keyed_by_a_keyed_hash_of_the_chat(
    resident: Person, runtime: Runtime
) -> None:
    await resident.says("/start")
    await resident.taps("📝 Gửi tin tố giác")
    async with unit_of_work(runtime.services.sessions) as session:
        draft = (await session.exec(select(Draft))).one()
    assert draft.chat_key == Keyring(SECRET).chat_key("telegram", str(resident.user.id))
    assert str(resident.user.id) not in draft.chat_key


async def test_the_relay_logs_neither_side_nor_their_words(
    resident: Person,
    officers: Group,
    emulator: BotApiEmulator,
    logs: pytest.LogCaptureFixture,
) -> None:
    officer = Officer(
        emulator, emulator.add_user(OFFICER_ID, "Phạm Cán", username="pham_can_bo"), officers
    )
    await send_tip(resident, TIP_TEXT)
    card = await officers.sees()
    await officer.replies(card, "Canary-question: mấy giờ?")
    question = await resident.sees()
    await officers.sees()
    await emulator.send_text(resident.user, "Canary-answer: 9 giờ", reply_to=question.message_id)
    await resident.sees()
    await officers.sees()
    captured = logs.text
    secrets = [*identity(resident), "Canary-question", "Canary-answer", "pham_can_bo", TOKEN]
    for secret in secrets:
        assert secret not in captured, f"{secret!r} found in the logs"


@pytest.fixture
def loud_libraries(logs: pytest.LogCaptureFixture) -> Iterator[None]:
    """Libraries that see updates, URLs and SQL forced to DEBUG, as a debugging operator might."""
    levels = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


async def test_a_whole_day_at_debug_with_loud_libraries_logs_nobody_and_no_token(
    loud_libraries: None,
    resident: Person,
    officers: Group,
    emulator: BotApiEmulator,
    runtime: Runtime,
    emitted: io.StringIO,
) -> None:
    officer = Officer(
        emulator, emulator.add_user(OFFICER_ID, "Phạm Cán", username="pham_can_bo"), officers
    )
    supervisor = Person(
        emulator, emulator.add_user(SUPERVISOR_ID, "Lê Lãnh Đạo"), runtime.dispatcher.idle
    )
    # A tip with a place, a shared location and a photo.
    await resident.says("/start")
    await resident.taps("📝 Gửi tin tố giác")
    await resident.taps("💊 Mua bán ma túy")
    await resident.taps("Khu phố 3")
    await emulator.send_location(resident.user, 21.5942, 105.8482)
    await resident.sees()
    await resident.says(TIP_TEXT)
    await emulator.send_photo(
        resident.user, b"\xff\xd8\xff\xe0Canary-photo", caption="Canary-caption"
    )
    await resident.sees()
    await resident.taps("✅ Xong (1 tệp)")
    done = await resident.taps("✅ Gửi tin")
    receipt = "".join(RECEIPT.search(done.text or "").groups())  # type: ignore[union-attr]
    card = await officers.sees()
    await officers.sees()  # the photo under the card
    # The officer claims it, asks; the resident answers; the resident looks the tip up.
    await officer.taps_and_reads(card, "✋ Nhận xử lý")
    await resident.sees()  # told it was taken
    await officer.replies(card, "Canary-question: mấy giờ?")
    question = await resident.sees()
    await emulator.send_text(resident.user, "Canary-answer: 9 giờ", reply_to=question.message_id)
    await resident.sees()
    await resident.says(f"/tracuu {format_receipt(receipt)}")
    # The resident subscribes; a supervisor sends a broadcast to the area.
    await resident.says("/dangky")
    await resident.taps("Khu phố 3")
    await supervisor.says("/broadcast")
    await supervisor.says("Canary-broadcast: họp tổ dân phố tối nay")
    await supervisor.taps("🏘 Một khu phố, thôn của Phường Đông Cương")
    await supervisor.taps("Khu phố 3")
    await supervisor.sees()  # the preview
    await supervisor.sees()  # when?
    await supervisor.taps("🚀 Gửi ngay")
    await supervisor.taps("✅ Xác nhận")
    await emulator.wait_until(
        lambda emu: any(
            "Canary-broadcast" in m.content for m in emu.bot_messages(resident.chat_id)
        )
    )
    await runtime.dispatcher.idle()

    written = emitted.getvalue()
    for loud in (" DEBUG telegram.ext.ExtBot: ", " DEBUG telegram.ext.Updater: ", " INFO httpx: "):
        assert loud in written  # the libraries really were loud
    assert "Tip #1 stored" in written
    secrets = [
        *identity(resident),
        "Canary-7f3a",
        "Canary-photo",
        "Canary-caption",
        "Canary-question",
        "Canary-answer",
        "pham_can_bo",
        receipt,
        format_receipt(receipt),
        "21.5942",
        TOKEN,
        quote(TOKEN, ""),
        quote(TOKEN, "").replace("%3A", "%3a"),
        TOKEN.partition(":")[2],
    ]
    for secret in secrets:
        assert secret not in written, f"{secret!r} found in the logs"
