"""Database tables: drafts, tips and what officers do with them, sealed contact links."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from storage.sealed import Sealed, SealedFloat, SealedJSON, SealedText


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware.

    SQLite keeps no time zone; without this, values read back naive and compare wrongly
    with the aware clock.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use timezone-aware UTC")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _timestamp(**kwargs: Any) -> Any:
    return Field(sa_type=UTCDateTime, **kwargs)


def _sealed(kind: type[Sealed], column: str, **kwargs: Any) -> Any:
    # Encrypted with the data key; "tips.text" binds the value to its column.
    return Field(sa_type=kind(column), **kwargs)


def _enum(kind: type[enum.StrEnum], **kwargs: Any) -> Any:
    # Stored as plain VARCHAR values ("dealing"), read back as the enum; no native DB enum,
    # so adding a category is a code change, not a schema migration.
    column = sa.Enum(
        kind, native_enum=False, length=16, values_callable=lambda k: [m.value for m in k]
    )
    return Field(sa_type=column, **kwargs)


class Category(enum.StrEnum):
    """What a tip is about: the categories the ward plans name."""

    DEALING = "dealing"
    USE = "use"
    DEN = "den"
    PSYCHOSIS = "psychosis"
    PLANTS = "plants"
    DISGUISED = "disguised"
    DRIVING = "driving"
    SCHOOL = "school"
    OTHER = "other"


class TipStatus(enum.StrEnum):
    """Where a tip stands in the officers' workflow."""

    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    VERIFYING = "verifying"
    REFERRED = "referred"
    RESOLVED = "resolved"
    UNFOUNDED = "unfounded"
    DUPLICATE = "duplicate"
    SPAM = "spam"


class AttachmentKind(enum.StrEnum):
    """The kinds of file a resident can attach."""

    PHOTO = "photo"
    VIDEO = "video"
    VOICE = "voice"
    AUDIO = "audio"
    DOCUMENT = "document"


# Drafts: one per chat, keyed by a keyed hash of the chat; deleted on submit or cancel.
class Draft(SQLModel, table=True):
    """The tip a resident is writing, with the step they are on."""

    __tablename__ = "drafts"

    chat_key: str = Field(primary_key=True, max_length=64)
    step: str = Field(max_length=32)
    data: dict[str, Any] = _sealed(SealedJSON, "drafts.data", default_factory=dict)
    version: int = Field(default=1)
    updated_at: datetime = _timestamp(index=True)


# Chat state: language and what free text is awaited when no draft is open.
class ChatState(SQLModel, table=True):
    """Per-chat preferences, keyed by the same keyed hash as drafts."""

    __tablename__ = "chat_states"

    chat_key: str = Field(primary_key=True, max_length=64)
    language: str | None = Field(default=None, max_length=8)
    # Sealed: "answer to tip 12" would link this chat's other rows (its subscription's area)
    # to a tip.
    awaiting: str | None = _sealed(SealedText, "chat_states.awaiting", default=None)
    updated_at: datetime = _timestamp()


# Tips: shared columns; nothing here identifies the sender. What the resident wrote is
# sealed; what statistics need (ward, category, area, status, priority, times) stays plain.
class TipBase(SQLModel):
    """What a resident reported."""

    ward_code: str = Field(index=True, max_length=24)
    category: Category = _enum(Category, index=True)
    area: str | None = Field(default=None, max_length=120)
    place: str | None = _sealed(SealedText, "tips.place", default=None)
    latitude: float | None = _sealed(SealedFloat, "tips.latitude", default=None)
    longitude: float | None = _sealed(SealedFloat, "tips.longitude", default=None)
    text: str = _sealed(SealedText, "tips.text")


