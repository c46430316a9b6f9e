"""Monthly awareness messages: a resident subscribes by area, changes it, and stops at once."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import SQLModel

from bot.app import Runtime
from chat import Person
from conftest import GROUP_ID, OTHER_GROUP_ID, ward
from handlers.subscriptions import seal_context
from storage import broadcasts as store
from storage.db import unit_of_work
from storage.models import Subscription
from tests_support import MENU_BUTTONS

SUBSCRIBE = "📬 Nhận tin tuyên truyền hằng tháng"
STOP = "🔕 Hủy nhận tin"
CHANGE = "🏘 Đổi khu phố, thôn"


async def subscription_of(runtime: Runtime, resident: Person) -> Subscription | None:
    """The resident's subscription row, found the way the bot finds it."""
    key = runtime.services.keyring.chat_key("telegram", str(resident.chat_id))
    async with unit_of_work(runtime.services.sessions) as session:
        return await store.get_subscription(session=session, chat_key=key)


async def test_a_resident_subscribes_by_area_and_is_told_what_that_means(
    resident: Person, runtime: Runtime
) -> None:
    await resident.says("/start")
    areas = await resident.taps(SUBSCRIBE)
    assert "Bạn ở khu phố, thôn nào?" in areas.text
    assert areas.button_labels()[:2] == ["Khu phố 1", "Khu phố 2"]
    assert areas.button_labels()[-2:] == ["Không rõ / tất cả", "✖️ Thôi"]
    done = await resident.taps("Khu phố 3")
    assert done.text.startswith("✅ Đã đăng ký nhận tin tuyên truyền hằng tháng.")
    assert "🏛 Phường Đông Cương · 🏘 Khu phố 3" in done.text
    assert "Mỗi tháng khoảng một tin ngắn" in done.text
    assert "/huydangky" in done.text
    assert "không gắn với bất kỳ tin tố giác nào" in done.text
    assert done.button_labels() == [CHANGE, STOP, "🏠 Về menu chính"]
    subscription = await subscription_of(runtime, resident)
    assert subscription is not None and subscription.active
    assert (subscription.ward_code, subscription.area, subscription.language) == (
        "dong-cuong",
        "Khu phố 3",
        "vi",
    )


async def test_the_sealed_chat_opens_to_the_chat_and_no_plain_chat_id_is_stored(
    resident: Person, runtime: Runtime
) -> None:
    await resident.says("/dangky")
    await resident.taps("Khu phố 1")
    subscription = await subscription_of(runtime, resident)
    assert subscription is not None
    keyring = runtime.services.keyring
    opened = keyring.open(subscription.sealed_chat, context=seal_context(subscription.chat_key))
    assert json.loads(opened) == {"channel": "telegram", "chat": str(resident.chat_id)}
    rows: list[str] = []
    async with unit_of_work(runtime.services.sessions) as session:
        for table in SQLModel.metadata.sorted_tables:
            result = await session.exec(text(f"SELECT * FROM {table.name}"))  # type: ignore[call-overload]
            rows += [repr(tuple(row)) for row in result]
    dump = "\n".join(rows)
    assert "Khu phố 1" in dump  # the dump really holds the subscription
    for secret in (str(resident.chat_id), resident.user.username or "", resident.user.first_name):
        assert secret not in dump


async def test_subscribing_writes_no_tip_and_no_draft(resident: Person, runtime: Runtime) -> None:
    await resident.says("/dangky")
    await resident.taps("Không rõ / tất cả")
    async with unit_of_work(runtime.services.sessions) as session:
        for table in ("tips", "drafts", "contact_links"):
            result = await session.exec(text(f"SELECT COUNT(*) FROM {table}"))  # type: ignore[call-overload]
            assert result.scalar_one() == 0, table
    subscription = await subscription_of(runtime, resident)
    assert subscription is not None and subscription.area is None


async def test_when_subscribed_the_menu_button_opens_the_settings_to_change_the_area(
    resident: Person, runtime: Runtime
) -> None:
    await resident.says("/dangky")
    await resident.taps("Khu phố 2")
    await resident.says("/start")
    settings = await resident.taps(SUBSCRIBE)
    assert settings.text.startswith("📬 Bạn đang nhận tin tuyên truyền hằng tháng.")
    assert "🏘 Khu phố 2" in settings.text
    await resident.taps(CHANGE)
    changed = await resident.taps("Khu phố 7")
    assert changed.text == "✅ Đã đổi: Phường Đông Cương · Khu phố 7."
    subscription = await subscription_of(runtime, resident)
    assert subscription is not None and subscription.area == "Khu phố 7"


