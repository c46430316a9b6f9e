"""One typed settings object: config.toml, overridden by HOMTHU_* environment variables."""

import difflib
import json
import os
import re
import tomllib
import unicodedata
from datetime import time
from pathlib import Path
from typing import Any, Final, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_core import ErrorDetails
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from storage.models import Category

CONFIG_ENV: Final = "HOMTHU_CONFIG"
DEFAULT_CONFIG_PATH: Final = Path("config.toml")
ENV_PREFIX: Final = "HOMTHU_"
TOKEN_ENV: Final = "TELEGRAM_BOT_TOKEN"
SECRET_KEY_ENV: Final = "HOMTHU_SECRET_KEY"
MIN_SECRET_KEY_CHARS: Final = 32
DATABASE_SCHEMES: Final = ("sqlite+aiosqlite://", "postgresql+asyncpg://")
LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

_WARD_CODE: Final = re.compile(r"[a-z0-9][a-z0-9-]{0,23}")
# The database keeps an area's name in 120 characters (tips, subscriptions, broadcasts).
AREA_CHARS: Final = 120
_PHONE: Final = re.compile(r"[0-9 +.-]*[0-9][0-9 +.-]*")

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
    {"telegram_bot_token", TOKEN_ENV, "secret_key", SECRET_KEY_ENV, "database.url"}
)
_ENV_ONLY: Final = {
    "telegram_bot_token": TOKEN_ENV,
    TOKEN_ENV: TOKEN_ENV,
    "secret_key": SECRET_KEY_ENV,
    SECRET_KEY_ENV: SECRET_KEY_ENV,
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


class BotSection(BaseModel):
    """How the bot speaks, which clock it reads and where it keeps its files."""

    model_config = ConfigDict(extra="forbid")

    language: Literal["vi", "en"] = "vi"
    timezone: str = "Asia/Ho_Chi_Minh"
    data_dir: Path = Path("data")
    log_level: str = "INFO"

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("is not a known time zone") from None
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.upper() not in LOG_LEVELS:
            raise ValueError("is not a log level")
        return value.upper()

    @property
    def tz(self) -> ZoneInfo:
        """The ward's local time zone."""
        return ZoneInfo(self.timezone)


class TelegramSection(BaseModel):
    """Where the Bot API lives; a local Bot API server or the emulator can replace it."""

    model_config = ConfigDict(extra="forbid")

    base_url: str = "https://api.telegram.org/bot"
    base_file_url: str = "https://api.telegram.org/file/bot"
    poll_timeout: int = Field(default=30, ge=1, le=60)


class DatabaseSection(BaseModel):
    """Which database stores tips."""

    model_config = ConfigDict(extra="forbid")

    url: str = "sqlite+aiosqlite:///data/homthu.db"

    @field_validator("url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        if value.startswith(DATABASE_SCHEMES):
            return value
        scheme, separator, _ = value.partition("://")
        if not separator:
            raise ValueError("is not a database URL")
        raise ValueError(f'starts with "{scheme}://", which is not supported')


class PlaygroundSection(BaseModel):
    """Where the local playground page listens when the bot runs without a Telegram token."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(default="127.0.0.1", min_length=1)
    # 0 picks a free port, which tests use.
    port: int = Field(default=8080, ge=0, le=65535)


class LimitsSection(BaseModel):
    """Bounds that keep one resident from flooding the officers or the database."""

    model_config = ConfigDict(extra="forbid")

    max_attachments: int = Field(default=10, ge=1, le=10)
    max_text_chars: int = Field(default=8000, ge=1)
    max_place_chars: int = Field(default=300, ge=1)
    lookups_per_hour: int = Field(default=5, ge=1)
    draft_ttl_hours: int = Field(default=72, ge=1)
    # Per pseudonymous sender (a keyed hash of the chat, never the chat id).
    tips_per_hour: int = Field(default=5, ge=1)
    tips_per_day: int = Field(default=20, ge=1)
    messages_per_minute: int = Field(default=20, ge=1)


class SecuritySection(BaseModel):
    """How long what could identify a sender, or what they reported, is kept."""

    model_config = ConfigDict(extra="forbid")

    # Days after a tip is closed until the way back to its sender is deleted.
    contact_retention_days: int = Field(default=30, ge=0, le=3650)
    # Days after a tip is closed until its words, place and attachments are purged.
    retention_days: int = Field(default=365, ge=1, le=3650)


_QUIET_HOURS: Final = re.compile(
    r"(?P<start>([01][0-9]|2[0-3]):[0-5][0-9])-(?P<end>([01][0-9]|2[0-3]):[0-5][0-9])"
)


class BroadcastsSection(BaseModel):
    """When the monthly messages go out and how fast they are sent."""

    model_config = ConfigDict(extra="forbid")

    schedule: str = "0 8 1 * *"
    quiet_hours: str = "21:00-07:00"
    rate_per_second: float = Field(default=25, ge=1, le=1000)
    paid: bool = False
    progress_seconds: float = Field(default=5, gt=0, le=3600)
    # A month ("2026-12") pinned to a pack message key instead of the next unsent one.
    pinned: dict[str, str] = {}

    @field_validator("pinned")
    @classmethod
    def _months(cls, value: dict[str, str]) -> dict[str, str]:
        for month in value:
            if not re.fullmatch(r"20[0-9]{2}-(0[1-9]|1[0-2])", month):
                raise ValueError(f'names "{month}", which is not a month written as YYYY-MM')
        return value

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        if len(value.split()) != 5:
            raise ValueError("is not a cron expression of five fields")
        try:
            CronTrigger.from_crontab(value)
        except ValueError as error:
            raise ValueError(f"is not a valid cron expression ({error})") from None
        return value

    @field_validator("quiet_hours")
    @classmethod
    def _time_range(cls, value: str) -> str:
        value = value.strip()
        match = _QUIET_HOURS.fullmatch(value)
        if value and (match is None or match["start"] == match["end"]):
            raise ValueError("is not a range of two different times as HH:MM-HH:MM")
        return value

    @property
    def quiet(self) -> tuple[time, time] | None:
        """The local start and end of the quiet hours, or None when they are off."""
        if not self.quiet_hours:
            return None
        start, end = self.quiet_hours.split("-")
        return time.fromisoformat(start), time.fromisoformat(end)


PRIORITIES: Final = ("urgent", "high", "normal", "low")
_FLAG_CODE: Final = re.compile(r"[a-z][a-z0-9_]{0,31}")
_CLOCK: Final = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")
_DEFAULT_CATEGORY_PRIORITY: Final = {
    Category.DEALING.value: "high",
    Category.USE.value: "normal",
    Category.DEN.value: "high",
    Category.PSYCHOSIS.value: "urgent",
    Category.PLANTS.value: "normal",
    Category.DISGUISED.value: "normal",
    Category.DRIVING.value: "high",
    Category.SCHOOL.value: "high",
    Category.OTHER.value: "low",
}


class KeywordRule(BaseModel):
    """Words or phrases that, found in a tip, flag it and raise its priority."""

    model_config = ConfigDict(extra="forbid")

    words: list[str] = Field(min_length=1)
    flag: str
    priority: str

    @field_validator("words")
    @classmethod
    def _no_blank_words(cls, value: list[str]) -> list[str]:
        if any(not word.strip() for word in value):
            raise ValueError("contains an empty word")
        return value

    @field_validator("flag")
    @classmethod
    def _flag_shape(cls, value: str) -> str:
        # The flag is also a catalogue key (flag.<code>), so it must be a plain name.
        if not _FLAG_CODE.fullmatch(value):
            raise ValueError('is not a flag name of lowercase letters, digits and "_"')
        return value

    @field_validator("priority")
    @classmethod
    def _known_priority(cls, value: str) -> str:
        if value not in PRIORITIES:
            raise ValueError(f"is not a priority; use one of {', '.join(PRIORITIES)}")
        return value


class SpamRules(BaseModel):
    """What makes a tip look like spam; such tips are labelled, never dropped."""

    model_config = ConfigDict(extra="forbid")

    min_chars: int = Field(default=15, ge=0)


class TriageSection(BaseModel):
    """How new tips are prioritised and flagged, and how often officers are reminded."""

    model_config = ConfigDict(extra="forbid")

    category_priority: dict[str, str] = _DEFAULT_CATEGORY_PRIORITY
    keywords: list[KeywordRule] = [
        KeywordRule(
            words=[
                "ngáo đá",
                "loạn thần",
                "cầm dao",
                "cầm kiếm",
                "có súng",
                "đâm chém",
                "đe dọa giết",
                "đang đánh",
                "phóng hỏa",
                "bắt con tin",
            ],
            flag="danger_now",
            priority="urgent",
        ),
        KeywordRule(
            words=[
                "con dao",
                "dao găm",
                "dao phay",
                "dao bầu",
                "mã tấu",
                "thanh kiếm",
                "khẩu súng",
                "súng ngắn",
                "súng săn",
                "súng tự chế",
                "nổ súng",
                "giấu súng",
                "lựu đạn",
                "vũ khí",
            ],
            flag="weapon",
            priority="urgent",
        ),
        KeywordRule(
            words=["đang bán", "đang giao hàng", "đang giao dịch", "đang mua bán", "đang tụ tập"],
            flag="selling_now",
            priority="high",
        ),
        KeywordRule(
            words=[
                "học sinh",
                "sinh viên",
                "trường học",
                "cổng trường",
                "ký túc xá",
                "trẻ em",
                "vị thành niên",
            ],
            flag="school",
            priority="high",
        ),
    ]
    spam: SpamRules = SpamRules()
    urgent_remind_minutes: int = Field(default=15, ge=1, le=1440)
    digest_time: str = "07:30"
    block_days: int = Field(default=30, ge=1, le=365)
    duplicate_window_hours: int = Field(default=24, ge=1, le=720)

    @field_validator("category_priority")
    @classmethod
    def _known_categories(cls, value: dict[str, str]) -> dict[str, str]:
        known = [category.value for category in Category]
        for category, priority in value.items():
            if category not in known:
                raise ValueError(
                    f'names "{category}", which is not a tip category ({", ".join(known)})'
                )
            if priority not in PRIORITIES:
                raise ValueError(
                    f'gives "{category}" the priority "{priority}", '
                    f"which is not one of {', '.join(PRIORITIES)}"
                )
        # A table that names a few categories changes those; the rest keep their defaults.
        return {**_DEFAULT_CATEGORY_PRIORITY, **value}

    @field_validator("digest_time")
    @classmethod
    def _clock_time(cls, value: str) -> str:
        if not _CLOCK.fullmatch(value):
            raise ValueError('is not a time of day as HH:MM, e.g. "07:30"')
        return value

    @property
    def digest_at(self) -> time:
        """The local time of day the daily digest goes out."""
        return time.fromisoformat(self.digest_time)


class Hotline(BaseModel):
    """A phone line residents can call instead of writing."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    phone: str

    @field_validator("phone")
    @classmethod
    def _dialable(cls, value: str) -> str:
        if not _PHONE.fullmatch(value):
            raise ValueError("is not a phone number")
        return value


class Ward(BaseModel):
    """One ward or commune: one police unit, one officers' group, its residential areas."""

    model_config = ConfigDict(extra="forbid")

    code: str
    name: str = Field(min_length=1)
    officer_chat_id: int
    officers: list[int] = []
    supervisors: list[int] = []
    areas: list[str] = Field(min_length=1)
    hotlines: list[Hotline] = []

    @field_validator("code")
    @classmethod
    def _code_shape(cls, value: str) -> str:
        if not _WARD_CODE.fullmatch(value):
            raise ValueError("is not a valid ward code")
        return value

    @field_validator("officer_chat_id")
    @classmethod
    def _nonzero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("is not a chat id")
        return value

    @field_validator("areas")
    @classmethod
    def _distinct_areas(cls, value: list[str]) -> list[str]:
        seen: set[str] = set()
        for area in value:
            # Residents pick from these names, so two spellings of one area would split its tips.
            key = unicodedata.normalize("NFC", area).strip().casefold()
            if not key:
                raise ValueError("contains an empty name")
            if len(area) > AREA_CHARS:
                raise ValueError(f"names an area longer than {AREA_CHARS} characters")
            if key in seen:
                raise ValueError(f'lists "{area}" more than once')
            seen.add(key)
        return value


class Settings(BaseSettings):
    """Everything the bot needs to start, validated before it touches the network."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        env_ignore_empty=True,
        extra="forbid",
        validate_by_name=True,
        validate_by_alias=True,
    )

    bot: BotSection = BotSection()
    telegram: TelegramSection = TelegramSection()
    database: DatabaseSection = DatabaseSection()
    limits: LimitsSection = LimitsSection()
    triage: TriageSection = TriageSection()
    playground: PlaygroundSection = PlaygroundSection()
    broadcasts: BroadcastsSection = BroadcastsSection()
    security: SecuritySection = SecuritySection()
    wards: list[Ward] = Field(min_length=1)
    telegram_bot_token: SecretStr | None = Field(default=None, validation_alias=TOKEN_ENV)
    secret_key: SecretStr | None = Field(default=None, validation_alias=SECRET_KEY_ENV)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file's contents arrive as init arguments; the environment must win over them.
        return (env_settings, init_settings)

    @field_validator("wards")
    @classmethod
    def _distinct_codes(cls, value: list[Ward]) -> list[Ward]:
        seen: set[str] = set()
        for ward in value:
            if ward.code in seen:
                raise ValueError(f'uses the code "{ward.code}" for more than one ward')
            seen.add(ward.code)
        return value

    @field_validator("secret_key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_SECRET_KEY_CHARS:
            raise ValueError(
                f"has {len(value.get_secret_value())} characters, "
                f"fewer than {MIN_SECRET_KEY_CHARS}"
            )
        return value

    def ward(self, code: str) -> Ward:
        """Return the ward with this code; KeyError if there is none."""
        for ward in self.wards:
            if ward.code == code:
                return ward
        raise KeyError(code)


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
    if lines:
        raise ConfigError(lines)
    return settings


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