# Tips as stored: the receipt only as a keyed hash; the card's place in the officers' group.
class Tip(TipBase, table=True):
    """A submitted tip."""

    __tablename__ = "tips"

    id: int | None = Field(default=None, primary_key=True)
    status: TipStatus = _enum(TipStatus, default=TipStatus.NEW, index=True)
    receipt_hash: str = Field(unique=True, max_length=64)
    attachment_count: int = Field(default=0)
    created_at: datetime = _timestamp(index=True)
    updated_at: datetime = _timestamp()
    card_message_id: str | None = Field(default=None, max_length=32)
    posted_at: datetime | None = _timestamp(default=None, nullable=True)
    priority: str = Field(default="normal", max_length=8, index=True)
    flags: list[dict[str, str]] = Field(default_factory=list, sa_type=sa.JSON)
    # A keyed hash of the sender's chat: links a sender's tips (spam, blocking), names nobody.
    sender_tag: str | None = Field(default=None, max_length=64, index=True)
    assignee_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    assignee_name: str | None = Field(default=None, max_length=128)
    claimed_at: datetime | None = _timestamp(default=None, nullable=True)
    closed_at: datetime | None = _timestamp(default=None, nullable=True)
    reminded_at: datetime | None = _timestamp(default=None, nullable=True)
    last_action: str | None = Field(default=None, max_length=200)
    # Bumped on every change; buttons carry it, so a button from an older card cannot act twice.
    card_version: int = Field(default=1)
    pinned: bool = Field(default=False)
    # Set when the retention job emptied the tip's words, place and attachments.
    purged_at: datetime | None = _timestamp(default=None, nullable=True)


# Tips as a resident sees them on lookup: status and times, nothing else.
class TipPublic(SQLModel):
    """The part of a tip its receipt holder is shown."""

    id: int
    status: TipStatus
    created_at: datetime
    updated_at: datetime


# Attachments: the channel's file handle, re-sent to the group by handle, never forwarded.
class TipAttachment(SQLModel, table=True):
    """One photo, video, voice note or file sent with a tip."""

    __tablename__ = "tip_attachments"

    id: int | None = Field(default=None, primary_key=True)
    tip_id: int = Field(foreign_key="tips.id", index=True, ondelete="CASCADE")
    position: int
    kind: AttachmentKind = _enum(AttachmentKind)
    # Sealed: with the bot's token, a file id fetches the resident's photo.
    file_id: str = _sealed(SealedText, "tip_attachments.file_id")
    file_name: str | None = _sealed(SealedText, "tip_attachments.file_name", default=None)
    mime_type: str | None = Field(default=None, max_length=128)
    posted_message_id: str | None = Field(default=None, max_length=32)


# Contact links: the only way back to the sender, sealed with the secret key.
class ContactLink(SQLModel, table=True):
    """How to reach the sender of a tip, readable only with the secret key."""

    __tablename__ = "contact_links"

    tip_id: int = Field(foreign_key="tips.id", primary_key=True, ondelete="CASCADE")
    sealed: bytes = Field(sa_type=sa.LargeBinary)
    created_at: datetime = _timestamp()


# Throttles: counters per keyed-hash sender and purpose, for abuse limits.
class Throttle(SQLModel, table=True):
    """How often a sender did something within the current window."""

    __tablename__ = "throttles"

    chat_key: str = Field(primary_key=True, max_length=64)
    scope: str = Field(primary_key=True, max_length=16)
    window_start: datetime = _timestamp()
    count: int = Field(default=0)


# Audit log: every officer action, append-only (the repositories only ever insert).
class TipEvent(SQLModel, table=True):
    """Who did what to a tip, when, and what it was before and after."""

    __tablename__ = "tip_events"

    id: int | None = Field(default=None, primary_key=True)
    tip_id: int = Field(foreign_key="tips.id", index=True, ondelete="CASCADE")
    at: datetime = _timestamp()
    actor_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    actor_name: str | None = Field(default=None, max_length=128)
    action: str = Field(max_length=24)
    before: str | None = Field(default=None, max_length=64)
    after: str | None = Field(default=None, max_length=64)
    # The words of a note or a question: sealed like the tip.
    detail: str | None = _sealed(SealedText, "tip_events.detail", default=None)


