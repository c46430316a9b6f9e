"""When a handler fails: the person is answered, the draft is as it was, the log names nobody."""

from __future__ import annotations

import io

import pytest

from bot.app import Runtime
from bot.emulator import BotApiEmulator
from chat import Group, Officer, Person
from conftest import OFFICER_ID
from handlers import officer_commands, tips
from handlers.context import Turn
from storage import repositories as repo
from tests_support import MENU_BUTTONS

SORRY = "Xin lỗi, bot vừa gặp lỗi. Tin bạn đang viết vẫn được giữ nguyên;"
SORRY_GROUP = "Xin lỗi, bot vừa gặp lỗi; chưa có gì thay đổi. Hãy thử lại."
WORDS = "Canary-dispatch: hai người bán ở ngõ 5"


@pytest.fixture
def officer(emulator: BotApiEmulator, officers: Group) -> Officer:
    """A ward officer in the group."""
    return Officer(emulator, emulator.add_user(OFFICER_ID, "Nguyễn Văn", "Cán"), officers)


async def failing_text(turn: Turn, state: tips.DraftState, text: str) -> None:
    """Change the draft, then fail: the change must not survive."""
    state.data.text = "half-written by a failing handler"
    await tips.save(turn, state)
    raise RuntimeError(f"failed on {text}")


async def test_a_failing_handler_apologises_and_keeps_the_draft_as_it_was(
    resident: Person,
    runtime: Runtime,
    emitted: io.StringIO,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await resident.says("/start")
    await resident.taps("📝 Gửi tin tố giác")
    await resident.taps("💊 Mua bán ma túy")
    await resident.taps("Khu phố 3")
    await resident.says("Quán nước")
    key = runtime.services.keyring.chat_key("telegram", str(resident.chat_id))

    async def stored() -> tuple[str, dict[str, object]]:
        async with runtime.services.sessions() as session:
            draft = await repo.get_draft(session=session, chat_key=key)
        assert draft is not None
        return draft.step, draft.data

    before = await stored()
    monkeypatch.setattr(tips, "_on_text", failing_text)
    sorry = await resident.says(WORDS)
    assert sorry.text.startswith(SORRY)
    assert sorry.button_labels() == MENU_BUTTONS
    assert await stored() == before
    written = emitted.getvalue()
    pseudonym = runtime.services.keyring.pseudonym("telegram", str(resident.chat_id))
    assert (
        f"ERROR handlers.dispatch: Handling text from {pseudonym} failed: RuntimeError" in written
    )
    assert "Canary-dispatch" not in written


async def test_the_apology_goes_out_even_when_the_database_is_what_fails(
    resident: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def unreachable(**_: object) -> None:
        raise ConnectionRefusedError("database down")

    monkeypatch.setattr(repo, "get_chat_state", unreachable)
    sorry = await resident.says("/start")
    assert sorry.text.startswith(SORRY)


async def test_a_failing_command_in_the_officers_group_is_answered_under_it(
    officers: Group, officer: Officer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def failing(turn: Turn, desk: object) -> None:
        raise RuntimeError("queue failed")

    monkeypatch.setattr(officer_commands, "_queue", failing)
    command = await officer.emulator.send_command(officer.user, "/queue", chat=officers.chat_id)
    sorry = await officers.sees()
    assert sorry.text == SORRY_GROUP
    assert sorry.reply_to == command.message_id
