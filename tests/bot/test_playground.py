"""The playground page over HTTP: a resident sends a tip, the officers' pane gets the card."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.playground import Playground
from bot.playground.web import DEMO_PHOTO
from conftest import GROUP_ID, OFFICER_ID, SECRET, SUPERVISOR_ID
from pictures import metadata_left, picture

ROOT = Path(__file__).resolve().parents[2]
LAN = 900000001
HUNG = 900000002

State = dict[str, Any]


class Page:
    """What the page's script does: read the state by long poll, post the person's actions."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.url = url
        self.state: State = {}

    async def refresh(self) -> State:
        async with self.session.get(f"{self.url}/api/state") as response:
            assert response.status == 200
            self.state = await response.json()
        return self.state

    async def until(self, predicate: Callable[[State], bool], timeout: float = 10.0) -> State:  # noqa: ASYNC109
        """Long-poll as the page does until the predicate holds on the state."""
        async with asyncio.timeout(timeout):
            state = await self.refresh()
            while not predicate(state):
                query = {"v": state["version"]}
                async with self.session.get(f"{self.url}/api/state", params=query) as response:
                    state = self.state = await response.json()
        return state

    async def post(self, path: str, expect: int = 200, **body: Any) -> dict[str, Any]:
        async with self.session.post(f"{self.url}{path}", json=body) as response:
            assert response.status == expect, await response.text()
            answer: dict[str, Any] = await response.json()
        return answer

    def chat(self, chat_id: int) -> list[dict[str, Any]]:
        """The messages the page shows in the resident's chat or the officers' group."""
        for holder in (*self.state["residents"], *self.state["groups"]):
            if holder["chat"]["id"] == chat_id:
                messages: list[dict[str, Any]] = holder["chat"]["messages"]
                return messages
        raise LookupError(chat_id)

    def bot_said(self, chat_id: int) -> list[str]:
        return [m["text"] for m in self.chat(chat_id) if m["from_bot"]]

    async def says(self, user: int, chat: int, text: str, **extra: Any) -> State:
        """Type a message and wait for the bot's next message in that chat."""
        count = len(self.bot_said(chat)) if self.state else 0
        await self.post("/api/send", user=user, chat=chat, text=text, **extra)
        return await self.until(lambda _: len(self.bot_said(chat)) > count)

    async def taps(self, user: int, chat: int, label: str, *, edits: bool = False) -> State:
        """Tap the button on the latest message showing it; wait for the bot's next message.

        With ``edits``, wait instead for that message to be edited (a card changes in place).
        """
        await self.refresh()
        message = next(
            m
            for m in reversed(self.chat(chat))
            if any(b["label"] == label for row in m["buttons"] for b in row)
        )
        [data] = [b["data"] for row in message["buttons"] for b in row if b["label"] == label]
        count = len(self.bot_said(chat))
        await self.post("/api/click", user=user, chat=chat, message_id=message["id"], data=data)

        def done(_: State) -> bool:
            if not edits:
                return len(self.bot_said(chat)) > count
            [now] = [m for m in self.chat(chat) if m["id"] == message["id"]]
            return bool(now["text"] != message["text"])

        return await self.until(done)


@pytest.fixture
async def page(playground: Playground) -> AsyncIterator[Page]:
    async with aiohttp.ClientSession() as session:
        yield Page(session, playground.url)


async def test_the_page_and_its_scripts_are_served_from_the_package(page: Page) -> None:
    async with page.session.get(page.url) as response:
        html = await response.text()
    assert "Sân thử" in html and "/static/playground.js" in html
    assert "http" not in html.replace(page.url, "").split("<body>")[0]  # nothing from a CDN
    for name in ("playground.js", "playground.css", "demo-photo.png"):
        async with page.session.get(f"{page.url}/static/{name}") as response:
            assert response.status == 200, name


async def test_the_demo_people_are_the_residents_and_the_configured_officers(page: Page) -> None:
    state = await page.refresh()
    assert [r["name"] for r in state["residents"]] == ["Cô Lan", "Bác Hùng", "Em Vy"]
    [group] = state["groups"]
    assert group["id"] == GROUP_ID
    assert {(m["id"], m["role"]) for m in group["members"]} == {
        (OFFICER_ID, "officer"),
        (SUPERVISOR_ID, "supervisor"),
    }


