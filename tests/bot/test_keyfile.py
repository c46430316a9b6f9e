"""The secret key: generated once, private, stable across starts, overridable by env."""

import base64
import logging
import os
import stat
from pathlib import Path

import pytest

from bot.config import ConfigError, Settings, Ward
from bot.keyfile import load_secret_key

GENERATED = "Generated a new secret key in %s; back it up: "


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings whose data_dir does not exist yet, with no secret in the environment."""
    monkeypatch.delenv("HOMTHU_SECRET_KEY", raising=False)
    ward = Ward(code="dong-cuong", name="Phường Đông Cương", officer_chat_id=-1, areas=["KP 1"])
    settings = Settings(wards=[ward])
    settings.bot.data_dir = tmp_path / "data"
    return settings


def test_first_start_creates_a_private_key_and_warns_once(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    key_path = settings.bot.data_dir / "secret.key"

    with caplog.at_level(logging.WARNING, logger="bot.keyfile"):
        key = load_secret_key(settings)
        again = load_secret_key(settings)

    assert len(key) == 32
    assert again == key
    assert base64.b64decode(key_path.read_bytes()) == key
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert [record.msg for record in caplog.records] == [
        GENERATED + "without it receipts and contact links cannot be read."
    ]
    assert caplog.records[0].args == (key_path,)


def test_environment_key_wins_over_the_file(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_secret_key(settings)
    monkeypatch.setenv("HOMTHU_SECRET_KEY", "é" * 32)

    from_env = Settings(wards=settings.wards)

    assert load_secret_key(from_env) == ("é" * 32).encode()


def test_key_file_readable_by_others_is_refused(settings: Settings) -> None:
    load_secret_key(settings)
    key_path = settings.bot.data_dir / "secret.key"
    os.chmod(key_path, 0o644)

    with pytest.raises(ConfigError) as caught:
        load_secret_key(settings)

    assert caught.value.lines == [
        f"{key_path}: permissions are 0644, wider than 0600; "
        f"run `chmod 600 {key_path}` so only the bot's user can read the key."
    ]


def test_key_created_by_another_process_first_is_used(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    theirs = bytes(range(32))
    key_path = settings.bot.data_dir / "secret.key"
    real_open = os.open

    def lose_the_race(path: str, flags: int, mode: int = 0o777) -> int:
        fd = real_open(path, flags, 0o600)
        os.write(fd, base64.b64encode(theirs))
        os.close(fd)
        return real_open(path, flags, mode)

    monkeypatch.setattr(os, "open", lose_the_race)

    with caplog.at_level(logging.WARNING, logger="bot.keyfile"):
        assert load_secret_key(settings) == theirs

    assert key_path.exists()
    assert caplog.records == []


def test_damaged_key_file_is_refused(settings: Settings) -> None:
    settings.bot.data_dir.mkdir()
    key_path = settings.bot.data_dir / "secret.key"
    key_path.write_bytes(b"not base64!")
    key_path.chmod(0o600)

    with pytest.raises(ConfigError) as caught:
        load_secret_key(settings)

    assert caught.value.lines[0].startswith(f"{key_path}: is not a valid key file")
