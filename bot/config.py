"""One typed settings object: config.toml, overridden by HOMTHU_* environment variables."""

import difflib
import json
import os
import tomllib
from pathlib import Path
from typing import Any, Final, get_args

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from pydantic_settings import SettingsError

# The schema lives below the core so that handlers/ and broadcasts/ can read it; bot/ code
# and the tests keep importing it from here.
from handlers.settings import (
    AREA_CHARS,
    DATABASE_SCHEMES,
    ENV_PREFIX,
    LOG_LEVELS,
    MIN_SECRET_KEY_CHARS,
    PRIORITIES,
    SECRET_KEY_ENV,
    TOKEN_ENV,
    WEBHOOK_SECRET_ENV,
    BotSection,
    BroadcastsSection,
    DatabaseSection,
    Hotline,
    KeywordRule,
    LimitsSection,
    PlaygroundSection,
    SecuritySection,
    Settings,
    SpamRules,
    TelegramSection,
    TriageSection,
    Ward,
    WebhookSection,
)

__all__ = [
    "AREA_CHARS",
    "CONFIG_ENV",
    "DATABASE_SCHEMES",
    "DEFAULT_CONFIG_PATH",
    "ENV_PREFIX",
    "LOG_LEVELS",
    "MIN_SECRET_KEY_CHARS",
    "PRIORITIES",
    "SECRET_KEY_ENV",
    "TOKEN_ENV",
    "WEBHOOK_SECRET_ENV",
    "BotSection",
    "BroadcastsSection",
    "ConfigError",
    "DatabaseSection",
    "Hotline",
    "KeywordRule",
    "LimitsSection",
    "PlaygroundSection",
    "SecuritySection",
    "Settings",
    "SpamRules",
    "TelegramSection",
    "TriageSection",
    "Ward",
    "WebhookSection",
    "load_settings",
    "token_missing_message",
]

CONFIG_ENV: Final = "HOMTHU_CONFIG"
DEFAULT_CONFIG_PATH: Final = Path("config.toml")

# Keys someone might paste a secret under; each maps to the variable it belongs in.
_SECRET_KEYS: Final = {
    "telegram_bot_token": TOKEN_ENV,
    "bot_token": TOKEN_ENV,
    "token": TOKEN_ENV,
    "secret_key": SECRET_KEY_ENV,
    "homthu_secret_key": SECRET_KEY_ENV,
}
# Error locations whose input must never be echoed: secrets, and URLs that carry passwords.
_HIDDEN_INPUTS: Final = frozenset(
    {
        "telegram_bot_token",
        TOKEN_ENV,
        "secret_key",
        SECRET_KEY_ENV,
        "database.url",
        "telegram_webhook_secret",
        WEBHOOK_SECRET_ENV,
    }
)
_ENV_ONLY: Final = {
    "telegram_bot_token": TOKEN_ENV,
    TOKEN_ENV: TOKEN_ENV,
    "secret_key": SECRET_KEY_ENV,
    SECRET_KEY_ENV: SECRET_KEY_ENV,
    "telegram_webhook_secret": WEBHOOK_SECRET_ENV,
    WEBHOOK_SECRET_ENV: WEBHOOK_SECRET_ENV,
}

