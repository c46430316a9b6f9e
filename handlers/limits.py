"""Abuse limits per pseudonymous sender: messages per minute, tips per hour and per day.

Every counter is keyed by the chat's keyed hash (``Turn.chat_key``), never by the chat id:
the per-minute one in memory, checked before an event joins its chat's line or opens a
transaction; the tip counters in the ``throttles`` table, so that a restart does not reset
them.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from handlers import menu
from handlers.context import Clock, Turn
from handlers.events import EventKind, Inbound
from handlers.middleware import HANDLE, IGNORE, Admission, Gate
from storage import repositories as repo

log = logging.getLogger(__name__)

MINUTE: Final = timedelta(minutes=1)
# Events of one chat in line at once: an album (at most 10 files) and a few taps fit; a
# longer line is a flood, whose answers would only come later and later.
MAX_WAITING: Final = 16
TIPS_PER_HOUR: Final = "tips-hour"
TIPS_PER_DAY: Final = "tips-day"


class Verdict(enum.Enum):
    """What to do with an inbound event before any work is spent on it."""

    HANDLE = "handle"
    SLOW_DOWN = "slow-down"  # the first event over the limit: answered once, draft untouched
    IGNORE = "ignore"


@dataclass(slots=True)
class _Window:
    start: datetime
    count: int = 0
    warned: bool = False


class MessageLimiter:
    """Counts each resident's messages and taps per minute, in memory, by chat key.

    Typed messages and button taps have separate budgets, so a resident who typed too fast
    can still tap «Gửi tin». Officers (their groups, and their own chats with the bot) are
    never counted: they are known people, and a busy group must never be held back.
    """

    def __init__(self, per_minute: int, staff: Iterable[int] = ()) -> None:
        self.per_minute = per_minute
        self._staff = frozenset(str(user) for user in staff)
        self._windows: dict[tuple[str, bool], _Window] = {}
        self._swept: datetime | None = None

    def exempt(self, event: Inbound) -> bool:
        """Return whether the event comes from an officers' group or an officer."""
        return not event.private or event.user in self._staff

    def admit(self, event: Inbound, chat_key: str, now: datetime, *, waiting: int = 0) -> Verdict:
        """Count one event of a chat; ``waiting`` is how many of its events are in line."""
        if self.exempt(event):
            return Verdict.HANDLE
        self._sweep(now)
        key = (chat_key, event.kind is EventKind.CHOICE)
        window = self._windows.get(key)
        if window is None or window.start + MINUTE <= now:
            window = self._windows[key] = _Window(now)
        if waiting >= MAX_WAITING:
            # Said as the limit: the rest of this chat's minute is ignored too.
            window.count = self.per_minute
        if window.count < self.per_minute:
            window.count += 1
            return Verdict.HANDLE
        if window.warned:
            return Verdict.IGNORE
        window.warned = True
        return Verdict.SLOW_DOWN

    def resumes_at(self, event: Inbound, chat_key: str) -> datetime | None:
        """Return when the chat's current window ends, if it has one."""
        window = self._windows.get((chat_key, event.kind is EventKind.CHOICE))
        return window.start + MINUTE if window else None

    def keys(self) -> frozenset[str]:
        """Return the chat keys counted now (what the limiter holds in memory)."""
        return frozenset(chat_key for chat_key, _ in self._windows)

    def _sweep(self, now: datetime) -> None:
        # Once a minute, forget the chats whose window has ended: memory stays bounded.
        if self._swept is not None and self._swept + MINUTE > now:
            return
        self._swept = now
        for key in [k for k, w in self._windows.items() if w.start + MINUTE <= now]:
            del self._windows[key]


def minute_gate(limiter: MessageLimiter, clock: Clock) -> Gate:
    """Return the gate (a middleware, bot/app.py) that counts each event before its line.

    Over the limit, the first event is answered once, by ``slow_down``; the rest of the
    minute is ignored.
    """

    def gate(event: Inbound, chat_key: str, waiting: int) -> Admission:
        verdict = limiter.admit(event, chat_key, clock(), waiting=waiting)
        if verdict is Verdict.HANDLE:
            return HANDLE
        if verdict is Verdict.IGNORE:
            return IGNORE

        def answer(turn: Turn) -> None:
            log.warning("Slowing down %s: over %d a minute", turn.pseudonym, limiter.per_minute)
            slow_down(turn, limiter.resumes_at(event, chat_key))

        return Admission(instead=answer)

    return gate


def slow_down(turn: Turn, resumes_at: datetime | None) -> None:
    """Tell the resident, once, that messages are ignored until the minute is over."""
    seconds = 60
    if resumes_at is not None:
        seconds = max(1, round((resumes_at - turn.now).total_seconds()))
    if turn.event.kind is EventKind.CHOICE:
        turn.notify(turn.t("limits.slow_down_tap", seconds=seconds), alert=True)
    else:
        turn.say(turn.t("limits.slow_down", seconds=seconds))


def _tip_windows(turn: Turn) -> tuple[tuple[str, timedelta, int, str], ...]:
    limits = turn.services.settings.limits
    return (
        (TIPS_PER_HOUR, timedelta(hours=1), limits.tips_per_hour, "limits.tips_per_hour"),
        (TIPS_PER_DAY, timedelta(days=1), limits.tips_per_day, "limits.tips_per_day"),
    )


async def tip_refusal(turn: Turn) -> str | None:
    """Return why this chat may not send a tip now, and from when it may; None if it may."""
    refusal: tuple[datetime, str] | None = None
    for scope, window, limit, key in _tip_windows(turn):
        count, ends = await repo.window_state(
            session=turn.session, chat_key=turn.chat_key, scope=scope, window=window, now=turn.now
        )
        if count >= limit and (refusal is None or ends > refusal[0]):
            local = ends.astimezone(turn.services.settings.bot.tz)
            text = turn.t(
                key,
                limit=limit,
                time=local.strftime("%H:%M %d/%m/%Y"),
                hotlines=menu.hotline_lines(turn),
            )
            refusal = (ends, text)
    if refusal is not None:
        log.info("Tip from %s refused: over the tip limit", turn.pseudonym)
    return refusal[1] if refusal else None


async def count_tip(turn: Turn) -> None:
    """Count a tip just stored against the chat's hourly and daily limits."""
    for scope, window, _, _ in _tip_windows(turn):
        await repo.record_in_window(
            session=turn.session, chat_key=turn.chat_key, scope=scope, window=window, now=turn.now
        )
