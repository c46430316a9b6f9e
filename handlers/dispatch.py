"""The dispatcher: one turn per inbound event, serialised per chat, committed once.

It knows no feature: limits, traces and the apology come in as middlewares (middleware.py).
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections import deque
from collections.abc import Awaitable, Sequence
from dataclasses import replace
from typing import Final

from handlers.context import Services, Turn
from handlers.events import DeliveryError, EventKind, Inbound
from handlers.i18n import normalise_language
from handlers.middleware import Admission, Answer, Middlewares
from handlers.router import Handler, Router, Scope, parse_callback
from handlers.text import storable
from storage import repositories as repo
from storage.db import unit_of_work

log = logging.getLogger(__name__)

CONFLICT_RETRIES: Final = 3


def _safe_traceback(error: BaseException) -> str:
    # Frames only: an exception's message can quote what the resident typed.
    frames = "".join(traceback.format_tb(error.__traceback__))
    return f"{type(error).__name__}\n{frames}"


def _storable(event: Inbound) -> Inbound:
    """Return the event with every string a person chose made safe to store and show."""

    def clean(value: str | None) -> str | None:
        return None if value is None else storable(value)

    media = event.media
    if media is not None:
        media = replace(media, file_name=clean(media.file_name), mime_type=clean(media.mime_type))
    return replace(
        event,
        text=clean(event.text),
        command=clean(event.command),
        args=storable(event.args),
        choice=clean(event.choice),
        user_name=clean(event.user_name),
        language=clean(event.language),
        media=media,
    )


class Dispatcher:
    """Routes events to the registered routers, in the order they were given."""

    def __init__(
        self,
        services: Services,
        routers: Sequence[Router],
        middlewares: Middlewares = Middlewares(),  # noqa: B008 (frozen, never changed)
    ) -> None:
        self.services = services
        self.middlewares = middlewares
        # Each chat's events in arrival order, handled one at a time by whoever came first.
        self._lines: dict[str, deque[tuple[Inbound, Admission]]] = {}
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._commands: dict[tuple[Scope, str], list[Handler]] = {}
        self._choices: dict[tuple[Scope, str], list[object]] = {}
        self._fallbacks: dict[Scope, list[Handler]] = {scope: [] for scope in Scope}
        for router in routers:
            for name, handler in router.commands.items():
                self._commands.setdefault((router.scope, name), []).append(handler)
            for namespace, choice in router.choices.items():
                self._choices.setdefault((router.scope, namespace), []).append(choice)
            self._fallbacks[router.scope].extend(router.fallbacks)

    async def idle(self) -> None:
        """Wait until no event is being handled, follow-up work included (for a clean stop)."""
        await self._idle.wait()

    async def handle(self, event: Inbound) -> None:
        """Handle one event: answer it, keep the chat's draft consistent, never raise."""
        self._in_flight += 1
        self._idle.clear()
        try:
            await self._handle(_storable(event))
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()

    async def _handle(self, event: Inbound) -> None:
        chat_key = self.services.keyring.chat_key(event.channel, event.chat)
        line = self._lines.get(chat_key)
        waiting = 0 if line is None else len(line) + 1  # the one being handled counts too
        # Gated before any transaction: a flood from one chat costs microseconds a message.
        admission = self.middlewares.admit(event, chat_key, waiting)
        if not admission.handle:
            return
        if line is not None:
            # The chat's events are being handled: this one waits in the chat's line, in
            # memory, rather than in one of the update slots every other chat needs.
            line.append((event, admission))
            return
        line = self._lines[chat_key] = deque([(event, admission)])
        try:
            while line:
                await self._handle_one(*line.popleft(), chat_key)
        finally:
            del self._lines[chat_key]

    async def _handle_one(self, event: Inbound, admission: Admission, chat_key: str) -> None:
        if admission.instead is not None:
            turn = await self._answer_instead(event, chat_key, admission.instead)
        else:
            turn = await self._run(event, chat_key)
        sent = await self._deliver(turn)
        for after in self.middlewares.after_delivery:
            await after(turn, sent)
        for work in turn.after_commit:
            try:
                await work()
            except Exception as error:
                log.error("Follow-up work failed: %s", _safe_traceback(error))

    async def _run(self, event: Inbound, chat_key: str) -> Turn:
        for attempt in range(1, CONFLICT_RETRIES + 1):
            try:
                async with unit_of_work(self.services.sessions) as session:
                    turn = await self._turn(event, chat_key, session)
                    await self._route(turn)
                return turn
            except repo.DraftConflict:
                log.info("Draft changed concurrently; retry %d", attempt)
            except Exception as error:
                log.error(
                    "Handling %s from %s failed: %s",
                    event.kind.value,
                    self.services.keyring.pseudonym(event.channel, event.chat),
                    _safe_traceback(error),
                )
                break
        return await self._apologise(event, chat_key)

    async def _turn(self, event: Inbound, chat_key: str, session: object) -> Turn:
        settings = self.services.settings
        state = await repo.get_chat_state(session=session, chat_key=chat_key)  # type: ignore[arg-type]
        language = (state.language if state else None) or normalise_language(
            event.language, settings.bot.language
        )
        return Turn(
            event=event,
            services=self.services,
            session=session,  # type: ignore[arg-type]
            chat_key=chat_key,
            language=language,
            now=self.services.clock(),
            awaiting=state.awaiting if state else None,
        )

    async def _answer_instead(self, event: Inbound, chat_key: str, answer: Answer) -> Turn:
        # Only the chat's language is read; the draft is not touched.
        async with unit_of_work(self.services.sessions) as session:
            turn = await self._turn(event, chat_key, session)
            answer(turn)
        return turn

    async def _apologise(self, event: Inbound, chat_key: str) -> Turn:
        # The failed transaction rolled back, so the draft is as it was before this event.
        try:
            async with unit_of_work(self.services.sessions) as session:
                turn = await self._turn(event, chat_key, session)
        except Exception as error:
            # The database may be what failed: apologise in the language the platform gave.
            log.error("Apology without the chat's state: %s", type(error).__name__)
            language = normalise_language(event.language, self.services.settings.bot.language)
            turn = Turn(
                event=event,
                services=self.services,
                session=None,  # type: ignore[arg-type]
                chat_key=chat_key,
                language=language,
                now=self.services.clock(),
            )
        if self.middlewares.apology is not None:
            self.middlewares.apology(turn)
        return turn

    async def _route(self, turn: Turn) -> None:
        awaited = turn.awaiting
        if turn.event.kind in (EventKind.COMMAND, EventKind.CHOICE):
            # Typed input is awaited only until the person does something else.
            turn.awaiting = None
        await self._dispatch(turn)
        if turn.awaiting != awaited:
            await repo.set_chat_state(
                session=turn.session, chat_key=turn.chat_key, now=turn.now, awaiting=turn.awaiting
            )

    async def _dispatch(self, turn: Turn) -> None:
        event = turn.event
        scope = Scope.PRIVATE if event.private else Scope.GROUP
        if event.kind is EventKind.CHOICE:
            parsed = parse_callback(event.choice or "")
            handlers = self._choices.get((scope, parsed[0]), []) if parsed else []
            for handler in handlers:
                if await handler(turn, parsed[1]):  # type: ignore[operator,index]
                    return
            if scope is Scope.PRIVATE and self.middlewares.stale_choice is not None:
                self.middlewares.stale_choice(turn)
            return
        if event.kind is EventKind.COMMAND:
            for handler in self._commands.get((scope, event.command or ""), []):
                if await handler(turn):
                    return
        for handler in self._fallbacks[scope]:
            if await handler(turn):
                return

    async def _deliver(self, turn: Turn) -> list[str]:
        """Send the turn's replies and answer its button; return the ids of the messages sent."""
        event, channel = turn.event, self.services.channel(turn.event.channel)
        # Replies go in order; the tap's answer and the spent buttons' removal need not
        # wait for them (one round trip per tap instead of three).
        side: list[Awaitable[None]] = []
        sent: list[str] = []
        if event.kind is EventKind.CHOICE and not turn.answer_later:
            side.append(channel.acknowledge(event, turn.notice, alert=turn.alert))
            if event.private and event.message_id and turn.replies:
                # A resident's tapped message is spent; removing its buttons prevents stale
                # taps. (A card in the officers' group keeps its buttons: it is edited instead.)
                side.append(channel.remove_choices(event.chat, event.message_id))
        results = await asyncio.gather(
            self._send_replies(turn, sent), *side, return_exceptions=True
        )
        for result in results:
            if isinstance(result, DeliveryError):
                log.warning("Reply to %s not delivered: %s", turn.pseudonym, result)
            elif isinstance(result, BaseException):
                log.error("Delivery failed: %s", _safe_traceback(result))
        return sent

    async def _send_replies(self, turn: Turn, sent: list[str]) -> None:
        for reply in turn.replies:
            message = await self.services.channel(turn.event.channel).send(turn.event.chat, reply)
            sent += message.message_ids
