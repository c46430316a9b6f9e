"""The playground in a real headless Chromium: a resident's tip, an officer's claim and question.

Needs Debian's chromium and chromium-driver; skipped without them unless HOMTHU_REQUIRE_BROWSER=1
(as .ci/run sets). HOMTHU_WRITE_SCREENSHOT=1 also writes docs/playground.png for the README.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.playground import Playground

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# Nothing may reach the network: no updates, no sync, no first-run pages.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--window-size=1360,900",
    "--lang=vi",
)
WAIT_SECONDS = 20
# Read before the autouse fixture clears every HOMTHU_* variable for the tests.
REQUIRE_BROWSER = os.environ.get("HOMTHU_REQUIRE_BROWSER") == "1"
WRITE_SCREENSHOT = os.environ.get("HOMTHU_WRITE_SCREENSHOT") == "1"


def _missing() -> str | None:
    """Why the browser test cannot run here, or None when it can."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            return f"{path} is absent: apt-get install chromium chromium-driver"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed: pip install -e '.[dev]'"
    return None


@pytest.fixture
def driver() -> Iterator[Any]:
    """Headless Chromium driven by Debian's chromedriver; nothing is downloaded."""
    reason = _missing()
    if reason is not None:
        if REQUIRE_BROWSER:
            pytest.fail(f"HOMTHU_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    browser = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    try:
        yield browser
    finally:
        browser.quit()


class Screen:
    """A person at the page: taps and types in one pane; reads what the page shows.

    WebDriver calls block, so each runs in a thread while the bot keeps serving the page.
    """

    def __init__(self, driver: Any) -> None:
        self.driver = driver

    async def until(self, condition: Callable[[Any], Any]) -> Any:
        from selenium.common.exceptions import StaleElementReferenceException
        from selenium.webdriver.support.ui import WebDriverWait

        wait = WebDriverWait(
            self.driver, WAIT_SECONDS, ignored_exceptions=[StaleElementReferenceException]
        )
        return await asyncio.to_thread(wait.until, condition)

    async def taps(self, pane: str, label: str) -> None:
        """Tap the newest inline button with this label in the pane."""
        from selenium.webdriver.common.by import By

        xpath = (
            f"(//section[@id='{pane}']//div[@class='ikb']//button"
            f"[normalize-space()='{label}'])[last()]"
        )

        def tapped(driver: Any) -> bool:
            buttons = driver.find_elements(By.XPATH, xpath)
            if not buttons:
                return False
            buttons[0].click()
            return True

        await self.until(tapped)

    async def presses(self, selector: str) -> None:
        """Press a control of the page itself (📎, 📍, BẮT ĐẦU)."""
        from selenium.webdriver.common.by import By

        def pressed(driver: Any) -> bool:
            controls = [
                e for e in driver.find_elements(By.CSS_SELECTOR, selector) if e.is_displayed()
            ]
            if controls:
                controls[0].click()
            return bool(controls)

        await self.until(pressed)

    async def types(self, pane: str, text: str) -> None:
        """Type in the pane's message box and press Enter."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys

        def typed(driver: Any) -> bool:
            box = driver.find_element(By.CSS_SELECTOR, f"#{pane} .composer input")
            box.send_keys(text + Keys.ENTER)
            return True

        await self.until(typed)

    def text(self, pane: str) -> str:
        from selenium.webdriver.common.by import By

        return str(self.driver.find_element(By.ID, f"{pane}-chat").text)

    async def sees(self, pane: str, words: str) -> str:
        """Wait until the pane's chat shows these words; return all it shows."""
        await self.until(lambda _: words in self.text(pane))
        return self.text(pane)


async def test_a_tip_by_clicks_reaches_the_officers_who_claim_it_and_ask_back(
    driver: Any, playground: Playground, tmp_path: Path
) -> None:
    screen = Screen(driver)
    await asyncio.to_thread(driver.get, playground.url)
    await screen.presses("#resident .start")
    await screen.taps("resident", "📝 Gửi tin tố giác")
    await screen.taps("resident", "💊 Mua bán ma túy")
    await screen.taps("resident", "Khu phố 3")
    await screen.sees("resident", "Bước 3/5")
    await screen.presses("#resident .locate")
    await screen.sees("resident", "Bước 4/5")
    await screen.types("resident", "Tối nào cũng có người bán hàng ở quán nước đầu ngõ")
    await screen.sees("resident", "Bước 5/5")
    await screen.presses("#resident .attach")
    await screen.taps("resident", "✅ Xong (1 tệp)")
    await screen.taps("resident", "✅ Gửi tin")
    await screen.sees("resident", "Đã gửi tin #1")

    card = await screen.sees("officers", "quán nước đầu ngõ")
    assert "#1" in card and "Khu phố 3" in card
    assert "Cô Lan" not in card
    await screen.taps("officers", "✋ Nhận xử lý")
    await screen.sees("officers", "đã sửa")  # the card is edited in place
    await screen.taps("officers", "❓ Hỏi người báo tin")
    await screen.sees("officers", "viết câu hỏi cho người báo tin")
    await screen.until(
        lambda d: d.find_element("css selector", "#officers .replying").is_displayed()
    )
    await screen.types("officers", "Họ thường bán vào mấy giờ?")

    resident = await screen.sees("resident", "Cán bộ tiếp nhận hỏi về tin #1")
    assert "Họ thường bán vào mấy giờ?" in resident
    officers = screen.text("officers")
    assert "Đã gửi câu hỏi" in await screen.sees("officers", "Đã gửi câu hỏi")
    assert "Cô Lan" not in officers

    await screen.taps("resident", "✍️ Trả lời")
    await screen.types("resident", "Khoảng 9 giờ tối, xe máy màu đỏ")
    answer = await screen.sees("officers", "Người báo tin trả lời")
    assert "Khoảng 9 giờ tối" in answer and "Cô Lan" not in answer
    images = driver.find_elements("css selector", "#officers-chat img")
    assert images and driver.execute_script("return arguments[0].naturalWidth", images[0]) > 0

    await screen.until(lambda d: not d.find_element("id", "toast").is_displayed())
    # The picture for the README shows the card itself at the top of the officers' pane.
    driver.execute_script("document.querySelector('#officers-chat .row').scrollIntoView()")
    shot = tmp_path / "playground.png"
    await asyncio.to_thread(driver.save_screenshot, str(shot))
    assert shot.stat().st_size > 10_000
    if WRITE_SCREENSHOT:
        shutil.copyfile(shot, ROOT / "docs" / "playground.png")
