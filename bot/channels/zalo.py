"""What both Zalo adapters share: fetching media at once, repeats dropped, work after the 200."""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, Final

import aiohttp

from handlers.dispatch import Dispatcher
from handlers.events import DeliveryError, DeliveryReason, Inbound
from storage import inbound
from storage.db import SessionFactory, unit_of_work

log = logging.getLogger(__name__)

TEXT_LIMIT: Final = 2000
# Zalo documents no limit for what a user sends; what the bot fetches stops here.
DOWNLOAD_LIMIT: Final = 20 * 1024 * 1024
DOWNLOAD_TIMEOUT: Final = 30.0
# Files fetched on arrival wait here for the tip to be posted (drafts live 72 hours at most).
MEDIA_KEPT: Final = timedelta(hours=72)
MEDIA_SLOTS: Final = 512


def same_secret(given: str | None, expected: str) -> bool:
    """Compare a secret from a request with ours in constant time; nothing given is no."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


class MediaStore:
    """Files fetched from Zalo on arrival, until the core asks for them by handle.

    Zalo's media URLs expire at an undocumented time, so a photo is fetched the moment it
    arrives. The bytes stay in this process's memory only, for at most ``MEDIA_KEPT``.
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._files: OrderedDict[str, tuple[bytes, float]] = OrderedDict()

    def keep(self, data: bytes) -> str:
        """Keep ``data`` and return its handle."""
        handle = f"{self.prefix}:{secrets.token_urlsafe(16)}"
        self._files[handle] = (data, time.monotonic())
        self._forget_old()
        return handle

    def get(self, handle: str) -> bytes:
        """Return the bytes of a handle; a permanent DeliveryError when they are gone."""
        self._forget_old()
        stored = self._files.get(handle)
        if stored is None:
            raise DeliveryError("file no longer held", reason=DeliveryReason.REFUSED)
        return stored[0]

    def _forget_old(self) -> None:
        oldest = time.monotonic() - MEDIA_KEPT.total_seconds()
        while self._files and (
            len(self._files) > MEDIA_SLOTS or next(iter(self._files.values()))[1] < oldest
        ):
            self._files.popitem(last=False)


async def fetch(http: aiohttp.ClientSession, url: str) -> bytes:
    """Download a file a user sent, from the URL Zalo gave, up to ``DOWNLOAD_LIMIT``."""
    if not url.startswith(("https://", "http://")):
        raise DeliveryError("not a URL", reason=DeliveryReason.REFUSED)
    try:
        async with http.get(url, timeout=aiohttp.ClientTimeout(total=DOWNLOAD_TIMEOUT)) as got:
            if got.status != 200:
                # An expired link does not come back.
                raise DeliveryError(f"HTTP {got.status}", reason=DeliveryReason.REFUSED)
            if (got.content_length or 0) > DOWNLOAD_LIMIT:
                raise DeliveryError("file too big", reason=DeliveryReason.TOO_BIG)
            data = await got.content.read(DOWNLOAD_LIMIT + 1)
    except (aiohttp.ClientError, TimeoutError) as error:
        raise DeliveryError(type(error).__name__, reason=DeliveryReason.TRANSIENT) from None
    if len(data) > DOWNLOAD_LIMIT:
        raise DeliveryError("file too big", reason=DeliveryReason.TOO_BIG)
    return data


class Intake:
    """Inbound work done after the webhook's 200: repeats dropped, then the dispatcher.

    A repeat is recognised by the platform's message id in the database, so that a retry that
    reaches another process (or this one after a restart) is dropped too.
    """

    def __init__(self, source: str, sessions: SessionFactory, clock: Callable[[], Any]) -> None:
        self.source = source
        self._sessions = sessions
        self._clock = clock
        self._tasks: set[asyncio.Task[None]] = set()
        # The last task of each chat (its platform id, in memory only), which the next awaits.
        self._last: dict[str, asyncio.Task[None]] = {}

    async def first_time(self, message_id: str) -> bool:
        """Record a message id; False when it was seen already (Zalo's retry, a replay)."""
        async with unit_of_work(self._sessions) as session:
            return await inbound.first_delivery(
                session=session, source=self.source, update_id=message_id[:64], now=self._clock()
            )

    def later(self, work: Awaitable[None], *, chat: str | None = None) -> None:
        """Run ``work`` after the answer has gone; ``idle`` waits for it.

        Work for the same ``chat`` runs in arrival order: a photo still being fetched is not
        overtaken by the "done" typed after it.
        """
        before = self._last.get(chat) if chat is not None else None
        task = asyncio.create_task(self._guarded(work, before))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if chat is not None:
            self._last[chat] = task

            def forget(done: asyncio.Task[None], chat: str = chat) -> None:
                if self._last.get(chat) is done:
                    del self._last[chat]

            task.add_done_callback(forget)

    async def _guarded(self, work: Awaitable[None], before: asyncio.Task[None] | None) -> None:
        if before is not None:
            await asyncio.gather(before, return_exceptions=True)
        try:
            await work
        except Exception as error:
            # The event carries the sender's id: name the error only.
            log.error("%s event failed: %s", self.source, type(error).__name__)

    async def idle(self) -> None:
        """Wait until every accepted event has been handled."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


async def serve(
    intake: Intake,
    dispatcher: Dispatcher,
    message_id: str | None,
    convert: Callable[[], Awaitable[Inbound | None]],
) -> None:
    """Drop a repeat, convert the update (fetching its media), and hand it to the dispatcher."""
    if message_id is not None and not await intake.first_time(message_id):
        log.info("%s: a repeated delivery was dropped", intake.source)
        return
    event = await convert()
    if event is not None:
        await dispatcher.handle(event)