_NEW_WARD_HINT: Final = "add a [[wards]] table for your ward, as in the example config.toml"
# Fixes by key path (list indices dropped); "path/error_type" wins over "path".
_HINTS: Final = {
    "bot.language": 'use "vi" for Vietnamese or "en" for English',
    "bot.timezone": 'use an IANA time zone name such as "Asia/Ho_Chi_Minh"',
    "bot.log_level": "use one of " + ", ".join(LOG_LEVELS),
    "telegram.poll_timeout": "use a number of seconds from 1 to 60",
    "database.url": (
        'use "sqlite+aiosqlite:///data/homthu.db" '
        'or "postgresql+asyncpg://user:password@host/dbname"'
    ),
    "playground.port": "use a free TCP port from 1 to 65535, e.g. 8080",
    "telegram.mode": 'use "polling" (the default) or "webhook"',
    "webhook.port": "use a free TCP port from 1 to 65535, e.g. 8081",
    "webhook.public_url": (
        'use the https:// address your reverse proxy serves, e.g. "https://bot.example.org"'
    ),
    "webhook.max_body_bytes": "use a number of bytes, e.g. 1048576",
    WEBHOOK_SECRET_ENV: (
        "set it to 32 or more random letters, digits, _ or -, e.g. the output of "
        "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
    ),
    "limits.max_attachments": (
        "use a number from 1 to 10 (Telegram sends at most 10 files in one album)"
    ),
    "broadcasts.schedule": 'use a cron expression such as "0 8 1 * *" (08:00 on the 1st)',
    "broadcasts.quiet_hours": 'use "21:00-07:00", or "" to send at any hour',
    "broadcasts.rate_per_second": "use a number of messages per second from 1 to 1000",
    "broadcasts.progress_seconds": "use a number of seconds above 0, e.g. 5",
    "wards/missing": _NEW_WARD_HINT,
    "wards/too_short": _NEW_WARD_HINT,
    "wards/value_error": "give each [[wards]] table its own code",
    "wards.code": (
        "use 1 to 24 lowercase letters, digits or dashes, "
        'starting with a letter or digit, e.g. "dong-cuong"'
    ),
    "wards.name": 'write the ward\'s name, e.g. "Phường Đông Cương"',
    "wards.officer_chat_id": (
        "set it to the id of the officers' Telegram group (a negative number)"
    ),
    "wards.officers": "list the officers' Telegram user ids as whole numbers, e.g. [123456789]",
    "wards.supervisors": (
        "list the unit leaders' Telegram user ids as whole numbers, e.g. [123456789]"
    ),
    "wards.areas": (
        'list each khu phố, thôn or tổ dân phố exactly once, e.g. ["Khu phố 1", "Khu phố 2"]'
    ),
    "wards.hotlines.name": 'name the line, e.g. "Cảnh sát 113"',
    "wards.hotlines.phone": 'use digits, spaces, "+", dots and dashes only, e.g. "113"',
    TOKEN_ENV: "set it to the token @BotFather gave you",
    SECRET_KEY_ENV: (
        f"set it to at least {MIN_SECRET_KEY_CHARS} random characters, e.g. the output of "
        "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`, "
        "or unset it to use the key file in data_dir"
    ),
}
_WHAT: Final = {
    "missing": "is missing",
    "extra_forbidden": "is not a known key",
    "int_parsing": "is not a whole number",
    "int_from_float": "is not a whole number",
    "int_type": "is not a whole number",
    "string_type": "is not text",
    "list_type": "is not a list",
    "dict_type": "is not a table",
    "model_type": "is not a table",
    "literal_error": "is not one of the allowed values",
}


class ConfigError(Exception):
    """The configuration cannot be used; each line names one problem and its fix."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__(lines)
        self.lines = lines

    def __str__(self) -> str:
        return "\n".join(self.lines)


def load_settings(path: Path | None = None) -> Settings:
    """Read the TOML file, apply environment overrides and validate everything at once."""
    if path is None:
        path = Path(os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG_PATH)
    try:
        with path.open("rb") as file:
            data = tomllib.load(file)
    except FileNotFoundError:
        raise ConfigError(
            [
                f"{path}: file not found; copy the example config.toml from the repository "
                f"there, or set {CONFIG_ENV} to the path of your configuration file."
            ]
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            [
                f"{path}: TOML syntax error: {exc}; fix that line "
                '(text goes in double quotes, e.g. name = "Phường Đông Cương").'
            ]
        ) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: is not valid UTF-8; save the file as UTF-8."]) from None
    except OSError as exc:
        raise ConfigError(
            [f"{path}: cannot be read ({exc.strerror}); check the path and its permissions."]
        ) from None

    lines = _pop_secrets(data, path)
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        lines += [_error_line(error, path) for error in exc.errors()]
    except SettingsError as exc:
        lines.append(f"environment: {exc}; fix or unset that variable.")
    else:
        lines += _webhook_lines(settings, path)
    if lines:
        raise ConfigError(lines)
    return settings


def _webhook_lines(settings: Settings, path: Path) -> list[str]:
    """What webhook mode needs beyond each value being valid on its own."""
    if settings.telegram.mode != "webhook":
        return []
    lines = []
    if not settings.webhook.public_url:
        lines.append(
            f'{path}: webhook.public_url: is empty, and telegram.mode is "webhook"; '
            f"{_HINTS['webhook.public_url']}."
        )
    if settings.telegram_webhook_secret is None:
        lines.append(
            f"environment variable {WEBHOOK_SECRET_ENV}: is missing, and telegram.mode is "
            f'"webhook"; {_HINTS[WEBHOOK_SECRET_ENV]}.'
        )
    return lines


def token_missing_message() -> str:
    """Explain, step by step, how to get a bot token and the officers' group id."""
    return f"""\
{TOKEN_ENV} is not set, so the bot cannot connect to Telegram.
1. In Telegram, open a chat with @BotFather and send /newbot; pick a name and a
   username ending in "bot". BotFather replies with a token like 123456789:AAE...
2. Still in @BotFather, send /setprivacy, choose your bot and then Disable, so the
   bot sees the officers' replies in their group.
3. Add the bot to the officers' Telegram group (remove and re-add it if it was
   already there) and send any message in the group.
4. Open https://api.telegram.org/bot<token>/getUpdates in a browser: the group's id
   is the negative number after "chat":{{"id":. Put it in config.toml as the ward's
   officer_chat_id.
5. Give the token to the bot and start it:
     export {TOKEN_ENV}='<token>'
     make run
Keep the token secret: whoever has it controls the bot."""


