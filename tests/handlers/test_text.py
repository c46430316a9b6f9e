"""Text helpers: what residents type, with or without diacritics, and how long texts split."""

from __future__ import annotations

import unicodedata

import pytest

from handlers.events import Choice
from handlers.text import fold, fold_label, match_choice, only_digits, split_text, storable

CATEGORIES = (
    Choice("💊 Mua bán ma túy", "1:t:c:dealing"),
    Choice("💉 Sử dụng ma túy", "1:t:c:use"),
    Choice("🏚 Tụ điểm, nơi chứa chấp", "1:t:c:den"),
    Choice("⚠️ Ngáo đá, loạn thần (nguy hiểm)", "1:t:c:psychosis"),
    Choice("✖️ Hủy", "1:t:c:cancel"),
)
AREAS = tuple(Choice(f"Khu phố {n}", f"1:t:a:{n - 1}") for n in range(1, 11))


@pytest.mark.parametrize(
    ("typed", "folded"),
    [
        ("Ma túy", "ma tuy"),
        ("MA TÚY", "ma tuy"),
        ("Đường dây nóng", "duong day nong"),
        ("đồng ĐỒNG", "dong dong"),
        ("  Khu   phố\t3 \n", "khu pho 3"),
        ("Ngáo đá", "ngao da"),
        # The same words typed on a keyboard that sends decomposed accents (NFD).
        (unicodedata.normalize("NFD", "Ngáo đá"), "ngao da"),
        ("", ""),
    ],
)
def test_fold_drops_case_diacritics_and_extra_spaces(typed: str, folded: str) -> None:
    assert fold(typed) == folded


@pytest.mark.parametrize(
    ("label", "folded"),
    [
        ("💊 Mua bán ma túy", "mua ban ma tuy"),
        ("⚠️ Ngáo đá, loạn thần (nguy hiểm)", "ngao da loan than nguy hiem"),
        ("🏚 Tụ điểm, nơi chứa chấp", "tu diem noi chua chap"),
        ("✖️ Hủy", "huy"),
        ("◀️ Quay lại", "quay lai"),
        ("✅ Xong (3 tệp)", "xong 3 tep"),
        ("🔔 Cho cán bộ hỏi thêm: Có", "cho can bo hoi them co"),
        ("📝", ""),
    ],
)
def test_fold_label_also_drops_emoji_and_punctuation(label: str, folded: str) -> None:
    assert fold_label(label) == folded


@pytest.mark.parametrize(
    ("typed", "data"),
    [
        ("mua ban ma tuy", "1:t:c:dealing"),
        ("Mua bán ma túy", "1:t:c:dealing"),
        ("  MUA BAN MA TUY  ", "1:t:c:dealing"),
        ("💊 Mua bán ma túy", "1:t:c:dealing"),
        ("ngao da, loan than (nguy hiem)", "1:t:c:psychosis"),
        ("ngao da loan than nguy hiem", "1:t:c:psychosis"),
        ("huy", "1:t:c:cancel"),
        ("1", "1:t:c:dealing"),
        ("3", "1:t:c:den"),
        (" 5 ", "1:t:c:cancel"),
    ],
)
def test_match_choice_by_label_or_number(typed: str, data: str) -> None:
    picked = match_choice(typed, CATEGORIES)
    assert picked is not None
    assert picked.data == data


@pytest.mark.parametrize(
    "typed",
    ["0", "6", "99", "-1", "mua ban", "ma tuy", "", "   ", "💊", "mua bán ma túy đá"],
)
def test_match_choice_returns_none_for_no_match(typed: str) -> None:
    assert match_choice(typed, CATEGORIES) is None


def test_match_choice_by_number_follows_the_order_of_the_buttons() -> None:
    assert [match_choice(str(n), AREAS) for n in range(1, 11)] == list(AREAS)


def test_match_choice_with_numbers_off_treats_digits_as_text() -> None:
    # On free-text steps "3" is an answer (house number 3), not the third button.
    assert match_choice("3", CATEGORIES, numbers=False) is None
    assert match_choice("1", AREAS, numbers=False) is None
    # Labels still match.
    assert match_choice("khu pho 3", AREAS, numbers=False) == AREAS[2]


