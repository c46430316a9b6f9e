"""The Telegram adapter's own defences: updates python-telegram-bot cannot read."""

from __future__ import annotations

import io
import json

import pytest
from telegram import Update
from telegram.error import TelegramError

from bot.channels.telegram import UpdatesRequest, to_inbound
from bot.emulator import BotApiEmulator
from chat import Person
from handlers.events import EventKind


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


USER = {"id": 5550001234, "is_bot": False, "first_name": "Trần"}
CHAT = {"id": 5550001234, "type": "private"}


def update(**message: object) -> Update:
    """An update PTB can read, with a message of these fields over a plain one."""
    return Update.de_json(
        {
            "update_id": 1,
            "message": {"message_id": 9, "date": 1, "chat": CHAT, "from": USER, **message},
        },
        None,
    )


@pytest.mark.parametrize(
    ("fields", "kind"),
    [
        ({"text": 5}, EventKind.UNSUPPORTED),
        ({"text": ["a"]}, EventKind.UNSUPPORTED),
        ({"location": {"latitude": "21", "longitude": 105}}, EventKind.UNSUPPORTED),
        ({"location": {"latitude": 1e309, "longitude": 105}}, EventKind.UNSUPPORTED),
        ({"location": {"latitude": 91.0, "longitude": 105}}, EventKind.UNSUPPORTED),
        ({"location": {"latitude": 21.0, "longitude": 105.8}}, EventKind.LOCATION),
        ({"document": {"file_id": "", "file_unique_id": "u"}}, EventKind.UNSUPPORTED),
        (
            {"document": {"file_id": "f", "file_unique_id": "u", "file_name": 3}},
            EventKind.DOCUMENT,
        ),
    ],
)
def test_values_of_undocumented_types_do_not_cross_over(
    fields: dict[str, object], kind: EventKind
) -> None:
    event = to_inbound(update(**fields))
    assert event is not None and event.kind is kind
    assert event.text is None or isinstance(event.text, str)
    assert event.media is None or event.media.file_name is None


def test_a_message_with_odd_ids_or_none_at_all_is_not_handled() -> None:
    assert to_inbound(update(chat={"id": "x", "type": "private"})) is None
    assert to_inbound(update(message_id="9")) is None
    assert to_inbound(update(chat=None, date=0)) is None
    query = {
        "id": "1",
        "from": USER,
        "chat_instance": "1",
        "data": 5,
        "message": {"message_id": 9, "date": 1, "chat": CHAT},
    }
    event = to_inbound(Update.de_json({"update_id": 2, "callback_query": query}, None))
    assert event is not None and event.choice == ""