def _pop_secrets(data: dict[str, Any], path: Path) -> list[str]:
    """Remove secrets written in the file, returning one error line for each."""
    lines = []
    tables: list[tuple[str, dict[str, Any]]] = [("", data)]
    tables += [(f"{name}.", table) for name, table in data.items() if isinstance(table, dict)]
    for prefix, table in tables:
        for key in [key for key in table if key.lower() in _SECRET_KEYS]:
            del table[key]
            lines.append(
                f"{path}: {prefix}{key}: is a secret and must not be written in the file; "
                f"delete it and set the environment variable {_SECRET_KEYS[key.lower()]} instead."
            )
    return lines


def _error_line(error: ErrorDetails, path: Path) -> str:
    """Turn one pydantic error into one line: where, which key, what is wrong, the fix."""
    loc = error["loc"]
    key = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)[1:]
    generic = ".".join(str(part) for part in loc if isinstance(part, str))
    secret_env = _ENV_ONLY.get(generic)
    env_name = secret_env or _env_override(loc)
    what = _describe(error, show_input=generic not in _HIDDEN_INPUTS)
    kind = error["type"]
    hint = (
        _HINTS.get(f"{generic}/{kind}")
        or _HINTS.get(secret_env or generic)
        or _fallback_hint(loc, kind)
    )
    where = f"environment variable {env_name}" if env_name else f"{path}: {key}"
    return f"{where}: {what}; {hint}."


def _describe(error: ErrorDetails, *, show_input: bool) -> str:
    """Say what is wrong with the value, quoting it when that is safe and short."""
    kind = error["type"]
    ctx = error.get("ctx", {})
    value = error["input"]
    if kind in ("missing", "extra_forbidden"):
        return _WHAT[kind]
    if kind == "value_error":
        what = str(ctx["error"])
    elif kind == "too_short" and value == []:
        what = "is empty"
    elif kind == "greater_than_equal":
        what = f"is below the minimum of {ctx['ge']}"
    elif kind == "less_than_equal":
        what = f"is above the maximum of {ctx['le']}"
    elif kind in _WHAT:
        what = _WHAT[kind]
    else:
        what = f"is not accepted ({error['msg'][:1].lower()}{error['msg'][1:]})"
    if show_input and isinstance(value, str | int | float):
        return f"{json.dumps(value, ensure_ascii=False)} {what}"
    return what


def _env_override(loc: tuple[int | str, ...]) -> str | None:
    """Name the HOMTHU_* variable that supplied the value at loc, if one did."""
    names: list[str] = []
    for part in loc:
        if isinstance(part, int):
            break
        names.append(part)
    by_upper = {name.upper(): name for name in os.environ}
    for end in range(len(names), 0, -1):
        found = by_upper.get(ENV_PREFIX + "__".join(names[:end]).upper())
        if found:
            return found
    return None


def _fallback_hint(loc: tuple[int | str, ...], kind: str) -> str:
    """Give a fix for keys without a written hint, from the schema itself."""
    parent = _model_at(loc[:-1])
    name = loc[-1]
    if parent is None or not isinstance(name, str):
        return "fix the value as in the example config.toml"
    if kind == "extra_forbidden":
        known = [field for field in parent.model_fields if field not in _ENV_ONLY]
        close = difflib.get_close_matches(name, known, n=1)
        guess = f' (did you mean "{close[0]}"?)' if close else ""
        return f"check the spelling{guess} or remove it"
    field = parent.model_fields.get(name)
    if field is None or field.is_required():
        return "fix the value as in the example config.toml"
    if isinstance(field.default, str | int | Path):
        default = field.default if isinstance(field.default, int) else str(field.default)
        shown = json.dumps(default, ensure_ascii=False)
        return f"fix the value, or delete the line to use the default {shown}"
    return "fix the value, or delete it to use the default"


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """Find the model class that validates the value at loc."""
    model: type[BaseModel] | None = Settings
    for part in loc:
        if isinstance(part, int):
            continue
        if model is None or part not in model.model_fields:
            return None
        annotation = model.model_fields[part].annotation
        model = next(
            (
                candidate
                for candidate in (annotation, *get_args(annotation))
                if isinstance(candidate, type) and issubclass(candidate, BaseModel)
            ),
            None,
        )
    return model
