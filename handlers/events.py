"""Chat-neutral events and replies: what every channel adapter translates to and from."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
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


class DeliveryError(Exception):
    """A message could not be delivered; ``permanent`` when retrying cannot help.

    ``retry_after`` is the platform's flood wait, in seconds, when that was the reason.
    """

    def __init__(self, reason: str, *, permanent: bool, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.permanent = permanent
        self.retry_after = retry_after


class Channel(Protocol):
    """What the core needs from a chat platform."""

    name: str
    supports_buttons: bool

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
