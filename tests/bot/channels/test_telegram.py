"""The Telegram adapter's own defences: updates python-telegram-bot cannot read."""

from __future__ import annotations

import io
import json

import pytest
from telegram.error import TelegramError

from bot.channels.telegram import UpdatesRequest
from bot.emulator import BotApiEmulator
from chat import Person


async def test_an_unreadable_update_is_skipped_and_the_bot_answers_on(
    resident: Person, emulator: BotApiEmulator, emitted: io.StringIO
) -> None:
    # No chat, no date: PTB refuses the whole batch, and used to fetch it again forever.
    bad = emulator.inject_update(
        {"message": {"text": "Canary-poison", "from": resident.user.to_json()}}
    )
    welcome = await resident.says("/start")
    assert "Hòm thư tố giác" in welcome.text
    await emulator.wait_until(lambda emu: emu.pending_updates() == 0)
    written = emitted.getvalue()
    assert f"Update {bad} cannot be read (KeyError); skipped" in written
    # PTB logged the refused batch raw, at CRITICAL: the sender's name, id and words.
    assert "CRITICAL" not in written
    for secret in ("Canary-poison", str(resident.user.id), "tran_van_bian_secret"):
        assert secret not in written


def test_updates_are_kept_reduced_or_dropped_by_what_can_be_read() -> None:
    good = {
        "update_id": 7,
        "message": {"message_id": 1, "date": 1, "chat": {"id": 1, "type": "private"}},
    }
    answer = {
        "ok": True,
        "result": [good, {"update_id": 8, "message": {"text": "x"}}, {"no": "id"}, [1], 9],
    }
    parsed = UpdatesRequest.parse_json_payload(json.dumps(answer).encode())
    assert parsed == {"ok": True, "result": [good, {"update_id": 8}]}


def test_a_reply_that_is_not_json_is_refused_without_quoting_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with pytest.raises(TelegramError, match="Invalid server response"):
        UpdatesRequest.parse_json_payload(b'[{"update_id": 1, "from": "Canary-raw"')
    assert "Canary-raw" not in caplog.text
