"""The secret key that seals receipts and contact links: from the environment or data_dir."""

import base64
import binascii
import logging
import os
import secrets
import stat
import time
from pathlib import Path
from typing import Final

from bot.config import ConfigError, Settings

KEY_FILE_NAME: Final = "secret.key"
KEY_BYTES: Final = 32
# A process that lost the creation race may open the file before the winner has written it.
_RACE_WAIT_SECONDS: Final = 1.0
_RACE_POLL_SECONDS: Final = 0.02

logger = logging.getLogger(__name__)


def load_secret_key(settings: Settings) -> bytes:
    """Return the key from HOMTHU_SECRET_KEY, else from data_dir, creating it on first start."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().encode()
    path = settings.bot.data_dir / KEY_FILE_NAME
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    settings.bot.data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(KEY_BYTES)
    try:
        # O_EXCL with 0o600 at creation: the key is never readable by others, not even briefly.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_key(path, wait_for_writer=True)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(base64.b64encode(key) + b"\n")
            file.flush()
            os.fsync(file.fileno())
    except BaseException:
        # An empty key file would block every later start; leave nothing behind.
        path.unlink(missing_ok=True)
        raise
    logger.warning(
        "Generated a new secret key in %s; back it up: "
        "without it receipts and contact links cannot be read.",
        path,
    )
    return key


def _read_key(path: Path, *, wait_for_writer: bool = False) -> bytes:
    """Read and check a key file, refusing one that others could read."""
    deadline = time.monotonic() + (_RACE_WAIT_SECONDS if wait_for_writer else 0.0)
    while True:
        with path.open("rb") as file:
            mode = stat.S_IMODE(os.fstat(file.fileno()).st_mode)
            content = file.read()
        if mode & ~0o600:
            raise ConfigError(
                [
                    f"{path}: permissions are {mode:04o}, wider than 0600; "
                    f"run `chmod 600 {path}` so only the bot's user can read the key."
                ]
            )
        if content.strip() or time.monotonic() >= deadline:
            break
        time.sleep(_RACE_POLL_SECONDS)
    try:
        key = base64.b64decode(content.strip(), validate=True)
    except binascii.Error:
        key = b""
    if len(key) != KEY_BYTES:
        raise ConfigError(
            [
                f"{path}: is not a valid key file ({KEY_BYTES} bytes in base64); restore it "
                "from your backup, or delete it only if no receipts were ever given out."
            ]
        )
    return key
