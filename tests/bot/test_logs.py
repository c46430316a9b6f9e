"""Log hygiene: the token never reaches stderr, chatty libraries stay quiet."""

import logging
from collections.abc import Iterator

import pytest

from bot.logs import HANDLER_NAME, QUIET_LOGGERS, setup_logging

TOKEN = "123456789:AAEexampleTokenDoNotLeak"


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Put the root handlers and logger levels back after each test."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, saved in levels.items():
        logging.getLogger(name).setLevel(saved)


def test_token_is_redacted_in_messages_and_tracebacks(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("DEBUG", secrets=[TOKEN])
    log = logging.getLogger("bot.channels.telegram")

    log.info("Polling https://api.telegram.org/bot%s/getUpdates", TOKEN)
    try:
        raise RuntimeError(f"POST https://api.telegram.org/bot{TOKEN}/sendMessage failed")
    except RuntimeError:
        log.exception("Could not send to %s", "the officers' group")
    log.info("Encoded form bot%s", TOKEN.replace(":", "%3A"))

    err = capsys.readouterr().err
    assert TOKEN not in err
    assert "AAEexampleTokenDoNotLeak" not in err
    assert "https://api.telegram.org/bot<redacted>/getUpdates" in err
    assert "RuntimeError: POST https://api.telegram.org/bot<redacted>/sendMessage failed" in err
    assert "Could not send to the officers' group" in err
    assert " INFO bot.channels.telegram: Polling " in err


def test_httpx_info_is_silenced_even_at_debug(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("DEBUG")

    logging.getLogger("httpx").info("HTTP Request: POST https://api.telegram.org/bot1:x/getMe")
    logging.getLogger("telegram.ext.Updater").debug("Got update {'from': {'id': 42}}")
    logging.getLogger("bot.app").debug("Started")

    err = capsys.readouterr().err
    assert "HTTP Request" not in err
    assert "Got update" not in err
    assert "DEBUG bot.app: Started" in err


def test_calling_twice_keeps_one_handler(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("INFO", secrets=[TOKEN])
    setup_logging("WARNING", secrets=[TOKEN])

    ours = [handler for handler in logging.getLogger().handlers if handler.name == HANDLER_NAME]
    assert len(ours) == 1
    logging.getLogger("bot.app").warning("Token %s", TOKEN)
    err = capsys.readouterr().err
    assert err.count("Token <redacted>") == 1
    assert logging.getLogger().level == logging.WARNING


def test_libraries_forced_to_debug_log_their_templates_only(
    capsys: pytest.CaptureFixture[str],
) -> None:
    setup_logging("DEBUG", secrets=[TOKEN])
    for name in ("telegram", "httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    update = {"from": {"id": 5550001234, "username": "canary_user"}, "text": "Canary-words"}

    logging.getLogger("telegram.ext.ExtBot").critical("Received data was %r", [update])
    logging.getLogger("httpx").info("HTTP Request: %s %s", "POST", "http://x/bot1:abc/getMe")
    logging.getLogger("asyncio").error("Task exception\nfuture: <Task exception=%s>", update)
    try:
        raise ValueError(f"cannot read {update}")
    except ValueError as error:
        logging.getLogger("telegram.ext.Updater").exception("Polling failed", exc_info=error)
    logging.getLogger("bot.app").info("Canary-ours %s", "kept")

    err = capsys.readouterr().err
    for secret in ("5550001234", "canary_user", "Canary-words", "bot1:abc"):
        assert secret not in err
    assert "CRITICAL telegram.ext.ExtBot: Received data was %r" in err
    assert "INFO httpx: HTTP Request: %s %s" in err
    assert "ERROR asyncio: Task exception\n" in err
    assert "ERROR telegram.ext.Updater: Polling failed\nTraceback" in err
    assert "\nValueError\n" in err
    assert "Canary-ours kept" in err


@pytest.mark.parametrize(
    "form",
    [TOKEN.replace(":", "%3A"), TOKEN.replace(":", "%3a"), "AAEexampleTokenDoNotLeak"],
    ids=["upper-encoded", "lower-encoded", "secret-half"],
)
def test_every_form_of_the_token_is_redacted(
    form: str, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_logging("DEBUG", secrets=[TOKEN])
    logging.getLogger("bot.app").info("url /bot%s/getMe", form)
    err = capsys.readouterr().err
    assert "url /bot<redacted>/getMe" in err or "url /bot123456789:<redacted>/getMe" in err
    assert "AAEexampleTokenDoNotLeak" not in err
