"""Delivery engine: a broadcast's outbox, sent within the chat platform's limits.

``enqueue`` writes one delivery row per recipient in one transaction; ``deliver`` sends them
with a few concurrent senders paced by one gate (quiet hours, flood waits, a token bucket),
and writes each outcome before its sender starts the next send, so a run killed midway
repeats at most the sends that were in flight.
"""

from __future__ import annotations

import asyncio
import fcntl
import inspect
import json
import logging
import math
import os
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from typing import Final
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from handlers.context import Clock, Services
from handlers.events import DeliveryError, EventKind, Media, Outbound
from handlers.text import split_text, utf16_length
from storage import broadcasts as repo
from storage.crypto import SealError
from storage.db import unit_of_work
from storage.models import Broadcast, BroadcastStatus, DeliveryStatus

log = logging.getLogger(__name__)

Sleeper = Callable[[float], Awaitable[object]]

# Telegram's bulk limit is about 30 messages a second, 1,000 with paid broadcasts.
FREE_RATE_CAP: Final = 30.0
PAID_RATE_CAP: Final = 1000.0
TEXT_LIMIT: Final = 4096
CAPTION_LIMIT: Final = 1024
ATTEMPTS: Final = 3
BACKOFF_SECONDS: Final = 1.0
# A sender's send is in flight for one HTTP round trip; this many cover the pace.
MIN_SENDERS: Final = 4
MAX_SENDERS: Final = 64
SENDS_PER_SENDER: Final = 15.0
LOCK_POLL_SECONDS: Final = 0.5
# Pacing sleeps shorter than this are skipped: asyncio cannot sleep that precisely.
PACE_SLACK: Final = 0.002
# Matches what Telegram answers for a recipient who is gone for good.
_LONG_NUMBER: Final = re.compile(r"\d{5,}")
# Classid of our PostgreSQL advisory locks ("hm"), the broadcast id being the objid.
_PG_LOCK_CLASS: Final = 0x686D


@dataclass
class Summary:
    """How a delivery run went: outcomes so far and how fast it sent."""

    sent: int = 0
    failed: int = 0
    unsubscribed: int = 0
    seconds: float = 0.0
    flood_waits: int = 0

    @property
    def done(self) -> int:
        """Recipients whose delivery has an outcome."""
        return self.sent + self.failed + self.unsubscribed

    @property
    def per_second(self) -> float:
        """Messages sent per second of the run."""
        return self.sent / self.seconds if self.seconds > 0 else 0.0


Progress = Callable[[Summary, int], Awaitable[object] | object]


class BroadcastNotFound(LookupError):
    """No broadcast has this id."""


class BroadcastCancelled(RuntimeError):
    """The broadcast was cancelled; it is not sent."""


def effective_rate(rate_per_second: float, *, paid: bool) -> float:
    """Return the pace actually used: the configured rate within the platform's cap."""
    return min(rate_per_second, PAID_RATE_CAP if paid else FREE_RATE_CAP)


def quiet_wait(now: datetime, quiet: tuple[clock_time, clock_time] | None, tz: ZoneInfo) -> float:
    """Return the seconds until the quiet hours end, or 0 when ``now`` is outside them."""
    if quiet is None:
        return 0.0
    start, end = quiet
    local = now.astimezone(tz)
    moment = local.time().replace(tzinfo=None)
    inside = start <= moment < end if start < end else (moment >= start or moment < end)
    if not inside:
        return 0.0
    resume = datetime.combine(local.date(), end, tzinfo=tz)
    if resume <= local:
        resume += timedelta(days=1)
    return (resume.astimezone(UTC) - now.astimezone(UTC)).total_seconds()


def message_for(broadcast: Broadcast, *, paid: bool) -> Outbound:
    """Return what every recipient gets: the text, with the image when there is one."""
    media = Media(EventKind.PHOTO, broadcast.image) if broadcast.image else None
    return Outbound(text=broadcast.text, media=media, paid_broadcast=paid)


def api_calls(message: Outbound) -> int:
    """Return how many messages the channel sends for this: long text goes in pieces."""
    pieces = len(split_text(message.text, TEXT_LIMIT))
    if message.media is None:
        return pieces
    return 1 if utf16_length(message.text) <= CAPTION_LIMIT else 1 + pieces


