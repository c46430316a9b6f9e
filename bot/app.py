"""App wiring: services, the routers in the order they are tried, channels and jobs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Final

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlmodel import SQLModel
from telegram import BotCommand, BotCommandScopeChat
from telegram.error import TelegramError
from telegram.ext import Application, ApplicationBuilder

from bot.channels import telegram as telegram_channel
from bot.config import Settings
from broadcasts import compose, engine, schedule
from handlers import (
    apology,
    cards,
    group,
    limits,
    lookup,
    menu,
    officer_commands,
    queue,
    relay,
    reminders,
    retention,
    subscriptions,
    tips,
    traces,
)
from handlers.context import Clock, Services, utc_now
from handlers.dispatch import Dispatcher
from handlers.i18n import LANGUAGES, Catalogue
from handlers.middleware import Middlewares
from handlers.router import Router
from storage import keys
from storage import repositories as repo
from storage.crypto import Keyring
from storage.db import create_engine, session_factory, unit_of_work

log = logging.getLogger(__name__)

# Tried in this order. Residents: «Xóa dấu vết» typed (its label, or yes/no to its question),
# then an answer to an officer's question, then a receipt they were asked for (or 16 bare
# digits), then an answer to the subscription question on screen, then a draft in progress;
# the menu answers the rest.
# Officers' groups: card buttons and replies, then set-up commands.
# An officer's /queue, /tip N, /stats in private come before the resident's /tip; a
# supervisor's /broadcast and its typed answers come before a resident's draft.
ROUTERS: Final[tuple[Router, ...]] = (
    traces.router,
    relay.router,
    lookup.router,
    officer_commands.private_router,
    compose.router,
    subscriptions.router,
    tips.router,
    menu.router,
    queue.router,
    officer_commands.router,
    group.router,
)
COMMANDS: Final = ("start", "gui", "tracuu", "huy", "dangky", "huydangky", "riengtu", "xoadauvet")
OFFICER_COMMANDS: Final = ("queue", "tip", "stats")
Job = Callable[[Services], Awaitable[object]]

REPOST_SECONDS: Final = 30
PURGE_MINUTES: Final = 30
# Message ids are kept by the hour: a purge every few minutes keeps none past its 48 hours.
TRACES_PURGE_MINUTES: Final = 5


async def open_services(settings: Settings, *, secret: bytes, clock: Clock = utc_now) -> Services:
    """Create the services every handler receives, with the database's data keys loaded.

    Content an older version stored plain is sealed here, before anything reads it.
    """
    keyring = Keyring(secret)
    engine = create_engine(settings.database.url, keyring=keyring)
    services = Services(
        settings=settings,
        keyring=keyring,
        sessions=session_factory(engine),
        catalogue=Catalogue.load(),
        clock=clock,
    )
    try:
        async with unit_of_work(services.sessions) as session:
            # Loads the keys (creating the first) and finishes a rotation left pending.
            await keys.finish_rotation(session=session, metadata=SQLModel.metadata, now=clock())
            sealed = await keys.reseal(
                session=session, metadata=SQLModel.metadata, everything=False
            )
    except BaseException:
        await engine.dispose()
        raise
    if sealed:
        log.info("Sealed %d value(s) stored plain by an older version", sum(sealed.values()))
    return services


async def purge_stale_drafts(services: Services) -> int:
    """Delete unfinished tips nobody touched for ``draft_ttl_hours``: they hold tip text."""
    ttl = timedelta(hours=services.settings.limits.draft_ttl_hours)
    async with unit_of_work(services.sessions) as session:
        purged = await repo.purge_drafts(session=session, untouched_since=services.clock() - ttl)
    if purged:
        log.info("Purged %d abandoned draft(s)", purged)
    return purged


async def refresh_keys(services: Services) -> int:
    """Switch to a data key that `keys rotate` made, and finish that rotation."""
    async with unit_of_work(services.sessions) as session:
        return await keys.finish_rotation(
            session=session, metadata=SQLModel.metadata, now=services.clock()
        )


class Runtime:
    """The running bot: Telegram polling, the dispatcher and the scheduled jobs."""

    def __init__(self, settings: Settings, services: Services, *, token: str) -> None:
        self.settings = settings
        self.services = services
        self.application: Application = (  # type: ignore[type-arg]
            ApplicationBuilder()
            .token(token)
            .base_url(settings.telegram.base_url)
            .base_file_url(settings.telegram.base_file_url)
            .get_updates_request(telegram_channel.UpdatesRequest())
            # Many residents at once; the dispatcher keeps each chat's events in order.
            .concurrent_updates(64)
            .build()
        )
        services.channels[telegram_channel.NAME] = telegram_channel.TelegramChannel(
            self.application.bot
        )
        self.limiter = limits.MessageLimiter(
            settings.limits.messages_per_minute,
            staff={
                user for ward in settings.wards for user in (*ward.officers, *ward.supervisors)
            },
        )
        self.dispatcher = Dispatcher(
            services,
            ROUTERS,
            Middlewares(
                # Before an event joins its chat's line, before any transaction: a flood from
                # one chat costs microseconds a message.
                gates=(limits.minute_gate(self.limiter, services.clock),),
                # Once the replies are out: the messages of the turn, for «Xóa dấu vết».
                after_delivery=(traces.remember_turn,),
                # A turn that failed (rolled back), and a tap no router took.
                apology=apology.apologise,
                stale_choice=apology.stale_choice,
            ),
        )
        telegram_channel.register(self.application, self.dispatcher)
        self.scheduler = AsyncIOScheduler(timezone=settings.bot.tz)
        self._tasks: set[asyncio.Task[object]] = set()
        self._jobs: set[asyncio.Task[object]] = set()

    async def _set_commands(self) -> None:
        catalogue = self.services.catalogue
        for language in LANGUAGES:
            commands = [BotCommand(c, catalogue.text(language, f"commands.{c}")) for c in COMMANDS]
            code = None if language == self.settings.bot.language else language
            await self.application.bot.set_my_commands(commands, language_code=code)
        # Officers' commands are listed in their groups only, never to residents.
        language = self.settings.bot.language
        officer = [
            BotCommand(c, catalogue.text(language, f"commands.{c}")) for c in OFFICER_COMMANDS
        ]
        for ward in self.settings.wards:
            try:
                await self.application.bot.set_my_commands(
                    officer, scope=BotCommandScopeChat(ward.officer_chat_id)
                )
            except TelegramError as error:
                log.warning("Officer commands not listed in ward %s's group: %s", ward.code, error)

    def _background(self, work: Coroutine[object, object, object]) -> None:
        """Run work now without holding up the start; stopping waits for it."""
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _schedule(self, job: Job, trigger: BaseTrigger, name: str) -> None:
        """Run ``job(services)`` on a trigger, tracked so that stopping waits for it."""

        async def run() -> None:
            task = asyncio.current_task()
            assert task is not None
            self._jobs.add(task)
            try:
                await job(self.services)
            except Exception as error:
                log.error("Job %s failed: %s", name, type(error).__name__)
            finally:
                self._jobs.discard(task)

        self.scheduler.add_job(run, trigger, id=name, max_instances=1, coalesce=True)

    async def start(self, *, jobs: bool = True) -> None:
        """Connect to Telegram, start polling and the jobs, and post what is pending."""
        await self.application.initialize()
        await self._set_commands()
        await self.application.start()
        assert self.application.updater is not None
        await self.application.updater.start_polling(
            poll_interval=0.0,
            timeout=timedelta(seconds=self.settings.telegram.poll_timeout),
            allowed_updates=["message", "callback_query"],
        )
        digest = self.settings.triage.digest_at
        self._schedule(cards.post_pending, IntervalTrigger(seconds=REPOST_SECONDS), "repost-cards")
        self._schedule(purge_stale_drafts, IntervalTrigger(minutes=PURGE_MINUTES), "purge-drafts")
        self._schedule(refresh_keys, IntervalTrigger(minutes=1), "refresh-keys")
        # Daily, at night in the ward's time, when the group is quiet.
        self._schedule(
            retention.purge_closed,
            CronTrigger(hour=3, minute=17, timezone=self.settings.bot.tz),
            "retention",
        )
        self._schedule(traces.purge, IntervalTrigger(minutes=TRACES_PURGE_MINUTES), "purge-traces")
        self._schedule(reminders.remind_urgent, IntervalTrigger(minutes=1), "remind-urgent")
        # Broadcasts queued from the command line, or left running by a stopped process.
        self._schedule(engine.resume, IntervalTrigger(minutes=1), "deliver-broadcasts")
        # Supervisors' broadcasts whose time has come; the job above then delivers them.
        self._schedule(compose.start_due, IntervalTrigger(minutes=1), "start-due-broadcasts")
        self._schedule(
            schedule.run_monthly,
            CronTrigger.from_crontab(
                self.settings.broadcasts.schedule, timezone=self.settings.bot.tz
            ),
            "monthly-broadcast",
        )
        self._schedule(
            reminders.send_digest,
            CronTrigger(hour=digest.hour, minute=digest.minute, timezone=self.settings.bot.tz),
            "morning-digest",
        )
        # Tests start paused: their clock is a fake one, and jobs are called by hand.
        self.scheduler.start(paused=not jobs)
        self._background(cards.post_pending(self.services))
        if jobs:
            # Tests run with a fake clock and call the jobs themselves.
            self._background(schedule.run_at_start(self.services))
            # A bot that was down at night purges at start instead of waiting a day.
            self._background(retention.purge_closed(self.services))
        log.info(
            "Bot @%s is running for %d ward(s)",
            self.application.bot.username,
            len(self.settings.wards),
        )

    async def stop(self) -> None:
        """Stop polling and jobs, finish what is in flight, and close connections."""
        updater = self.application.updater
        if updater is not None and updater.running:
            await updater.stop()
        await self.dispatcher.idle()
        if self.scheduler.running:
            # APScheduler cancels running asyncio jobs on shutdown: let them finish first.
            self.scheduler.pause()
            await asyncio.gather(*self._jobs, return_exceptions=True)
            self.scheduler.shutdown(wait=False)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.application.running:
            await self.application.stop()
        await self.application.shutdown()
        await self.services.sessions.kw["bind"].dispose()
