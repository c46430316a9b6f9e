"""Settings: the example config.toml, environment overrides and one clear line per mistake."""

import os
from pathlib import Path

import pytest

from bot.config import ConfigError, Settings, load_settings, token_missing_message

REPO_CONFIG = Path(__file__).resolve().parents[2] / "config.toml"

WARD = """
[[wards]]
code = "dong-cuong"
name = "Phường Đông Cương"
officer_chat_id = -1001000000001
areas = ["Khu phố 1", "Khu phố 2"]
"""


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Run every test without the developer's HOMTHU_* variables or token, in an empty dir."""
    for name in list(os.environ):
        if name.upper().startswith("HOMTHU_") or name.upper() == "TELEGRAM_BOT_TOKEN":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(path: Path | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    return caught.value.lines


def test_repo_config_loads_one_ward_with_ten_khu_pho() -> None:
    settings = load_settings(REPO_CONFIG)

    ward = settings.ward("dong-cuong")
    assert ward.name == "Phường Đông Cương"
    assert ward.areas == [f"Khu phố {number}" for number in range(1, 11)]
    assert ward.officer_chat_id < 0
    assert ward.hotlines[0].name == "Cảnh sát 113"
    assert ward.hotlines[0].phone == "113"
    assert settings.bot.language == "vi"
    assert str(settings.bot.tz) == "Asia/Ho_Chi_Minh"
    assert settings.database.url == "sqlite+aiosqlite:///data/homthu.db"
    assert settings.limits.max_attachments == 10
    assert settings.telegram_bot_token is None
    assert settings.secret_key is None


def test_repo_config_spells_out_every_default() -> None:
    settings = load_settings(REPO_CONFIG)
    defaults = Settings(wards=settings.wards)

    assert settings.model_dump(exclude={"wards"}) == defaults.model_dump(exclude={"wards"})


def test_unknown_ward_code_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        load_settings(REPO_CONFIG).ward("thach-khoi")


def test_env_override_of_one_key_keeps_the_rest_of_its_section(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(
        tmp_path,
        '[telegram]\nbase_url = "https://file.example/bot"\npoll_timeout = 50\n' + WARD,
    )
    monkeypatch.setenv("HOMTHU_TELEGRAM__BASE_URL", "http://127.0.0.1:8081/bot")
    monkeypatch.setenv("HOMTHU_BOT__LANGUAGE", "en")

    settings = load_settings(path)

    assert settings.telegram.base_url == "http://127.0.0.1:8081/bot"
    assert settings.telegram.poll_timeout == 50
    assert settings.telegram.base_file_url == "https://api.telegram.org/file/bot"
    assert settings.bot.language == "en"
    assert settings.ward("dong-cuong").areas == ["Khu phố 1", "Khu phố 2"]


def test_secrets_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123456:ABC-token")
    monkeypatch.setenv("HOMTHU_SECRET_KEY", "k" * 32)

    settings = load_settings(write(tmp_path, WARD))

    assert settings.telegram_bot_token is not None
    assert settings.telegram_bot_token.get_secret_value() == "123456:ABC-token"
    assert settings.secret_key is not None
    assert settings.secret_key.get_secret_value() == "k" * 32


def test_homthu_config_selects_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "elsewhere.toml"
    other.write_text(WARD.replace("dong-cuong", "quang-trung"), encoding="utf-8")
    monkeypatch.setenv("HOMTHU_CONFIG", str(other))

    assert load_settings().wards[0].code == "quang-trung"


def test_default_file_is_config_toml_in_the_current_directory(tmp_path: Path) -> None:
    write(tmp_path, WARD)

    assert load_settings().wards[0].code == "dong-cuong"


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.toml"

    assert problems(path) == [
        f"{path}: file not found; copy the example config.toml from the repository there, "
        "or set HOMTHU_CONFIG to the path of your configuration file."
    ]


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "[bot]\nlanguage = vi\n" + WARD)

    [line] = problems(path)

    assert line.startswith(f"{path}: TOML syntax error: ")
    assert "line 2" in line
    assert line.endswith('(text goes in double quotes, e.g. name = "Phường Đông Cương").')


def test_officer_chat_id_not_a_number(tmp_path: Path) -> None:
    path = write(tmp_path, WARD.replace("-1001000000001", '"abc"'))

    assert problems(path) == [
        f'{path}: wards[0].officer_chat_id: "abc" is not a whole number; '
        "set it to the id of the officers' Telegram group (a negative number)."
    ]


def test_officer_chat_id_zero(tmp_path: Path) -> None:
    path = write(tmp_path, WARD.replace("-1001000000001", "0"))

    assert problems(path) == [
        f"{path}: wards[0].officer_chat_id: 0 is not a chat id; "
        "set it to the id of the officers' Telegram group (a negative number)."
    ]


def test_invalid_timezone(tmp_path: Path) -> None:
    path = write(tmp_path, '[bot]\ntimezone = "Asia/Hanoi City"\n' + WARD)

    assert problems(path) == [
        f'{path}: bot.timezone: "Asia/Hanoi City" is not a known time zone; '
        'use an IANA time zone name such as "Asia/Ho_Chi_Minh".'
    ]


def test_bad_value_from_environment_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOMTHU_BOT__LANGUAGE", "fr")

    assert problems(write(tmp_path, WARD)) == [
        'environment variable HOMTHU_BOT__LANGUAGE: "fr" is not one of the allowed values; '
        'use "vi" for Vietnamese or "en" for English.'
    ]


def test_unknown_key_suggests_the_spelling(tmp_path: Path) -> None:
    path = write(tmp_path, '[bot]\nlangauge = "vi"\n' + WARD)

    assert problems(path) == [
        f'{path}: bot.langauge: is not a known key; check the spelling (did you mean "language"?) '
        "or remove it."
    ]


def test_empty_wards(tmp_path: Path) -> None:
    path = write(tmp_path, "wards = []\n")

    assert problems(path) == [
        f"{path}: wards: is empty; "
        "add a [[wards]] table for your ward, as in the example config.toml."
    ]


def test_no_wards_at_all(tmp_path: Path) -> None:
    path = write(tmp_path, '[bot]\nlanguage = "vi"\n')

    assert problems(path) == [
        f"{path}: wards: is missing; "
        "add a [[wards]] table for your ward, as in the example config.toml."
    ]


def test_duplicate_ward_codes(tmp_path: Path) -> None:
    path = write(tmp_path, WARD + WARD)

    assert problems(path) == [
        f'{path}: wards: uses the code "dong-cuong" for more than one ward; '
        "give each [[wards]] table its own code."
    ]


def test_duplicate_areas(tmp_path: Path) -> None:
    path = write(tmp_path, WARD.replace('"Khu phố 2"', '"khu phố 1"'))

    assert problems(path) == [
        f'{path}: wards[0].areas: lists "khu phố 1" more than once; '
        'list each khu phố, thôn or tổ dân phố exactly once, e.g. ["Khu phố 1", "Khu phố 2"].'
    ]


def test_an_area_name_longer_than_its_column(tmp_path: Path) -> None:
    path = write(tmp_path, WARD.replace('"Khu phố 2"', '"' + "Khu phố rất dài " * 8 + '"'))

    assert problems(path) == [
        f"{path}: wards[0].areas: names an area longer than 120 characters; "
        'list each khu phố, thôn or tổ dân phố exactly once, e.g. ["Khu phố 1", "Khu phố 2"].'
    ]


def test_bad_database_url_hides_the_password(tmp_path: Path) -> None:
    path = write(tmp_path, '[database]\nurl = "postgresql://homthu:hunter2@db/homthu"\n' + WARD)

    assert problems(path) == [
        f'{path}: database.url: starts with "postgresql://", which is not supported; '
        'use "sqlite+aiosqlite:///data/homthu.db" '
        'or "postgresql+asyncpg://user:password@host/dbname".'
    ]


def test_bad_ward_code(tmp_path: Path) -> None:
    path = write(tmp_path, WARD.replace('"dong-cuong"', '"Đông Cương"'))

    assert problems(path) == [
        f'{path}: wards[0].code: "Đông Cương" is not a valid ward code; use 1 to 24 lowercase '
        'letters, digits or dashes, starting with a letter or digit, e.g. "dong-cuong".'
    ]


def test_bad_hotline_phone(tmp_path: Path) -> None:
    path = write(tmp_path, WARD + '[[wards.hotlines]]\nname = "Cảnh sát 113"\nphone = "gọi 113"\n')

    assert problems(path) == [
        f'{path}: wards[0].hotlines[0].phone: "gọi 113" is not a phone number; '
        'use digits, spaces, "+", dots and dashes only, e.g. "113".'
    ]


def test_out_of_range_falls_back_to_a_generic_fix(tmp_path: Path) -> None:
    path = write(tmp_path, "[limits]\nmax_text_chars = 0\n" + WARD)

    assert problems(path) == [
        f"{path}: limits.max_text_chars: 0 is below the minimum of 1; "
        "fix the value, or delete the line to use the default 8000."
    ]


def test_secret_in_file_must_move_to_the_environment(tmp_path: Path) -> None:
    path = write(tmp_path, 'telegram_bot_token = "123456:ABC-token"\n' + WARD)

    assert problems(path) == [
        f"{path}: telegram_bot_token: is a secret and must not be written in the file; "
        "delete it and set the environment variable TELEGRAM_BOT_TOKEN instead."
    ]


def test_secret_key_in_a_section_is_caught_too(tmp_path: Path) -> None:
    path = write(tmp_path, '[bot]\nsecret_key = "' + "k" * 40 + '"\n' + WARD)

    lines = problems(path)

    assert lines == [
        f"{path}: bot.secret_key: is a secret and must not be written in the file; "
        "delete it and set the environment variable HOMTHU_SECRET_KEY instead."
    ]
    assert "k" * 40 not in str(ConfigError(lines))


def test_short_secret_key_is_refused_without_echoing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOMTHU_SECRET_KEY", "tooshort")

    [line] = problems(write(tmp_path, WARD))

    assert line.startswith(
        "environment variable HOMTHU_SECRET_KEY: has 8 characters, fewer than 32; "
        "set it to at least 32 random characters"
    )
    assert "tooshort" not in line


def test_every_problem_gets_its_own_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[bot]\ntimezone = "Nowhere"\n[telegram]\npoll_timeout = 90\n'
        + WARD.replace("-1001000000001", '"abc"'),
    )

    lines = problems(path)

    assert [line.split(":")[1].strip() for line in lines] == [
        "bot.timezone",
        "telegram.poll_timeout",
        "wards[0].officer_chat_id",
    ]
    assert str(ConfigError(lines)) == "\n".join(lines)


def test_token_missing_message_walks_through_botfather() -> None:
    text = token_missing_message()

    for step in ("@BotFather", "/newbot", "/setprivacy", "getUpdates", "make run"):
        assert step in text
    assert "export TELEGRAM_BOT_TOKEN=" in text