def _clean_error(error: Exception) -> str:
    # Chat ids are long numbers; none may end up stored beside the outcome.
    return _LONG_NUMBER.sub("…", str(error))[:200]


class _Gate:
    """What every send passes first: quiet hours, flood waits, then its slot in the pace.

    One lock, so a pause or a quiet night is waited out once for all senders; the slots are
    evenly spaced, with no burst, so a second never holds more than the rate.
    """

    def __init__(self, services: Services, rate: float, sleeper: Sleeper) -> None:
        self._clock: Clock = services.clock
        self._quiet = services.settings.broadcasts.quiet
        self._tz = services.settings.bot.tz
        self._interval = 1.0 / rate
        self._sleep = sleeper
        self._lock = asyncio.Lock()
        self._next = 0.0
        self._paused_until = 0.0
        self._pauses = 0

    async def enter(self, calls: int) -> None:
        """Wait until ``calls`` messages may go out now."""
        async with self._lock:
            while True:
                wait = quiet_wait(self._clock(), self._quiet, self._tz)
                if wait > 0:
                    log.info("Quiet hours: delivery resumes in %.0f s", wait)
                    await self._sleep(wait)
                    continue
                pauses = self._pauses
                wait = max(self._next, self._paused_until) - time.monotonic()
                if wait > PACE_SLACK:
                    await self._sleep(wait)
                # A flood wait that arrived while this sender slept restarts its wait.
                if pauses == self._pauses:
                    break
            # Slots stay on their grid when a sender wakes a little late, so sleep overshoot
            # does not slow the pace; a longer stall forfeits its slots rather than bursting.
            self._next = max(self._next, time.monotonic() - self._interval)
            self._next += calls * self._interval

    def pause(self, seconds: float) -> None:
        """Stop every sender for ``seconds``: the platform answered with a flood wait."""
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)
        self._pauses += 1


