"""Chat-neutral events and replies: what every channel adapter translates to and from."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol


class EventKind(enum.StrEnum):
    """What a person did in the chat."""

    COMMAND = "command"
    TEXT = "text"
    CHOICE = "choice"
    LOCATION = "location"
    PHOTO = "photo"
    DOCUMENT = "document"
    VIDEO = "video"
    VOICE = "voice"
    AUDIO = "audio"
    UNSUPPORTED = "unsupported"


MEDIA_KINDS: frozenset[EventKind] = frozenset(
    {EventKind.PHOTO, EventKind.DOCUMENT, EventKind.VIDEO, EventKind.VOICE, EventKind.AUDIO}
)


@dataclass(frozen=True, slots=True)
class Media:
    """A file the person sent, referenced by the channel's own file handle.

    With ``data``, a file the bot made itself (a cleaned photo): the bytes are uploaded as a
    new file, named ``file_name``, and ``file_id`` is empty.
    """

    kind: EventKind
    file_id: str
    file_name: str | None = None
    mime_type: str | None = None
    size: int | None = None
    album: str | None = None
    data: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a channel can show and carry, declared by its adapter and read by the core.

    Lengths are counted as the platform counts them (UTF-16 units on Telegram); a limit of
    0 means "none of it" for buttons and captions. The core never writes a platform's number.
    """

    # Longest text in one message; longer texts are split in one place (handlers/text.py).
    text_limit: int
    # Longest caption on a photo or file; 0 when media carry no caption.
    caption_limit: int
    # Buttons one message may carry; 0: choices are shown as a numbered list to type.
    max_buttons: int
    # Longest button label; longer labels make the choices a numbered list. 0: no limit.
    button_label_limit: int
    can_edit: bool
    can_delete: bool
    # How long after sending a message can still be deleted; None: no limit.
    delete_window: timedelta | None
    can_pin: bool
    # Kinds of media a person can send in, and that the bot can send out.
    receives: frozenset[EventKind]
    sends: frozenset[EventKind]
    # Largest file the bot may download, and the largest photo it may upload, in bytes.
    download_limit: int
    photo_upload_limit: int
    # Messages a second the platform takes from the bot overall, and with paid broadcasting.
    send_rate: float
    paid_send_rate: float
    # How long after a person's last message the bot may still write to them (Zalo OA: 7
    # days); None: any time. A message refused for it waits for the person to write again.
    reply_window: timedelta | None = None

    @property
    def buttons(self) -> bool:
        """Whether choices can be shown as buttons at all."""
        return self.max_buttons > 0


@dataclass(frozen=True, slots=True)
class Location:
    """A point the person shared from their phone."""

    latitude: float
    longitude: float


@dataclass(frozen=True, slots=True)
class Inbound:
    """One thing a person did, in a chat, on a channel.

    ``chat`` and ``user`` are the channel's own addresses. Handlers use ``chat`` only to
    answer and to derive keyed-hash pseudonyms; it is never stored in clear. ``user_name``
    is filled in only in group chats (the officers'), never for a resident's private chat.
    """

    channel: str
    chat: str
    kind: EventKind
    user: str | None = None
    private: bool = True
    message_id: str | None = None
    text: str | None = None
    command: str | None = None
    args: str = ""
    choice: str | None = None
    location: Location | None = None
    media: Media | None = None
    language: str | None = None
    callback_id: str | None = None
    reply_to: str | None = None
    user_name: str | None = None


@dataclass(frozen=True, slots=True)
class Choice:
    """A button: the label a person reads and the short data it sends back."""

    label: str
    data: str


@dataclass(frozen=True, slots=True)
class Outbound:
    """A message to show: text, optional media, optional rows of choices."""

    text: str
    choices: tuple[tuple[Choice, ...], ...] = ()
    media: Media | None = None
    reply_to: str | None = None
    silent: bool = False
    force_reply: bool = False
    # Bulk sends above the free rate, paid by the bot's Stars balance (Telegram only).
    paid_broadcast: bool = False


