"""One bot serving several wards: the resident picks the ward, its officers get the tip."""

from __future__ import annotations

from typing import Any

import pytest

from bot.emulator import BotApiEmulator
from chat import Group, Person
from conftest import GROUP_ID, OTHER_GROUP_ID, ward


@pytest.fixture
def wards() -> list[dict[str, Any]]:
    """Two wards served by one bot, as the district plan replicates a pilot."""
    return [
        ward("dong-cuong", "Phường Đông Cương", GROUP_ID),
        ward("quang-trung", "Xã Quang Trung", OTHER_GROUP_ID, areas=["Thôn 1", "Thôn 2"]),
    ]


async def test_with_several_wards_the_tip_goes_to_the_chosen_wards_group(
    resident: Person, emulator: BotApiEmulator
) -> None:
    other = Group(emulator, emulator.add_group(chat_id=OTHER_GROUP_ID, title="CA xã"))
    own = Group(emulator, emulator.add_group(chat_id=GROUP_ID, title="CA phường"))
    await resident.says("/start")
    pick = await resident.taps("📝 Gửi tin tố giác")
    assert pick.button_labels()[:2] == ["Phường Đông Cương", "Xã Quang Trung"]
    areas = await resident.taps("Xã Quang Trung")
    assert "Bước 1/5" in areas.text
    await resident.taps("🌿 Trồng cây có chất ma túy")
    await resident.taps("Thôn 2")
    await resident.taps("⏭ Bỏ qua")
    await resident.says("Vườn sau nhà có trồng cây cần sa")
    review = await resident.taps("⏭ Bỏ qua")
    assert "🏛 Phường, xã: Xã Quang Trung" in review.text
    await resident.taps("✅ Gửi tin")
    card = await other.sees()
    assert "🌿 Trồng cây có chất ma túy" in card.text and "Thôn 2" in card.text
    assert own.messages() == []