async def test_one_tap_unsubscribes_at_once(resident: Person, runtime: Runtime) -> None:
    await resident.says("/dangky")
    await resident.taps("Khu phố 2")
    stopped = await resident.taps(STOP)
    assert stopped.text.startswith("🔕 Đã hủy. Từ nay bot không gửi tin tuyên truyền")
    assert stopped.button_labels() == MENU_BUTTONS
    subscription = await subscription_of(runtime, resident)
    assert subscription is not None and not subscription.active
    assert subscription.end_reason == "resident"


@pytest.mark.parametrize("command", ["/huydangky", "/stop"])
async def test_a_command_unsubscribes_at_once(
    resident: Person, runtime: Runtime, command: str
) -> None:
    await resident.says("/dangky")
    await resident.taps("Khu phố 2")
    stopped = await resident.says(command)
    assert stopped.text.startswith("🔕 Đã hủy.")
    subscription = await subscription_of(runtime, resident)
    assert subscription is not None and not subscription.active
    again = await resident.says(command)
    assert again.text.startswith("Bạn chưa đăng ký nhận tin tuyên truyền.")


async def test_a_resident_can_subscribe_again_after_stopping(
    resident: Person, runtime: Runtime
) -> None:
    await resident.says("/dangky")
    await resident.taps("Khu phố 2")
    await resident.says("/huydangky")
    await resident.says("/dangky")
    done = await resident.taps("Khu phố 4")
    assert done.text.startswith("✅ Đã đăng ký")
    subscription = await subscription_of(runtime, resident)
    assert subscription is not None and subscription.active and subscription.area == "Khu phố 4"


async def test_typed_answers_without_diacritics_are_understood(
    resident: Person, runtime: Runtime
) -> None:
    await resident.says("/dangky")
    unclear = await resident.says("o gan cho")
    assert unclear.text.startswith("Bạn hãy bấm một nút bên dưới")
    done = await resident.says("khu pho 5")
    assert "🏘 Khu phố 5" in done.text
    await resident.says("/dangky")
    await resident.taps(CHANGE)
    done = await resident.says("khong ro / tat ca")
    assert done.text == "✅ Đã đổi: Phường Đông Cương · Không rõ / tất cả."
    subscription = await subscription_of(runtime, resident)
    assert subscription is not None and subscription.area is None


async def test_cancelling_before_choosing_stores_nothing(
    resident: Person, runtime: Runtime
) -> None:
    await resident.says("/dangky")
    back = await resident.taps("✖️ Thôi")
    assert back.text.startswith("Chưa đăng ký gì.")
    assert back.button_labels() == MENU_BUTTONS
    assert await subscription_of(runtime, resident) is None
    # The question is no longer awaited: typed text gets the welcome again.
    welcome = await resident.says("khu pho 5")
    assert welcome.text.startswith("🏮 Hòm thư tố giác ma túy")


class TestSeveralWards:
    """One bot serving two wards: the resident picks the ward, then its area."""

    @pytest.fixture
    def wards(self) -> list[dict[str, Any]]:
        """Two wards, as the district plan replicates a pilot."""
        return [
            ward("dong-cuong", "Phường Đông Cương", GROUP_ID),
            ward("quang-trung", "Xã Quang Trung", OTHER_GROUP_ID, areas=["Thôn 1", "Thôn 2"]),
        ]

    async def test_the_ward_comes_first_and_back_returns_to_it(
        self, resident: Person, runtime: Runtime
    ) -> None:
        await resident.says("/start")
        pick = await resident.taps(SUBSCRIBE)
        assert pick.text.startswith("📬 Bạn muốn nhận tin tuyên truyền của phường, xã nào?")
        assert pick.button_labels() == ["Phường Đông Cương", "Xã Quang Trung", "✖️ Thôi"]
        areas = await resident.taps("Xã Quang Trung")
        assert areas.button_labels() == ["Thôn 1", "Thôn 2", "Không rõ / tất cả", "◀️ Quay lại"]
        again = await resident.taps("◀️ Quay lại")
        assert again.button_labels()[0] == "Phường Đông Cương"
        await resident.says("xa quang trung")
        done = await resident.says("thon 2")
        assert "🏛 Xã Quang Trung · 🏘 Thôn 2" in done.text
        subscription = await subscription_of(runtime, resident)
        assert subscription is not None
        assert (subscription.ward_code, subscription.area) == ("quang-trung", "Thôn 2")
