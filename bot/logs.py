"""Log hygiene: one stderr handler, the token redacted, chatty libraries kept quiet."""

import logging
import sys
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


class RedactingFilter(logging.Filter):
    """Replace secrets in the message, exception text and stack before any formatter sees it."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        # A token may also appear percent-encoded inside a URL, e.g. its colon as %3A.
        variants = {form for secret in secrets if secret for form in (secret, quote(secret, ""))}
        # Longest first, so a secret that contains another is replaced whole.
        self._secrets = sorted(variants, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place so every later handler gets the redacted text too."""
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