async def test_a_tip_sent_on_the_page_reaches_the_officers_pane_and_their_question_returns(
    page: Page,
) -> None:
    await page.says(LAN, LAN, "/start")
    await page.taps(LAN, LAN, "📝 Gửi tin tố giác")
    await page.taps(LAN, LAN, "💊 Mua bán ma túy")
    await page.taps(LAN, LAN, "Khu phố 3")
    count = len(page.bot_said(LAN))
    await page.post("/api/location", user=LAN, chat=LAN)
    await page.until(lambda _: len(page.bot_said(LAN)) > count)
    assert "Bước 4/5" in page.bot_said(LAN)[-1]
    await page.says(LAN, LAN, "Tối nào cũng có người bán hàng ở quán nước đầu ngõ")
    count = len(page.bot_said(LAN))
    await page.post("/api/photo", user=LAN, chat=LAN)
    await page.until(lambda _: len(page.bot_said(LAN)) > count)
    await page.taps(LAN, LAN, "✅ Xong (1 tệp)")
    await page.taps(LAN, LAN, "✅ Gửi tin")
    assert "Đã gửi tin #1" in page.bot_said(LAN)[-1]

    state = await page.until(lambda _: len(page.chat(GROUP_ID)) >= 2)
    card, photo = page.chat(GROUP_ID)[:2]
    assert "#1" in card["text"] and "Khu phố 3" in card["text"]
    assert "quán nước đầu ngõ" in card["text"]
    assert "✋ Nhận xử lý" in [b["label"] for row in card["buttons"] for b in row]
    assert photo["kind"] == "photo" and photo["reply_to"]["id"] == card["id"]
    async with page.session.get(page.url + photo["file"]["url"]) as response:
        shown = await response.read()
    # The demo photo, re-encoded as every image is before it reaches the officers.
    assert picture(shown) == ("JPEG", picture(DEMO_PHOTO.read_bytes())[1])
    assert metadata_left(shown) == []
    group = json.dumps(state["groups"], ensure_ascii=False)
    assert "Cô Lan" not in group and str(LAN) not in group  # the officers never learn who

    await page.taps(OFFICER_ID, GROUP_ID, "✋ Nhận xử lý", edits=True)
    assert page.chat(GROUP_ID)[0]["edited"]
    assert page.chat(GROUP_ID)[0]["id"] == card["id"]  # edited in place, not re-sent
    await page.taps(OFFICER_ID, GROUP_ID, "❓ Hỏi người báo tin")
    prompt = await_prompt(page)
    assert prompt["force_reply"]
    count = len(page.bot_said(LAN))
    await page.post(
        "/api/send",
        user=OFFICER_ID,
        chat=GROUP_ID,
        text="Họ thường bán vào mấy giờ?",
        reply_to=prompt["id"],
    )
    await page.until(lambda _: len(page.bot_said(LAN)) > count)
    question = page.bot_said(LAN)[-1]
    assert "Cán bộ tiếp nhận hỏi về tin #1" in question
    assert "Họ thường bán vào mấy giờ?" in question


def await_prompt(page: Page) -> dict[str, Any]:
    """The bot's latest message in the group, which asks the officer to reply to it."""
    return [m for m in page.chat(GROUP_ID) if m["from_bot"]][-1]


async def test_the_page_acts_only_as_demo_people_where_they_belong(page: Page) -> None:
    await page.post("/api/send", 400, user=LAN, chat=GROUP_ID, text="xin chào")
    await page.post("/api/send", 400, user=LAN, chat=HUNG, text="xin chào")
    await page.post("/api/send", 400, user=123, chat=123, text="xin chào")
    await page.post("/api/send", 400, user=OFFICER_ID, chat=LAN, text="xin chào")
    await page.says(LAN, LAN, "/start")
    menu = page.chat(LAN)[-1]
    await page.post("/api/click", 400, user=LAN, chat=LAN, message_id=menu["id"], data="made-up")
    assert page.chat(HUNG) == []


async def test_run_without_a_token_explains_botfather_and_opens_the_playground(
    tmp_path: Path,
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[bot]
data_dir = "{tmp_path / "data"}"
[database]
url = "sqlite+aiosqlite:///{tmp_path / "homthu.db"}"
[playground]
port = 0
[[wards]]
code = "dong-cuong"
name = "Phường Đông Cương"
officer_chat_id = {GROUP_ID}
officers = [{OFFICER_ID}]
areas = ["Khu phố 1", "Khu phố 2"]
""",
        encoding="utf-8",
    )
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("HOMTHU_", "TELEGRAM_"))}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        cwd=ROOT,
        env={**keep, "HOMTHU_CONFIG": str(config), "HOMTHU_SECRET_KEY": SECRET.decode()},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), timeout=60)).decode()
        assert process.stderr is not None
        assert line.startswith("Playground: open http://127.0.0.1:"), line
        url = line.split()[2]
        async with aiohttp.ClientSession() as session, session.get(f"{url}/api/state") as got:
            state = await got.json()
        assert state["groups"][0]["members"][0]["id"] == OFFICER_ID
    finally:
        process.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0, err.decode()
    assert "@BotFather" in err.decode() and "TELEGRAM_BOT_TOKEN" in err.decode()
    assert "playground" in err.decode()
    assert "Traceback" not in err.decode()


async def test_the_month_button_sends_the_message_to_subscribed_demo_residents(
    page: Page,
) -> None:
    assert await page.post("/api/broadcast") == {"sent": 0}  # nobody has subscribed yet
    await page.says(LAN, LAN, "/dangky")
    await page.taps(LAN, LAN, "Khu phố 3")
    count = len(page.bot_said(LAN))
    assert await page.post("/api/broadcast") == {"sent": 1}
    state = await page.until(lambda _: len(page.bot_said(LAN)) > count)
    assert state and "ma túy" in page.bot_said(LAN)[-1]
    assert await page.post("/api/broadcast") == {"sent": 0}  # never twice
