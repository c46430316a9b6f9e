"""What every handler receives: the shared services and the turn being handled."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.events import Channel, Choice, Inbound, Outbound
from handlers.i18n import Catalogue
from handlers.settings import Settings, Ward
from storage.crypto import Keyring
from storage.db import SessionFactory

Clock = Callable[[], datetime]


class KeyedLocks:
    """One asyncio lock per key, forgotten when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        """Hold the lock for ``key`` for the duration of the block."""
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


def utc_now() -> datetime:
    """Return the current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


@dataclass
class Services:
    """The dependencies handlers use, passed in rather than fetched from globals."""

    settings: Settings
    keyring: Keyring
    sessions: SessionFactory
    catalogue: Catalogue
    clock: Clock = utc_now
    channels: dict[str, Channel] = field(default_factory=dict)
    locks: KeyedLocks = field(default_factory=KeyedLocks)

    def channel(self, name: str) -> Channel:
        """Return the adapter for a channel name."""
        return self.channels[name]

    def file_channel(self, file_id: str) -> Channel:
        """Return the channel that holds a file: ``<channel>:<handle>`` for a file another
        channel fetched on arrival (Zalo's links expire), else the officers' channel."""
        name, colon, _ = file_id.partition(":")
        if colon and name in self.channels:
            return self.channels[name]
        return self.channel(self.officer_channel)

    def officer_text(self, key: str, **values: object) -> str:
        """Return a catalogue text in the deployment's language: what the officers' groups read."""
        return self.catalogue.text(self.settings.bot.language, key, **values)

    def ward(self, code: str) -> Ward:
        """Return a configured ward by code."""
        return self.settings.ward(code)

    @property
    def officer_channel(self) -> str:
        """Return the channel the officers' groups live on."""
        return "telegram"


AfterCommit = Callable[[], Awaitable[object]]


@dataclass
class Turn:
    """One inbound event being handled, with its session and the replies it collects.

    Replies and follow-up work run only after the session commits, so a resident is never
    told that something happened which was then rolled back.
    """

    event: Inbound
    services: Services
    session: AsyncSession
    chat_key: str
    language: str
    now: datetime
    awaiting: str | None = None  # typed input a handler asked for; saved after the turn
    replies: list[Outbound] = field(default_factory=list)
    after_commit: list[AfterCommit] = field(default_factory=list)
    notice: str | None = None
    alert: bool = False
    # The handler answers the button press itself, from its follow-up work.
    answer_later: bool = False

    def t(self, key: str, **values: object) -> str:
        """Return a catalogue text in this chat's language."""
        return self.services.catalogue.text(self.language, key, **values)

    def say(self, text: str, choices: tuple[tuple[Choice, ...], ...] = ()) -> None:
        """Queue a text reply, with optional rows of choices, to the person who wrote."""
        self.replies.append(Outbound(text=text, choices=choices))

    def notify(self, text: str, *, alert: bool = False) -> None:
        """Answer the button press with a short notice, or a pop-up alert."""
        self.notice, self.alert = text, alert

    def send(self, message: Outbound) -> None:
        """Queue a reply with everything Outbound offers (force-reply, reply-to, media)."""
        self.replies.append(message)

    def then(self, work: AfterCommit) -> None:
        """Run ``work`` once this turn's writes are committed and its replies sent."""
        self.after_commit.append(work)

    @property
    def pseudonym(self) -> str:
        """Return the log name of this chat."""
        return self.services.keyring.pseudonym(self.event.channel, self.event.chat)
