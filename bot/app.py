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
from sqlmodel import select as sa_select
from telegram import BotCommand, BotCommandScopeChat
from telegram.error import TelegramError
from telegram.ext import Application, ApplicationBuilder

from bot import metrics
from bot.channels import telegram as telegram_channel
from bot.channels import zalo_oa
from bot.config import Settings
from bot.leader import Leadership
from bot.runners import Frontend, TelegramPolling
from bot.zalo import ZaloFrontends
from broadcasts import compose, engine, schedule
from handlers import (
    apology,
    cards,
    contact,
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
from handlers.i18n import LANGUAGES, Catalogue
from handlers.middleware import Middlewares
from handlers.router import Router
from storage import inbound, keys
from storage import repositories as repo
from storage.crypto import Keyring
from storage.db import create_engine, session_factory, startup_lock, unit_of_work, upgrade_async

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
# Telegram gives up on an update after a day of failed deliveries; two days is more than enough.
SEEN_UPDATES_KEPT: Final = timedelta(days=2)


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


async def prepare(settings: Settings, *, secret: bytes, clock: Clock = utc_now) -> Services:
    """Migrate the database and open the services, one process at a time.

    Processes started together on one PostgreSQL database wait for each other here, so that
    one migrates, creates the first data key and checks the secret key before the next looks.
    """
    async with startup_lock(settings.database.url):
        await upgrade_async(settings.database.url)
        return await open_services(settings, secret=secret, clock=clock)


async def database_answers(services: Services) -> None:
    """Ask the database the simplest question (for /healthz); raise if it does not answer."""
    async with services.sessions() as session:
        await session.exec(sa_select(1))


async def forget_seen_updates(services: Services) -> int:
    """Forget the webhook update ids older than any platform's retries."""
    async with unit_of_work(services.sessions) as session:
        return await inbound.forget_seen(
            session=session, before=services.clock() - SEEN_UPDATES_KEPT
        )


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
    """The running bot: the dispatcher, the scheduled jobs, and a frontend bringing updates."""

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
        self.dispatcher = metrics.CountedDispatcher(
            services,
            ROUTERS,
            Middlewares(
                # Before an event joins its chat's line, before any transaction: a flood from
                # one chat costs microseconds a message.
                gates=(limits.minute_gate(self.limiter, services.clock),),
                # Once the replies are out: the messages of the turn, for «Xóa dấu vết».
                # Then the officers' questions a closed window (Zalo OA) held for this chat.
                after_delivery=(traces.remember_turn, contact.deliver_held),
                # A turn that failed (rolled back), and a tap no router took.
                apology=metrics.counting(apology.apologise),
                stale_choice=apology.stale_choice,
            ),
        )
        telegram_channel.register(self.application, self.dispatcher)
        # Zalo residents (OA, bot) when config.toml enables them; officers stay on Telegram.
        self.zalo = ZaloFrontends(settings, services, self.dispatcher)
        self.scheduler = AsyncIOScheduler(timezone=settings.bot.tz)
        self.frontend: Frontend = TelegramPolling(self.application, settings.telegram)
        self.leadership = Leadership(settings.database.url, self._lead)
        self._jobs_on = True
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
                metrics.JOB_RUNS.labels(name, "failed").inc()
                log.error("Job %s failed: %s", name, type(error).__name__)
            else:
                metrics.JOB_RUNS.labels(name, "ok").inc()
            finally:
                self._jobs.discard(task)

        self.scheduler.add_job(run, trigger, id=name, max_instances=1, coalesce=True)

    async def start(self, *, jobs: bool = True, frontend: Frontend | None = None) -> None:
        """Connect to Telegram, take updates (polling unless told), and lead the jobs if free.

        Only one process of a cluster runs the scheduled jobs (bot/leader.py); the others
        take their turn when it stops or dies.
        """
        await self.application.initialize()
        await self._set_commands()
        await self.application.start()
        if frontend is not None:
            self.frontend = frontend
        await self.frontend.start()
        await self.zalo.start()
        if self.zalo.tokens is not None:
            self._schedule(
                self.zalo.refresh_tokens,
                IntervalTrigger(seconds=zalo_oa.REFRESH_EVERY.total_seconds()),
                "zalo-refresh-tokens",
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
        self._schedule(forget_seen_updates, IntervalTrigger(hours=1), "forget-seen-updates")
        # Paused until this process leads. Tests keep it paused: their clock is a fake one,
        # and they call the jobs by hand.
        self._jobs_on = jobs
        self.scheduler.start(paused=True)
        await self.leadership.step()
        self.leadership.run()
        log.info(
            "Bot @%s is running for %d ward(s)",
            self.application.bot.username,
            len(self.settings.wards),
        )

    async def _lead(self, leader: bool) -> None:
        """Run the jobs while this process leads the cluster; pause them when it no longer does."""
        if not leader:
            self.scheduler.pause()
            return
        if self._jobs_on:
            self.scheduler.resume()
        self._background(cards.post_pending(self.services))
        if self._jobs_on:
            # Tests run with a fake clock and call the jobs themselves.
            self._background(schedule.run_at_start(self.services))
            # A bot that was down at night purges at start instead of waiting a day.
            self._background(retention.purge_closed(self.services))

    async def stop(self) -> None:
        """Stop taking updates, finish turns, sends and jobs in progress, and disconnect.

        Whatever is still running after [bot] stop_seconds is cut: a turn rolls back (the
        resident's message is answered by the apology or not at all, never half-stored),
        and a broadcast's claimed copies are taken up again by the next leader.
        """
        await self.frontend.stop()
        await self.zalo.stop()
        await self.leadership.close()
        if self.scheduler.running:
            # APScheduler cancels running asyncio jobs on shutdown: let them finish first.
            self.scheduler.pause()
        running = [*self._jobs, *self._tasks]
        try:
            async with asyncio.timeout(self.settings.bot.stop_seconds):
                await self.dispatcher.idle()
                if running:
                    # asyncio.wait, not gather: a timeout must not cancel them unseen.
                    await asyncio.wait(running)
                if self.application.running:
                    await self.application.stop()
        except TimeoutError:
            unfinished = [task for task in running if not task.done()]
            log.warning(
                "Stopped after %g s with %d job(s) unfinished; the next leader takes them up",
                self.settings.bot.stop_seconds,
                len(unfinished),
            )
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self.application.running:
            await self.application.stop()
        await self.application.shutdown()
        await self.zalo.close()
        await self.services.sessions.kw["bind"].dispose()
