"""The settings schema: every section of config.toml, validated, for every layer to read.

Loading the file, the environment overrides and the one-line error messages live in
bot/config.py; this module only says what a valid configuration is.
"""

import re
import unicodedata
from datetime import time
from pathlib import Path
from typing import Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from storage.models import Category

ENV_PREFIX: Final = "HOMTHU_"
TOKEN_ENV: Final = "TELEGRAM_BOT_TOKEN"
WEBHOOK_SECRET_ENV: Final = "TELEGRAM_WEBHOOK_SECRET"
# What Telegram accepts as a webhook's secret_token (Bot API, setWebhook).
_WEBHOOK_SECRET: Final = re.compile(r"[A-Za-z0-9_-]{1,256}")
SECRET_KEY_ENV: Final = "HOMTHU_SECRET_KEY"
ZALO_OA_APP_SECRET_ENV: Final = "ZALO_OA_APP_SECRET"
ZALO_OA_SECRET_KEY_ENV: Final = "ZALO_OA_SECRET_KEY"
ZALO_OA_REFRESH_TOKEN_ENV: Final = "ZALO_OA_REFRESH_TOKEN"
ZALO_BOT_TOKEN_ENV: Final = "ZALO_BOT_TOKEN"
ZALO_BOT_WEBHOOK_SECRET_ENV: Final = "ZALO_BOT_WEBHOOK_SECRET"
MIN_SECRET_KEY_CHARS: Final = 32
DATABASE_SCHEMES: Final = ("sqlite+aiosqlite://", "postgresql+asyncpg://")
LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

_WARD_CODE: Final = re.compile(r"[a-z0-9][a-z0-9-]{0,23}")
# The database keeps an area's name in 120 characters (tips, subscriptions, broadcasts).
AREA_CHARS: Final = 120
_PHONE: Final = re.compile(r"[0-9 +.-]*[0-9][0-9 +.-]*")


class BotSection(BaseModel):
    """How the bot speaks, which clock it reads and where it keeps its files."""

    model_config = ConfigDict(extra="forbid")

    language: Literal["vi", "en"] = "vi"
    timezone: str = "Asia/Ho_Chi_Minh"
    data_dir: Path = Path("data")
    log_level: str = "INFO"
    # On SIGTERM: how long turns, sends and jobs in progress may take before they are cut.
    stop_seconds: float = Field(default=20, gt=0, le=600)

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
    # "webhook": Telegram posts updates to [webhook] public_url + "/telegram".
    mode: Literal["polling", "webhook"] = "polling"


class WebhookSection(BaseModel):
    """The one HTTP server for every webhook, /healthz and /metrics, behind a reverse proxy."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(default="127.0.0.1", min_length=1)
    # 0 picks a free port, which tests use.
    port: int = Field(default=8081, ge=0, le=65535)
    # The https:// address the reverse proxy serves this server at; platforms post there.
    public_url: str = ""
    # A Telegram update is a few kilobytes; anything far bigger is refused before it is read.
    max_body_bytes: int = Field(default=1_048_576, ge=1024, le=64 * 1_048_576)

    @field_validator("public_url")
    @classmethod
    def _https(cls, value: str) -> str:
        if value and not value.startswith("https://"):
            raise ValueError("is not an https:// address")
        return value.rstrip("/")


class ZaloOASection(BaseModel):
    """The ward's Zalo Official Account (Open API v3); its secrets come from the environment."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    api_url: str = "https://openapi.zalo.me"
    oauth_url: str = "https://oauth.zaloapp.com"
    app_id: str = ""
    oa_id: str = ""
    # Zalo allows about 4,000 calls a minute per app; sends are paced well below that.
    rate_per_second: float = Field(default=10, gt=0, le=60)

    @field_validator("api_url", "oauth_url")
    @classmethod
    def _no_slash(cls, value: str) -> str:
        return value.rstrip("/")


class ZaloBotSection(BaseModel):
    """The Zalo Bot Platform bot; its token and webhook secret come from the environment."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    base_url: str = "https://bot-api.zaloplatforms.com"
    # "webhook": Zalo posts to [webhook] public_url + "/zalo/bot"; "polling": getUpdates.
    mode: Literal["webhook", "polling"] = "webhook"
    rate_per_second: float = Field(default=1, gt=0, le=30)

    @field_validator("base_url")
    @classmethod
    def _no_slash(cls, value: str) -> str:
        return value.rstrip("/")


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
    webhook: WebhookSection = WebhookSection()
    zalo_oa: ZaloOASection = ZaloOASection()
    zalo_bot: ZaloBotSection = ZaloBotSection()
    wards: list[Ward] = Field(min_length=1)
    telegram_bot_token: SecretStr | None = Field(default=None, validation_alias=TOKEN_ENV)
    telegram_webhook_secret: SecretStr | None = Field(
        default=None, validation_alias=WEBHOOK_SECRET_ENV
    )
    secret_key: SecretStr | None = Field(default=None, validation_alias=SECRET_KEY_ENV)
    zalo_oa_app_secret: SecretStr | None = Field(
        default=None, validation_alias=ZALO_OA_APP_SECRET_ENV
    )
    zalo_oa_secret_key: SecretStr | None = Field(
        default=None, validation_alias=ZALO_OA_SECRET_KEY_ENV
    )
    # Read at the first start only; after that the rotating pair lives in the database.
    zalo_oa_refresh_token: SecretStr | None = Field(
        default=None, validation_alias=ZALO_OA_REFRESH_TOKEN_ENV
    )
    zalo_bot_token: SecretStr | None = Field(default=None, validation_alias=ZALO_BOT_TOKEN_ENV)
    zalo_bot_webhook_secret: SecretStr | None = Field(
        default=None, validation_alias=ZALO_BOT_WEBHOOK_SECRET_ENV
    )

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

    @field_validator("telegram_webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _WEBHOOK_SECRET.fullmatch(value.get_secret_value()):
            raise ValueError("is not 1 to 256 letters, digits, _ or -")
        return value

    def ward(self, code: str) -> Ward:
        """Return the ward with this code; KeyError if there is none."""
        for ward in self.wards:
            if ward.code == code:
                return ward
        raise KeyError(code)