class _Recorder:
    """Writes outcomes in group commits: every outcome waiting goes in one transaction."""

    def __init__(
        self,
        services: Services,
        summary: Summary,
        total: int,
        on_progress: Progress | None,
        started: float,
    ) -> None:
        self._services = services
        self._summary = summary
        self._total = total
        self._on_progress = on_progress
        self._started = started
        self._every = services.settings.broadcasts.progress_seconds
        self._last_progress = started
        self._waiting: list[tuple[repo.Outcome, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._closed = False

    async def record(self, outcome: repo.Outcome) -> None:
        """Return once ``outcome`` is committed."""
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((outcome, done))
        self._wake.set()
        await done

    def close(self) -> None:
        """Let the writer end once it has written what is waiting."""
        self._closed = True
        self._wake.set()

    async def run(self) -> None:
        """Write outcomes as they come, until closed."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._waiting = self._waiting, []
            if batch:
                await self._write(batch)
            elif self._closed:
                return

    async def _write(self, batch: list[tuple[repo.Outcome, asyncio.Future[None]]]) -> None:
        try:
            async with unit_of_work(self._services.sessions) as session:
                await repo.record(
                    session=session,
                    outcomes=[outcome for outcome, _ in batch],
                    now=self._services.clock(),
                )
        except Exception as error:
            for _, done in batch:
                done.set_exception(error)
            return
        for outcome, done in batch:
            self._count(outcome)
            done.set_result(None)
        now = time.monotonic()
        if now - self._last_progress >= self._every:
            self._last_progress = now
            await self.progress()

    def _count(self, outcome: repo.Outcome) -> None:
        if outcome.status is DeliveryStatus.SENT:
            self._summary.sent += 1
        elif outcome.status is DeliveryStatus.FAILED:
            self._summary.failed += 1
        elif outcome.status is DeliveryStatus.UNSUBSCRIBED:
            self._summary.unsubscribed += 1

    async def progress(self) -> None:
        """Tell the caller how far the run is; a failing callback never stops delivery."""
        self._summary.seconds = time.monotonic() - self._started
        if self._on_progress is None:
            return
        try:
            result = self._on_progress(self._summary, self._total)
            if inspect.isawaitable(result):
                await result
        except Exception as error:
            log.warning("Broadcast progress report failed: %s", type(error).__name__)


class _Run:
    """One deliver() call: its senders, gate and recorder."""

    def __init__(
        self,
        services: Services,
        broadcast: Broadcast,
        recorder: _Recorder,
        summary: Summary,
        sleeper: Sleeper,
    ) -> None:
        settings = services.settings.broadcasts
        self.services = services
        assert broadcast.id is not None
        self.broadcast_id = broadcast.id
        self.rate = effective_rate(settings.rate_per_second, paid=settings.paid)
        self.senders = max(MIN_SENDERS, min(MAX_SENDERS, math.ceil(self.rate / SENDS_PER_SENDER)))
        self.batch = max(MIN_SENDERS, round(self.rate / self.senders / 2))
        self.message = message_for(broadcast, paid=settings.paid)
        self.calls = api_calls(self.message)
        self.gate = _Gate(services, self.rate, sleeper)
        self.recorder = recorder
        self.summary = summary
        self.sleep = sleeper

    async def sender(self) -> None:
        """Claim a few deliveries at a time and send them, until none is left."""
        while True:
            async with unit_of_work(self.services.sessions) as session:
                claimed = await repo.claim(
                    session=session,
                    broadcast_id=self.broadcast_id,
                    limit=self.batch,
                    now=self.services.clock(),
                )
            if not claimed:
                return
            for row in claimed:
                await self.recorder.record(await self.send(row))

    async def send(self, row: repo.Claimed) -> repo.Outcome:
        """Send one recipient's copy; say what became of it."""
        try:
            address = json.loads(
                self.services.keyring.open(row.sealed_chat, context=f"subscription:{row.chat_key}")
            )
            channel = self.services.channels[address["channel"]]
            chat = str(address["chat"])
        except (SealError, ValueError, KeyError, TypeError):
            return repo.Outcome(
                row.delivery_id, DeliveryStatus.FAILED, error="cannot open the recipient address"
            )
        attempts = 0
        while True:
            await self.gate.enter(self.calls)
            attempts += 1
            try:
                await channel.send(chat, self.message, patient=False)
            except DeliveryError as error:
                if error.retry_after is not None:
                    self.gate.pause(error.retry_after)
                    self.summary.flood_waits += 1
                    log.warning("Flood wait of %.0f s: all senders pause", error.retry_after)
                    return repo.Outcome(row.delivery_id, DeliveryStatus.PENDING)
                if error.recipient_gone:
                    return repo.Outcome(
                        row.delivery_id,
                        DeliveryStatus.UNSUBSCRIBED,
                        attempts=attempts,
                        error=_clean_error(error),
                        subscription_id=row.subscription_id,
                    )
                if error.permanent or attempts >= ATTEMPTS:
                    return repo.Outcome(
                        row.delivery_id,
                        DeliveryStatus.FAILED,
                        attempts=attempts,
                        error=_clean_error(error),
                    )
                await self.sleep(BACKOFF_SECONDS * 2 ** (attempts - 1))
                continue
            return repo.Outcome(row.delivery_id, DeliveryStatus.SENT, attempts=attempts)


@asynccontextmanager
async def _sole_delivery(services: Services, broadcast_id: int) -> AsyncIterator[None]:
    """Hold the broadcast's delivery lock: one run at a time, across processes.

    Only a run holding it may put back rows left "sending": then none is in flight. The lock
    dies with its process (PostgreSQL session, or the file lock on SQLite), so a run killed
    with SIGKILL never blocks the next one.
    """
    async with services.locks.hold(f"broadcast:{broadcast_id}"):
        engine: AsyncEngine = services.sessions.kw["bind"]
        if engine.dialect.name == "postgresql":
            async with _pg_lock(engine, broadcast_id):
                yield
            return
        database = make_url(str(engine.url)).database
        if database in (None, "", ":memory:"):
            yield
            return
        # Never deleted: a process waiting on a deleted file would lock a different one.
        handle = os.open(f"{database}.broadcast-{broadcast_id}.lock", os.O_RDWR | os.O_CREAT)
        try:
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    await asyncio.sleep(LOCK_POLL_SECONDS)
            yield
        finally:
            os.close(handle)


@asynccontextmanager
async def _pg_lock(engine: AsyncEngine, broadcast_id: int) -> AsyncIterator[None]:
    values = {"kind": _PG_LOCK_CLASS, "id": broadcast_id}
    async with engine.connect() as connection:
        locked = await connection.execution_options(isolation_level="AUTOCOMMIT")
        while True:
            if await locked.scalar(text("SELECT pg_try_advisory_lock(:kind, :id)"), values):
                break
            await asyncio.sleep(LOCK_POLL_SECONDS)
        try:
            yield
        finally:
            await locked.execute(text("SELECT pg_advisory_unlock(:kind, :id)"), values)


async def enqueue(services: Services, broadcast_id: int) -> int:
    """Write the broadcast's outbox, one row per active subscriber in its audience.

    One transaction; running it again adds only who subscribed since. The broadcast is
    then running. Returns how many rows were added.
    """
    async with unit_of_work(services.sessions) as session:
        broadcast = await repo.get_broadcast(session=session, broadcast_id=broadcast_id)
        if broadcast is None:
            raise BroadcastNotFound(broadcast_id)
        if broadcast.status in (BroadcastStatus.CANCELLED, BroadcastStatus.DRAFT):
            raise BroadcastCancelled(broadcast_id)
        added = await repo.enqueue(session=session, broadcast=broadcast, now=services.clock())
    log.info("Broadcast #%d: %d recipient(s) queued", broadcast_id, added)
    return added


async def deliver(
    services: Services,
    broadcast_id: int,
    *,
    on_progress: Progress | None = None,
    sleeper: Sleeper = asyncio.sleep,
) -> Summary:
    """Send the broadcast's pending deliveries until none is left; then mark it done.

    ``on_progress(summary, total)`` is called every ``progress_seconds`` and once at the end.
    ``sleeper`` waits out quiet hours, flood waits, backoff and the pace (tests pass a fake).
    A second call for the same broadcast waits for the first and finds nothing left to send.
    """
    started = time.monotonic()
    summary = Summary()
    async with _sole_delivery(services, broadcast_id):
        async with unit_of_work(services.sessions) as session:
            broadcast = await repo.get_broadcast(session=session, broadcast_id=broadcast_id)
            if broadcast is None:
                raise BroadcastNotFound(broadcast_id)
            requeued = await repo.requeue_sending(session=session, broadcast_id=broadcast_id)
            total = await repo.count_pending(session=session, broadcast_id=broadcast_id)
        if requeued:
            log.info("Broadcast #%d: %d interrupted send(s) queued again", broadcast_id, requeued)
        recorder = _Recorder(services, summary, total, on_progress, started)
        writer = asyncio.create_task(recorder.run())
        run = _Run(services, broadcast, recorder, summary, sleeper)
        try:
            while await _deliver_pending(run):
                pass
        finally:
            recorder.close()
            await writer
        async with unit_of_work(services.sessions) as session:
            await repo.finish(session=session, broadcast_id=broadcast_id, now=services.clock())
    await recorder.progress()
    log.info(
        "Broadcast #%d: %d sent, %d failed, %d unsubscribed in %.1f s",
        broadcast_id,
        summary.sent,
        summary.failed,
        summary.unsubscribed,
        summary.seconds,
    )
    return summary


async def _deliver_pending(run: _Run) -> bool:
    """Run the senders until they find nothing to claim; return whether rows came back."""
    await asyncio.gather(*(run.sender() for _ in range(run.senders)))
    async with unit_of_work(run.services.sessions) as session:
        run.summary.unsubscribed += await repo.drop_unsubscribed(
            session=session, broadcast_id=run.broadcast_id
        )
        broadcast = await repo.get_broadcast(session=session, broadcast_id=run.broadcast_id)
        pending = await repo.count_pending(session=session, broadcast_id=run.broadcast_id)
    # A flood-waited row goes back after the other senders may already have stopped.
    return broadcast is not None and broadcast.status is BroadcastStatus.RUNNING and pending > 0


async def send(
    services: Services,
    broadcast_id: int,
    *,
    on_progress: Progress | None = None,
    sleeper: Sleeper = asyncio.sleep,
) -> Summary:
    """Write the broadcast's outbox and deliver it now."""
    await enqueue(services, broadcast_id)
    return await deliver(services, broadcast_id, on_progress=on_progress, sleeper=sleeper)


async def resume(services: Services, *, sleeper: Sleeper = asyncio.sleep) -> list[Summary]:
    """Finish every broadcast left running, e.g. by a process that was killed."""
    async with unit_of_work(services.sessions) as session:
        running = await repo.running_broadcasts(session=session)
    return [await deliver(services, broadcast_id, sleeper=sleeper) for broadcast_id in running]
