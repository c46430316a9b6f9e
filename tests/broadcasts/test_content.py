"""The monthly message pack: twelve short Vietnamese messages, each with the ward's hotlines."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.config import Ward
from broadcasts.content import (
    MAX_CHARS,
    PACK,
    PackError,
    PackMessage,
    compose,
    load_pack,
    next_message,
)
from conftest import GROUP_ID, ward
from handlers.i18n import Catalogue
from handlers.text import fold

WARD = Ward.model_validate(ward("dong-cuong", "Phường Đông Cương", GROUP_ID))
TOPICS = [
    "tac-hai",
    "nhan-biet",
    "to-giac",
    "phap-luat",
    "nup-bong",
    "cay-ma-tuy",
    "cai-nghien",
    "truong-hoc",
    "toan-dan",
    "duong-day-nong",
    "lai-xe",
    "tren-mang",
]


def test_the_pack_holds_twelve_messages_in_month_order() -> None:
    pack = load_pack()
    assert [m.key for m in pack] == TOPICS
    assert all(m.image is None and m.topic for m in pack)


@pytest.mark.parametrize("message", load_pack(), ids=lambda m: m.key)
def test_each_message_with_its_hotlines_stays_under_1000_characters(
    message: PackMessage,
) -> None:
    text = compose(message, WARD, "vi", catalogue=Catalogue.load())
    assert len(text) < MAX_CHARS
    assert text.startswith(message.body)
    assert text.endswith(
        "📞 Đường dây nóng · Phường Đông Cương:\n"
        "📞 Cảnh sát 113: 113\n"
        "📞 Công an phường: 0237 3 123 456\n"
        "🔕 Không muốn nhận tin nữa: gõ /huydangky"
    )


@pytest.mark.parametrize("message", load_pack(), ids=lambda m: m.key)
def test_each_message_is_written_with_its_diacritics(message: PackMessage) -> None:
    assert "ma túy" in message.body.lower()
    assert not re.search(r"\bma tuy\b", message.body, re.IGNORECASE)
    # Folding the accents away changes the text: the marks are really there.
    assert fold(message.body) != message.body.casefold()


def test_the_tip_box_message_names_the_bots_anonymous_button() -> None:
    [tip_box] = [m for m in load_pack() if m.key == "to-giac"]
    assert "«📝 Gửi tin tố giác»" in tip_box.body and "không cần ghi tên" in tip_box.body


def test_the_movement_message_quotes_the_slogan() -> None:
    [movement] = [m for m in load_pack() if m.key == "toan-dan"]
    assert "Mỗi người dân là một chiến sỹ, mỗi gia đình là một pháo đài" in movement.body


def test_the_footer_follows_the_readers_language() -> None:
    text = compose(load_pack()[0], WARD, "en", catalogue=Catalogue.load())
    assert "📞 Hotlines · Phường Đông Cương:" in text


def test_long_hotlines_that_push_a_message_over_the_limit_are_refused() -> None:
    crowded = Ward.model_validate(
        {
            **ward("dong-cuong", "Phường Đông Cương", GROUP_ID),
            "hotlines": [{"name": "Đường dây nóng " * 5, "phone": "113"}] * 4,
        }
    )
    with pytest.raises(PackError, match="with the hotlines of dong-cuong"):
        compose(load_pack()[6], crowded, "vi")


def test_a_pack_with_a_repeated_key_is_refused(tmp_path: Path) -> None:
    for path in sorted(PACK.glob("*.md")):
        (tmp_path / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    first = tmp_path / "01-tac-hai.md"
    first.write_text(
        first.read_text(encoding="utf-8").replace("key: tac-hai", "key: lai-xe"),
        encoding="utf-8",
    )
    with pytest.raises(PackError, match="keys used more than once: lai-xe"):
        load_pack(tmp_path)


def test_a_pack_missing_a_message_or_with_a_long_one_is_refused(tmp_path: Path) -> None:
    for path in sorted(PACK.glob("*.md"))[:11]:
        (tmp_path / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(PackError, match="holds 11 messages, not 12"):
        load_pack(tmp_path)
    (tmp_path / "12-dai.md").write_text(
        "---\nkey: dai\ntopic: Dài\nimage: none\n---\n" + "ma túy " * 130, encoding="utf-8"
    )
    with pytest.raises(PackError, match=r"dai: .* leave no room for the hotlines"):
        load_pack(tmp_path)


def test_next_message_goes_through_the_pack_then_starts_again() -> None:
    pack = load_pack()
    assert next_message([], "2026-01", pack=pack).key == "tac-hai"
    assert next_message(["tac-hai", "nhan-biet"], "2026-03", pack=pack).key == "to-giac"
    # A pinned message went out out of turn; the skipped one comes next.
    assert next_message(["tac-hai", "truong-hoc"], "2026-03", pack=pack).key == "nhan-biet"
    assert next_message(TOPICS, "2027-01", pack=pack).key == "tac-hai"
    assert next_message([*TOPICS, "tac-hai"], "2027-02", pack=pack).key == "nhan-biet"


def test_a_pinned_month_gets_its_message() -> None:
    pack = load_pack()
    pinned = {"2026-06": "toan-dan"}
    assert next_message([], "2026-06", pinned, pack=pack).key == "toan-dan"
    assert next_message([], "2026-07", pinned, pack=pack).key == "tac-hai"
    with pytest.raises(PackError, match="not in the pack"):
        next_message([], "2026-06", {"2026-06": "khong-co"}, pack=pack)