@dataclass(frozen=True, slots=True)
class Sent:
    """Where a message landed, so that it can be replied to or edited later."""

    chat: str
    message_id: str
    # Further messages the same send became: the later pieces of a long text.
    more: tuple[str, ...] = ()

    @property
    def message_ids(self) -> tuple[str, ...]:
        """Every message the send left in the chat, first to last."""
        return (self.message_id, *self.more)


class DeliveryReason(enum.StrEnum):
    """Why a message could not be delivered, as the channel adapter judged it."""

    # The person blocked the bot, left, or their account is deactivated.
    BLOCKED = "blocked"
    # The chat or account does not exist (any more).
    CHAT_GONE = "chat_gone"
    # The file or text is over what the platform takes.
    TOO_BIG = "too_big"
    # Flood control: try again after ``retry_after`` seconds.
    RATE_LIMITED = "rate_limited"
    # The chat has a new address (a group upgraded to a supergroup): ``moved_to``.
    CHAT_MOVED = "chat_moved"
    # The platform lets the bot write only to someone who wrote lately (Zalo OA: 7 days);
    # the same message can go once the person writes again.
    WINDOW_CLOSED = "window_closed"
    # The plan's message quota is spent (Zalo Bot): nothing more goes out this period.
    QUOTA_SPENT = "quota_spent"
    # Any other refusal that sending the same again cannot change.
    REFUSED = "refused"
    # Network trouble, timeouts, the platform's own errors: worth another try.
    TRANSIENT = "transient"


_RETRYABLE: frozenset[DeliveryReason] = frozenset(
    {DeliveryReason.RATE_LIMITED, DeliveryReason.TRANSIENT}
)
# Reasons that mean the recipient is not there to receive anything, now or later.
RECIPIENT_GONE: frozenset[DeliveryReason] = frozenset(
    {DeliveryReason.BLOCKED, DeliveryReason.CHAT_GONE}
)


class DeliveryError(Exception):
    """A message could not be delivered, for a ``reason`` the adapter set; no caller parses text.

    ``retry_after`` is the platform's flood wait, in seconds, when that was the reason;
    ``moved_to`` the chat's new address when it moved.
    """

    def __init__(
        self,
        description: str,
        *,
        reason: DeliveryReason,
        retry_after: float | None = None,
        moved_to: str | None = None,
    ) -> None:
        super().__init__(description)
        self.reason = reason
        self.retry_after = retry_after
        self.moved_to = moved_to

    @property
    def permanent(self) -> bool:
        """Whether sending the same again cannot help."""
        return self.reason not in _RETRYABLE

    @property
    def recipient_gone(self) -> bool:
        """Whether the recipient blocked the bot or no longer exists."""
        return self.reason in RECIPIENT_GONE


class Channel(Protocol):
    """What the core needs from a chat platform."""

    name: str
    supports_buttons: bool
    capabilities: Capabilities

    async def send(self, chat: str, message: Outbound, *, patient: bool = True) -> Sent:
        """Send a message (text, media with caption, choices) to a chat.

        A patient send waits out flood control and retries network errors itself; an
        impatient one raises DeliveryError at once, for a caller that paces many sends.
        """
        ...

    async def download(self, file_id: str) -> bytes:
        """Return the bytes of a file someone sent, up to the platform's download limit.

        Raise DeliveryError, permanent when the file is too big or unknown to the platform.
        """
        ...

    async def acknowledge(
        self, event: Inbound, notice: str | None = None, *, alert: bool = False
    ) -> None:
        """Tell the platform a button press was handled, optionally with a notice or alert."""
        ...

    async def remove_choices(self, chat: str, message_id: str) -> None:
        """Take the buttons off a message that is no longer current."""
        ...

    async def edit(self, chat: str, message_id: str, message: Outbound) -> None:
        """Replace a message's text and choices in place."""
        ...

    async def pin(self, chat: str, message_id: str) -> None:
        """Pin a message in a group, quietly."""
        ...

    async def unpin(self, chat: str, message_id: str) -> None:
        """Unpin a message in a group."""
        ...

    async def delete(self, chat: str, message_ids: Sequence[str]) -> list[str]:
        """Delete messages from a chat, on every device; return the ids that stay.

        Messages already gone count as deleted. A platform that cannot delete returns them all.
        """
        ...