def test_match_choice_by_label_wins_over_number_for_labels_made_of_digits() -> None:
    choices = (Choice("12", "1:x:twelve"), Choice("1", "1:x:one"))
    assert match_choice("12", choices, numbers=False) == choices[0]


@pytest.mark.parametrize("typed", ["²", "①"])
def test_match_choice_with_digit_like_symbols_is_no_match(typed: str) -> None:
    assert match_choice(typed, CATEGORIES) is None


@pytest.mark.parametrize(
    ("typed", "digits"),
    [
        ("1234 5678 9012 3456", "1234567890123456"),
        ("1234-5678-9012-3456", "1234567890123456"),
        ("Mã: 1234.5678.9012.3456!", "1234567890123456"),
        ("no digits", ""),
        # Arabic-Indic and full-width digits are not receipt digits.
        ("\u0661\u0662\u0663 \uff14\uff15\uff16 789", "789"),
        ("", ""),
    ],
)
def test_only_digits_keeps_ascii_digits(typed: str, digits: str) -> None:
    assert only_digits(typed) == digits


def _non_space(text: str) -> str:
    return "".join(text.split())


def _telegram_length(text: str) -> int:
    """Length as Telegram limits it: UTF-16 code units, so an emoji such as 🆕 counts twice."""
    return len(text.encode("utf-16-le")) // 2


WORDS = "Tối nào cũng có hai thanh niên bán ma túy đá ở quán nước đầu ngõ 12"
SPLIT_CASES = [
    ("", 10),
    ("ngắn", 10),
    ("a" * 10, 10),
    ("a" * 11, 10),
    ("a" * 25, 10),
    (WORDS, 10),
    (WORDS, 16),
    (WORDS * 50, 100),
    ((WORDS + "\n") * 200, 4096),
    ("\n".join(["x" * 3000] * 4), 4096),
    ("x" * 9000, 4096),
    ("dòng một\ndòng hai\n\n\ndòng ba " * 300, 500),
    ("  khoảng trắng  " * 400, 64),
    ("a\n" * 1000, 7),
    ("một " + "b" * 50 + " hai", 20),
    # A card: emoji headers, then a long text without line breaks.
    ("🆕 TIN #1 · 💊 Mua bán ma túy\n🏘 Khu vực: Khu phố 3\n\n📝 Nội dung:\n" + WORDS * 80, 4096),
    ("🆕" * 5000, 4096),
    ("📝 " * 3000, 4096),
    ("a🆕" * 50, 7),
]


@pytest.mark.parametrize(("text", "limit"), SPLIT_CASES)
def test_split_text_never_exceeds_the_limit_telegram_counts(text: str, limit: int) -> None:
    pieces = split_text(text, limit)
    assert pieces
    lengths = [_telegram_length(piece) for piece in pieces]
    assert all(length <= limit for length in lengths), lengths


@pytest.mark.parametrize(("text", "limit"), SPLIT_CASES)
def test_split_text_loses_no_visible_character(text: str, limit: int) -> None:
    pieces = split_text(text, limit)
    assert _non_space("".join(pieces)) == _non_space(text)


def test_split_text_keeps_a_short_text_whole() -> None:
    assert split_text(WORDS, 4096) == [WORDS]
    assert split_text("", 4096) == [""]


def test_split_text_prefers_line_breaks_then_spaces() -> None:
    text = "a" * 60 + "\n" + "b" * 30 + " " + "c" * 30
    assert split_text(text, 80) == ["a" * 60, "b" * 30 + " " + "c" * 30]
    assert split_text("a" * 60 + " " + "b" * 60, 80) == ["a" * 60, "b" * 60]


def test_split_text_cuts_mid_word_only_when_there_is_no_break_late_enough() -> None:
    # The only space is in the first half of the piece: cutting there would waste it.
    text = "ab " + "c" * 100
    assert split_text(text, 40) == ["ab " + "c" * 37, "c" * 40, "c" * 23]


def test_storable_drops_nul_controls_and_lone_surrogates_only() -> None:
    kept = "Tối\tnay\r\nở ngõ 7 👨‍👩‍👧 \u202eđá\u202c \u200b"
    assert storable(kept) == kept
    assert storable("a\x00b\x07c\x1bd\x7fe\ud800f\udfffg") == "abcdefg"