# The anonymous conversation between officers and the sender of a tip.
class TipMessage(SQLModel, table=True):
    """A question from an officer or an answer from the sender."""

    __tablename__ = "tip_messages"

    id: int | None = Field(default=None, primary_key=True)
    tip_id: int = Field(foreign_key="tips.id", index=True, ondelete="CASCADE")
    direction: str = Field(max_length=16)
    text: str = _sealed(SealedText, "tip_messages.text")
    at: datetime = _timestamp()
    officer_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    # Keyed hash of (sender's chat, question message): a reply to it finds the tip again.
    resident_ref: str | None = Field(default=None, max_length=64, unique=True)
    group_message_id: str | None = Field(default=None, max_length=32)
    # Keyed hash of the sender's chat while a question waits for them to write again (Zalo
    # lets an OA write only to someone who wrote in the last 7 days); cleared once delivered.
    held_for: str | None = Field(default=None, max_length=64, index=True)


# Force-reply prompts the bot put in an officers' group, waiting for the officer's text.
class GroupPrompt(SQLModel, table=True):
    """What an officer's reply to a bot prompt means: a question or a note on a tip."""

    __tablename__ = "group_prompts"

    group_chat: str = Field(primary_key=True, max_length=32)
    message_id: str = Field(primary_key=True, max_length=32)
    tip_id: int = Field(foreign_key="tips.id", index=True, ondelete="CASCADE")
    kind: str = Field(max_length=8)
    officer_id: int = Field(sa_type=sa.BigInteger)
    created_at: datetime = _timestamp()


# Blocks: a sender (by keyed-hash tag) who may not send tips until a date.
class SenderBlock(SQLModel, table=True):
    """A pseudonymous sender an officer blocked for spam."""

    __tablename__ = "sender_blocks"

    sender_tag: str = Field(primary_key=True, max_length=64)
    until: datetime = _timestamp()
    tip_id: int | None = Field(default=None, foreign_key="tips.id", ondelete="SET NULL")
    created_at: datetime = _timestamp()


# Officers' display names, learned when they act in their group (config holds only ids).
class Officer(SQLModel, table=True):
    """A ward officer as the group knows them."""

    __tablename__ = "officers"

    user_id: int = Field(
        primary_key=True, sa_type=sa.BigInteger, sa_column_kwargs={"autoincrement": False}
    )
    name: str = Field(max_length=128)
    seen_at: datetime = _timestamp()


class BroadcastStatus(enum.StrEnum):
    """Where a broadcast stands."""

    DRAFT = "draft"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    DONE = "done"
    CANCELLED = "cancelled"


