"""Triage: each new tip gets a priority and flags from the rules in config, never dropped."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from bot.config import ConfigError, KeywordRule, SpamRules, TriageSection, load_settings
from handlers.i18n import LANGUAGES, Catalogue
from handlers.triage import Assessment, Flag, Priority, Reason, assess, describe
from storage.models import Category

RULES = TriageSection()
LONG = "Có người lạ hay đứng ở đầu ngõ vào buổi tối"

WARD = """
[[wards]]
code = "dong-cuong"
name = "Phường Đông Cương"
officer_chat_id = -1001000000001
areas = ["Khu phố 1"]
"""


def tip(
    text: str = LONG,
    *,
    category: Category = Category.OTHER,
    place: str | None = None,
    has_location: bool = False,
    attachments: int = 0,
    earlier: Sequence[str] = (),
    rules: TriageSection = RULES,
) -> Assessment:
    return assess(
        category=category,
        text=text,
        place=place,
        has_location=has_location,
        attachment_count=attachments,
        earlier_texts=earlier,
        rules=rules,
    )


def codes(assessment: Assessment) -> list[str]:
    return [flag.code for flag in assessment.flags]


@pytest.mark.parametrize(
    ("category", "priority"),
    [
        (Category.PSYCHOSIS, Priority.URGENT),
        (Category.DEALING, Priority.HIGH),
        (Category.DEN, Priority.HIGH),
        (Category.SCHOOL, Priority.HIGH),
        (Category.DRIVING, Priority.HIGH),
        (Category.USE, Priority.NORMAL),
        (Category.PLANTS, Priority.NORMAL),
        (Category.DISGUISED, Priority.NORMAL),
        (Category.OTHER, Priority.LOW),
    ],
)
def test_each_category_starts_at_its_priority(category: Category, priority: Priority) -> None:
    assessment = tip(category=category)

    assert assessment == Assessment(priority, (), ())


@pytest.mark.parametrize(
    ("text", "place", "priority", "flags"),
    [
        ("Thằng con nhà bên ngao da cả đêm", None, Priority.URGENT, ["danger_now"]),
        ("ông hàng xóm ngao da roi, la het ca dem", None, Priority.URGENT, ["danger_now"]),
        ("ANH TA NGÁO ĐÁ, ĐANG ĐẬP PHÁ ĐỒ ĐẠC", None, Priority.URGENT, ["danger_now"]),
        ("nguoi nghien dang cam dao ngoai duong", None, Priority.URGENT, ["danger_now"]),
        ("Nó đe doạ giết cả nhà tôi", None, Priority.URGENT, ["danger_now"]),
        ("co nguoi dang ban hang trang o quan nuoc", None, Priority.HIGH, ["selling_now"]),
        ("Họ ĐANG GIAO DỊCH sau chợ, nhanh lên", None, Priority.HIGH, ["selling_now"]),
        ("thay hoc sinh hut thuoc la dien tu la", None, Priority.HIGH, ["school"]),
        ("Có người bán kẹo lạ cho các em", "cổng trường tiểu học", Priority.HIGH, ["school"]),
        ("Nhà đó cất giấu súng và bán ma túy", None, Priority.URGENT, ["weapon"]),
        ("có người mang MÃ TẤU đi lại trong hẻm", None, Priority.URGENT, ["weapon"]),
        (
            "nha do giau sung, nguoi nghien ngao da",
            None,
            Priority.URGENT,
            ["danger_now", "weapon"],
        ),
    ],
)
def test_keywords_match_with_or_without_diacritics(
    text: str, place: str | None, priority: Priority, flags: list[str]
) -> None:
    assessment = tip(text, place=place)

    assert assessment.priority is priority
    assert codes(assessment) == flags


@pytest.mark.parametrize(
    "text",
    [
        "Ngao dan phim xong thì họ tụ tập uống rượu",  # "ngao dan" is not "ngao da"
        "nguoi ta dang banh mi o day moi sang thoi",  # "dang banh" is not "dang ban"
        "Dạo này có nhiều người lạ ra vào nhà đó",  # "dạo" is not "dao" (knife)
        "Họ bổ sung thêm người canh cửa mỗi tối",  # "sung" is not "súng" (gun)
        "Tôi đang bận nhưng thấy họ ra vào liên tục",  # "bận" is not "bán"
        "Học sinhh... chỉ là gõ nhầm thôi ạ cảm ơn",  # a longer word is another word
    ],
)
def test_a_keyword_must_be_a_whole_word_as_written(text: str) -> None:
    assessment = tip(text)

    assert assessment == Assessment(Priority.LOW, (), ())


def test_a_rule_fires_once_and_names_the_word_that_matched() -> None:
    assessment = tip("Hắn ngáo đá, cầm dao, loạn thần rồi", category=Category.USE)

    assert assessment.flags == (Flag("danger_now", "keyword=ngáo đá"),)
    assert assessment.reasons == (Reason("keyword=ngáo đá", Priority.NORMAL, Priority.URGENT),)


def test_reasons_list_each_rule_that_raised_the_priority_in_order() -> None:
    assessment = tip("thấy học sinh đang giao dịch, có con dao", category=Category.USE)

    assert assessment.priority is Priority.URGENT
    assert assessment.flags == (
        Flag("weapon", "keyword=con dao"),
        Flag("selling_now", "keyword=đang giao dịch"),
        Flag("school", "keyword=học sinh"),
    )
    # Selling and school are only "high": below urgent, they change nothing.
    assert assessment.reasons == (Reason("keyword=con dao", Priority.NORMAL, Priority.URGENT),)


def test_a_keyword_never_lowers_the_category_priority() -> None:
    assessment = tip("họ đang bán ngay trước nhà", category=Category.PSYCHOSIS)

    assert assessment.priority is Priority.URGENT
    assert codes(assessment) == ["selling_now"]
    assert assessment.reasons == ()


@pytest.mark.parametrize(
    ("category", "attachments", "has_location", "priority", "flags"),
    [
        (Category.OTHER, 2, False, Priority.NORMAL, ["has_evidence"]),
        (Category.OTHER, 0, True, Priority.NORMAL, ["has_location"]),
        (Category.OTHER, 3, True, Priority.NORMAL, ["has_evidence", "has_location"]),
        (Category.USE, 1, True, Priority.NORMAL, ["has_evidence", "has_location"]),
        (Category.DEALING, 1, False, Priority.HIGH, ["has_evidence"]),
    ],
)
def test_evidence_raises_low_to_normal_only(
    category: Category,
    attachments: int,
    has_location: bool,
    priority: Priority,
    flags: list[str],
) -> None:
    assessment = tip(category=category, attachments=attachments, has_location=has_location)

    assert assessment.priority is priority
    assert codes(assessment) == flags


def test_evidence_says_why_it_raised_the_priority() -> None:
    assessment = tip(attachments=2, has_location=True)

    assert assessment.flags == (
        Flag("has_evidence", "attachments=2"),
        Flag("has_location", "location"),
    )
    assert assessment.reasons == (Reason("attachments=2", Priority.LOW, Priority.NORMAL),)


@pytest.mark.parametrize(
    ("text", "earlier", "signal"),
    [
        ("ma tuy", (), "short=15"),
        ("   có ma túy    ", (), "short=15"),
        ("https://example.com/khuyen-mai-hot-nhat", (), "only_links"),
        ("t.me/kenhhot  bit.ly/abcdef", (), "only_links"),
        (LONG, ("Tin khác", "CÓ NGƯỜI LẠ hay đứng ở đầu ngõ vào buổi tối"), "duplicate"),
        (LONG, ("co nguoi la hay dung o dau ngo vao buoi toi",), "duplicate"),
    ],
)
def test_spam_signals_label_the_tip_and_lower_it(
    text: str, earlier: tuple[str, ...], signal: str
) -> None:
    assessment = tip(text, category=Category.DEALING, earlier=earlier)

    assert assessment.priority is Priority.LOW
    [flag] = assessment.flags
    assert flag.code == "suspected_spam"
    assert signal in flag.rule
    assert assessment.reasons == (Reason(flag.rule, Priority.HIGH, Priority.LOW),)


def test_a_link_among_words_is_not_spam() -> None:
    assessment = tip("Họ rao bán công khai ở đây: https://example.com/shop", category=Category.USE)

    assert assessment == Assessment(Priority.NORMAL, (), ())


def test_a_short_text_with_a_photo_or_a_place_is_not_spam() -> None:
    assert codes(tip("ở đây", category=Category.DEALING, attachments=1)) == ["has_evidence"]
    assert codes(tip("ở đây", category=Category.DEALING, has_location=True)) == ["has_location"]
    assert tip("bán ma túy", category=Category.DEALING, place="ngõ 5, khu phố 3").flags == ()


def test_a_short_danger_tip_keeps_its_priority() -> None:
    assessment = tip("NGAO DA!!", category=Category.USE)

    assert assessment.priority is Priority.URGENT
    assert codes(assessment) == ["danger_now", "suspected_spam"]
    assert assessment.reasons == (Reason("keyword=ngáo đá", Priority.NORMAL, Priority.URGENT),)


def test_a_short_tip_in_a_danger_category_keeps_its_priority() -> None:
    assessment = tip("nhà số 5", category=Category.PSYCHOSIS)

    assert assessment.priority is Priority.URGENT
    assert codes(assessment) == ["suspected_spam"]


def test_a_weapon_alone_does_not_save_spam() -> None:
    assessment = tip("có mã tấu", category=Category.OTHER)

    assert assessment.priority is Priority.LOW
    assert codes(assessment) == ["weapon", "suspected_spam"]


def test_custom_rules_replace_the_defaults() -> None:
    rules = TriageSection(
        category_priority={"use": "low"},
        keywords=[KeywordRule(words=["cỏ mỹ", "bóng cười"], flag="party", priority="normal")],
        spam=SpamRules(min_chars=3),
    )

    assessment = tip("co bong cuoi", category=Category.USE, rules=rules)

    assert assessment.flags == (Flag("party", "keyword=bóng cười"),)
    assert assessment.reasons == (Reason("keyword=bóng cười", Priority.LOW, Priority.NORMAL),)
    # Categories the table leaves out keep their defaults; the default keywords are gone.
    assert tip("ngao da", category=Category.PSYCHOSIS, rules=rules).flags == ()


def test_priority_ranks_sort_urgent_first() -> None:
    shuffled = [Priority.LOW, Priority.URGENT, Priority.NORMAL, Priority.HIGH]

    assert sorted(shuffled, key=lambda priority: priority.rank) == list(Priority)
    assert [priority.rank for priority in Priority] == [0, 1, 2, 3]


def test_every_priority_and_default_flag_has_a_label_in_each_language() -> None:
    catalogue = Catalogue.load()
    flags = {rule.flag for rule in RULES.keywords}
    flags |= {"has_evidence", "has_location", "suspected_spam"}
    needed = {f"priority.{p.value}" for p in Priority} | {f"flag.{code}" for code in flags}

    for language in LANGUAGES:
        assert needed - catalogue.keys(language) == set()
    assert catalogue.text("vi", "priority.urgent") == "🔴 Khẩn"


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.upper().startswith("HOMTHU_"):
            monkeypatch.delenv(name)
    return tmp_path / "config.toml"


def problems(path: Path, text: str) -> list[str]:
    path.write_text(text + WARD, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    return caught.value.lines


def test_config_refuses_an_unknown_keyword_priority(config: Path) -> None:
    text = '[[triage.keywords]]\nwords = ["ngáo đá"]\nflag = "danger_now"\npriority = "khẩn"\n'

    assert problems(config, text) == [
        f'{config}: triage.keywords[0].priority: "khẩn" is not a priority; use one of '
        "urgent, high, normal, low; fix the value as in the example config.toml."
    ]


def test_config_refuses_an_unknown_category_priority(config: Path) -> None:
    [line] = problems(config, '[triage.category_priority]\npsychosis = "very"\n')

    assert line.startswith(
        f'{config}: triage.category_priority: gives "psychosis" the priority "very", '
        "which is not one of urgent, high, normal, low;"
    )


def test_config_refuses_an_unknown_category(config: Path) -> None:
    [line] = problems(config, '[triage.category_priority]\nngao_da = "urgent"\n')

    assert line.startswith(
        f'{config}: triage.category_priority: names "ngao_da", which is not a tip category '
        "(dealing, use, den, psychosis, plants, disguised, driving, school, other);"
    )


@pytest.mark.parametrize(
    ("toml", "where"),
    [
        ('[triage]\ndigest_time = "7:30"\n', "triage.digest_time"),
        ("[triage]\nurgent_remind_minutes = 0\n", "triage.urgent_remind_minutes"),
        ("[triage]\nblock_days = 400\n", "triage.block_days"),
        ("[triage]\nremind = 5\n", "triage.remind"),
        ('[[triage.keywords]]\nwords = []\nflag = "x"\npriority = "low"\n', "triage.keywords"),
        (
            '[[triage.keywords]]\nwords = ["a"]\nflag = "X Y"\npriority = "low"\n',
            "triage.keywords[0].flag",
        ),
    ],
)
def test_config_names_each_bad_triage_key(config: Path, toml: str, where: str) -> None:
    [line] = problems(config, toml)

    assert line.startswith(f"{config}: {where}")


@pytest.mark.parametrize(
    ("rule", "language", "words"),
    [
        ("keyword=ngáo đá", "vi", 'từ khóa "ngáo đá"'),
        ("keyword=ngáo đá", "en", 'keyword "ngáo đá"'),
        ("attachments=2", "vi", "2 ảnh/tệp đính kèm"),
        ("short=15;only_links", "vi", "ngắn hơn 15 ký tự; chỉ có đường link"),
        ("duplicate", "en", "same as an earlier tip from the same sender"),
    ],
)
def test_a_stored_rule_is_said_in_the_readers_language(
    rule: str, language: str, words: str
) -> None:
    catalogue = Catalogue.load()

    def t(key: str, **values: object) -> str:
        return catalogue.text(language, key, **values)

    assert describe(rule, t) == words
