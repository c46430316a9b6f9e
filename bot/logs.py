"""Log hygiene: one stderr handler, the token redacted, chatty libraries kept quiet."""

import logging
import sys
import traceback
from collections.abc import Iterable
from typing import Final
from urllib.parse import quote

LOG_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REDACTED: Final = "<redacted>"
HANDLER_NAME: Final = "homthu"
# These log request URLs (which carry the bot token) or full updates and SQL parameters
# (user ids, tip text) at INFO or DEBUG; Pillow logs every EXIF tag, GPS position included.
QUIET_LOGGERS: Final = (
    "PIL",
    "httpx",
    "httpcore",
    "hpack",
    "telegram",
    "telegram.ext",
    "apscheduler",
    "aiosqlite",
    "asyncio",
    "aiohttp.access",
    "sqlalchemy.engine",
)
# Libraries whose log arguments or exception messages can carry a Telegram update, a request
# URL or SQL parameters: their records pass as the fixed template only, whatever the level.
TEMPLATE_ONLY: Final = (
    "telegram",
    "httpx",
    "httpcore",
    "hpack",
    "h2",
    "asyncio",
    "aiosqlite",
    "asyncpg",
    "sqlalchemy",
    "aiohttp",
)


def _from_library(name: str) -> bool:
    return any(name == lib or name.startswith(f"{lib}.") for lib in TEMPLATE_ONLY)


def _bare_exception(error: BaseException) -> str:
    """Return an exception as its class and frames: its message can quote an update."""
    frames = "".join(traceback.format_tb(error.__traceback__))
    return f"Traceback (most recent call last):\n{frames}{type(error).__name__}"


def _variants(secret: str) -> set[str]:
    # A token may appear percent-encoded inside a URL (its colon as %3A or %3a), or only its
    # secret half after the bot's public id.
    encoded = quote(secret, "")
    forms = {secret, encoded, encoded.replace("%3A", "%3a")}
    _, colon, half = secret.partition(":")
    if colon and len(half) >= 16:
        forms.add(half)
    return forms


class RedactingFilter(logging.Filter):
    """Replace secrets in the message, exception text and stack before any formatter sees it.

    Records from the libraries in TEMPLATE_ONLY keep only the first line of their message
    template, without its arguments, and their exception without its message.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        variants = {form for secret in secrets if secret for form in _variants(secret)}
        # Longest first, so a secret that contains another is replaced whole.
        self._secrets = sorted(variants, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place so every later handler gets the redacted text too."""
        if _from_library(record.name):
            record.msg = str(record.msg).split("\n", 1)[0]
            record.args = None
            if record.exc_info and record.exc_info[1] is not None:
                record.exc_text = _bare_exception(record.exc_info[1])
            record.stack_info = None
        if not self._secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:
            # logging's own error report would print msg and args raw; print them redacted.
            message = f"{record.msg} (unformattable arguments: {record.args!r})"
        record.msg = self._redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self._redact(record.stack_info)
        return True

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text


def setup_logging(level: str, *, secrets: Iterable[str] = ()) -> None:
    """Send logs to stderr at this level; calling again replaces the handler, never adds one."""
    level_number = logging.getLevelNamesMapping()[level.upper()]
    root = logging.getLogger()
    for handler in [handler for handler in root.handlers if handler.name == HANDLER_NAME]:
        root.removeHandler(handler)
        handler.close()
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(RedactingFilter(secrets))
    root.addHandler(handler)
    root.setLevel(level_number)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(level_number, logging.WARNING))