class DeliveryStatus(enum.StrEnum):
    """Where one recipient's copy of a broadcast stands."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    UNSUBSCRIBED = "unsubscribed"


# Subscriptions: who receives the monthly messages. Never linked to any tip.
class Subscription(SQLModel, table=True):
    """A resident who asked for the monthly awareness messages, by area."""

    __tablename__ = "subscriptions"

    id: int | None = Field(default=None, primary_key=True)
    # The same keyed hash of the chat as drafts use: finds the row when they change it.
    chat_key: str = Field(max_length=64, unique=True)
    # Where to send, sealed with the secret key and bound to chat_key.
    sealed_chat: bytes = Field(sa_type=sa.LargeBinary)
    ward_code: str = Field(max_length=24, index=True)
    area: str | None = Field(default=None, max_length=120)
    language: str = Field(default="vi", max_length=8)
    active: bool = Field(default=True, index=True)
    created_at: datetime = _timestamp()
    ended_at: datetime | None = _timestamp(default=None, nullable=True)
    end_reason: str | None = Field(default=None, max_length=16)


# Broadcasts: one message to an audience, monthly from the pack or composed by a supervisor.
class Broadcast(SQLModel, table=True):
    """A message to send to subscribers, and how its delivery went."""

    __tablename__ = "broadcasts"

    id: int | None = Field(default=None, primary_key=True)
    # "2026-11" for the month's scheduled message (one per month and ward), None otherwise.
    month: str | None = Field(default=None, max_length=7)
    pack_key: str | None = Field(default=None, max_length=64)
    text: str
    image: str | None = Field(default=None, max_length=256)
    ward_code: str | None = Field(default=None, max_length=24)
    area: str | None = Field(default=None, max_length=120)
    status: BroadcastStatus = _enum(BroadcastStatus, default=BroadcastStatus.SCHEDULED, index=True)
    scheduled_at: datetime = _timestamp()
    started_at: datetime | None = _timestamp(default=None, nullable=True)
    finished_at: datetime | None = _timestamp(default=None, nullable=True)
    created_by: int | None = Field(default=None, sa_type=sa.BigInteger)
    progress_chat: str | None = Field(default=None, max_length=32)
    progress_message_id: str | None = Field(default=None, max_length=32)

    __table_args__ = (sa.UniqueConstraint("month", "ward_code", name="uq_broadcasts_month_ward"),)


# The outbox: one row per (broadcast, recipient), all written before the first send.
class Delivery(SQLModel, table=True):
    """One subscriber's copy of one broadcast."""

    __tablename__ = "deliveries"

    id: int | None = Field(default=None, primary_key=True)
    broadcast_id: int = Field(foreign_key="broadcasts.id", index=True, ondelete="CASCADE")
    subscription_id: int = Field(foreign_key="subscriptions.id", index=True, ondelete="CASCADE")
    status: DeliveryStatus = _enum(DeliveryStatus, default=DeliveryStatus.PENDING, index=True)
    attempts: int = Field(default=0)
    claimed_at: datetime | None = _timestamp(default=None, nullable=True)
    sent_at: datetime | None = _timestamp(default=None, nullable=True, index=True)
    error: str | None = Field(default=None, max_length=200)

    __table_args__ = (
        sa.UniqueConstraint("broadcast_id", "subscription_id", name="uq_deliveries_once"),
    )


# Data keys: random keys that seal content, stored wrapped with the secret key.
class DataKey(SQLModel, table=True):
    """A content key, encrypted with a key derived from HOMTHU_SECRET_KEY."""

    __tablename__ = "data_keys"

    id: int | None = Field(default=None, primary_key=True)
    wrapped: bytes = Field(sa_type=sa.LargeBinary)
    created_at: datetime = _timestamp()
    # Set by a rotation: still opens what it sealed until everything is sealed anew.
    retired_at: datetime | None = _timestamp(default=None, nullable=True)


# Traces: which messages of a private chat with the bot exist, so the resident can have them
# deleted. Keyed by a keyed hash of the chat under its own purpose; no tip, no exact time.
class ChatTrace(SQLModel, table=True):
    """One message in a private chat with the bot, either side; kept at most 48 hours."""

    __tablename__ = "chat_traces"

    trace_key: str = Field(primary_key=True, max_length=64)
    message_id: str = Field(primary_key=True, max_length=32)
    # The hour the message was sent in, not the second: see handlers/traces.py.
    hour: datetime = _timestamp(index=True)


# Webhook deliveries already accepted, by the platform's own update id (no person in it): a
# platform that retries one is answered but not served twice, by whichever process it reaches.
class SeenUpdate(SQLModel, table=True):
    """An update a webhook accepted; kept two days, longer than any platform retries."""

    __tablename__ = "seen_updates"

    source: str = Field(primary_key=True, max_length=16)
    update_id: str = Field(primary_key=True, max_length=64)
    received_at: datetime = _timestamp(index=True)


# The Zalo OA's OAuth pair. Each refresh token works once: the pair that is stored is the only
# one that works, so a new pair is committed here before it is used.
class ZaloToken(SQLModel, table=True):
    """The current access and refresh tokens of one Zalo app, sealed."""

    __tablename__ = "zalo_tokens"

    app_id: str = Field(primary_key=True, max_length=32)
    access_token: str = _sealed(SealedText, "zalo_tokens.access_token")
    refresh_token: str = _sealed(SealedText, "zalo_tokens.refresh_token")
    expires_at: datetime = _timestamp()
    refreshed_at: datetime = _timestamp()
    # Set when Zalo refused the refresh token: only an OA admin's new consent mends it.
    failed_at: datetime | None = _timestamp(default=None, nullable=True)
