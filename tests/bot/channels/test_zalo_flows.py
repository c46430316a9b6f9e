"""A resident on the Zalo OA sends a tip; officers, on Telegram, get the card and ask.

Until the core lists choices as numbers on channels without (enough) buttons, the resident
here sends the data of the choice the core offered, as a tap on an OA button would.
"""

from __future__ import annotations

import json
from typing import Any

import zalo_channels
from zalo_channels import settle

from bot.app import Runtime
from bot.channels import zalo_oa
from bot.emulator.zalo_oa import OAUser, ZaloOAEmulator
from chat import Group, Officer
from conftest import OFFICER_ID, FakeClock
from handlers.events import Outbound
from pictures import metadata_left, phone_photo
from storage import broadcasts
from storage.db import unit_of_work
from tests_support import RECEIPT

# The shared fixtures of zalo_channels, visible to pytest here.
oa = zalo_channels.oa
zbot = zalo_channels.zbot
zalo_runtime = zalo_channels.zalo_runtime
zalo_officers = zalo_channels.zalo_officers


class ZaloResident:
    """A resident writing to the OA, with what the core asked the OA channel to show."""

    def __init__(self, runtime: Runtime, oa: ZaloOAEmulator) -> None:
        self.runtime = runtime
        self.oa = oa
        self.user: OAUser = oa.user()
        self.shown: list[Outbound] = []
        channel: Any = runtime.services.channel(zalo_oa.NAME)
        original = channel.send

        async def recording(chat: str, message: Outbound, *, patient: bool = True) -> Any:
            self.shown.append(message)
            return await original(chat, message, patient=patient)

        channel.send = recording

    async def _deliver(self, event: dict[str, Any]) -> str:
        assert await self.oa.deliver(event) == 200
        await settle(self.runtime)
        return self.oa.texts_to(self.user)[-1]

    async def says(self, text: str) -> str:
        """Type a text; return the last text the OA sent back."""
        return await self._deliver(self.oa.text(self.user, text))

    async def picks(self, label: str) -> str:
        """Pick the choice ``label`` offered last, as a tap on its button sends it."""
        for message in reversed(self.shown):
            for row in message.choices:
                for choice in row:
                    if choice.label == label:
                        return await self.says(zalo_oa.CHOICE_MARK + choice.data)
        raise LookupError(label)

    async def sends(self, event: dict[str, Any]) -> str:
        """Send a photo, a location, a file (an event built by the emulator)."""
        return await self._deliver(event)


async def test_a_tip_from_zalo_reaches_the_officers_and_their_question_comes_back(
    zalo_runtime: Runtime, oa: ZaloOAEmulator, zalo_officers: Group, clock: FakeClock
) -> None:
    resident = ZaloResident(zalo_runtime, oa)
    welcome = await resident.says("/start")
    assert "Hòm thư tố giác ma túy" in welcome
    await resident.picks("📝 Gửi tin tố giác")
    await resident.picks("💊 Mua bán ma túy")
    await resident.picks("Khu phố 3")
    await resident.says("Quán nước đầu ngõ 12")
    await resident.sends(oa.location(resident.user, 21.02851, 105.85423))
    await resident.says("Tối nào cũng có người bán ma túy đá ở quán nước")
    await resident.sends(oa.image(resident.user, phone_photo()))
    await resident.picks("✅ Xong (1 tệp)")
    done = await resident.picks("✅ Gửi tin")
    receipt = RECEIPT.search(done)
    assert receipt, done
    await settle(zalo_runtime)
    card = zalo_officers.messages()[0]
    assert "Tối nào cũng có người bán ma túy đá" in card.content
    assert "Quán nước đầu ngõ 12" in card.content
    # The photo came from Zalo's URL, was cleaned, and was uploaded to Telegram.
    photos = [m for m in zalo_officers.messages() if m.kind == "photo"]
    assert len(photos) == 1
    data = photos[0].file_bytes
    assert data is not None and metadata_left(data) == []
    # An officer asks on Telegram; the question reaches the resident on Zalo, with a button.
    emulator = zalo_officers.emulator
    officer = Officer(emulator, emulator.add_user(OFFICER_ID, "Phạm Cán"), zalo_officers)
    await officer.replies(card, "Mấy giờ thì đông người?")
    await emulator.wait_until(lambda emu: emu.pending_updates() == 0)
    await settle(zalo_runtime)
    asked = oa.messages_to(resident.user)[-1]
    assert asked.text is not None and "Mấy giờ thì đông người?" in asked.text
    assert len(asked.buttons) == 1
    await resident.sends(oa.tap(resident.user, asked.buttons[0]["title"]))
    await resident.says("Khoảng 9 giờ tối")
    assert any("Khoảng 9 giờ tối" in m.content for m in zalo_officers.messages())
    # Eight silent days later, Zalo refuses the OA's message: the question waits for them.
    clock.advance(days=8)
    await officer.replies(card, "Còn bán không?")
    await emulator.wait_until(lambda emu: emu.pending_updates() == 0)
    await settle(zalo_runtime)
    held = zalo_officers.messages()[-1].content
    assert "đã không nhắn gì hơn 7 ngày" in held and "sẽ tự gửi ngay khi họ nhắn" in held
    assert "Còn bán không?" not in (oa.texts_to(resident.user)[-1])
    await resident.says("xin chào")
    assert "Còn bán không?" in oa.texts_to(resident.user)[-1]
    released = zalo_officers.messages()[-1].content
    assert "vừa được gửi tới người báo tin" in released
    await resident.sends(oa.tap(resident.user, asked.buttons[0]["title"]))
    await resident.says("Vẫn bán, tối thứ bảy")
    assert any("Vẫn bán, tối thứ bảy" in m.content for m in zalo_officers.messages())
    # The receipt, typed on Zalo, shows the tip.
    await resident.picks("🔎 Tra cứu tin đã gửi")
    found = await resident.says(receipt.group(0))
    assert "Tin #1" in found


async def test_a_zalo_resident_subscribes_and_unfollowing_deletes_the_address(
    zalo_runtime: Runtime, oa: ZaloOAEmulator
) -> None:
    resident = ZaloResident(zalo_runtime, oa)
    await resident.says("/start")
    await resident.picks("📬 Nhận tin tuyên truyền hằng tháng")
    done = await resident.picks("Khu phố 3")
    assert done.startswith("✅ Đã đăng ký nhận tin tuyên truyền hằng tháng.")
    services = zalo_runtime.services
    chat_key = services.keyring.chat_key(zalo_oa.NAME, resident.user.id)
    async with unit_of_work(services.sessions) as session:
        subscription = await broadcasts.get_subscription(session=session, chat_key=chat_key)
    assert subscription is not None and subscription.active and subscription.area == "Khu phố 3"
    address = services.keyring.open(subscription.sealed_chat, context=f"subscription:{chat_key}")
    assert json.loads(address)["channel"] == zalo_oa.NAME
    assert await oa.deliver(oa.envelope(resident.user, "unfollow")) == 200
    await settle(zalo_runtime)
    async with unit_of_work(services.sessions) as session:
        left = await broadcasts.get_subscription(session=session, chat_key=chat_key)
    assert left is not None and not left.active and left.sealed_chat == b""
