"""Command line: ``python -m bot run``, ``playground``, ``db upgrade``, ``broadcast``, ``keys``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlmodel import SQLModel

from bot import metrics
from bot.app import Runtime, database_answers, prepare
from bot.channels import telegram as telegram_channel
from bot.config import ConfigError, Settings, load_settings, token_missing_message
from bot.keyfile import load_secret_key
from bot.logs import setup_logging
from bot.playground import ListenError
from bot.playground import serve as serve_playground
from bot.runners import TelegramWebhook
from bot.webhook import ListenError as WebhookListenError
from bot.webhook import WebhookServer
from broadcasts import engine, schedule
from handlers.context import Services
from storage import broadcasts as broadcast_repo
from storage import keys
from storage.db import AlreadyServed, single_process, startup_lock, unit_of_work, upgrade_async
from storage.keys import WrongSecretKey
from storage.models import DeliveryStatus

log = logging.getLogger("homthu")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="homthu", description="Hòm thư tố giác: the bot.")
    parser.add_argument(
        "--config", type=Path, help="config file (default: $HOMTHU_CONFIG or ./config.toml)"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "run", help="apply migrations, then run the bot (the playground without a token)"
    )
    commands.add_parser(
        "playground", help="run the bot against a pretend Telegram, with a page to chat on"
    )
    database = commands.add_parser("db", help="database maintenance")
    database.add_argument("action", choices=["upgrade"], help="apply migrations up to head")
    broadcast = commands.add_parser("broadcast", help="monthly awareness broadcasts")
    actions = broadcast.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="list broadcasts with their delivery counts")
    send = actions.add_parser("send", help="start delivering a broadcast now")
    which = send.add_mutually_exclusive_group(required=True)
    which.add_argument("--next", action="store_true", help="this month's scheduled message")
    which.add_argument("--id", type=int, help="an existing broadcast, by id")
    send.add_argument("--ward", help="only this ward's broadcast (a ward code)")
    send.add_argument(
        "--wait", action="store_true", help="deliver from here, with a progress bar, until done"
    )
    status = actions.add_parser("status", help="delivery counts and monthly coverage")
    status.add_argument("id", type=int, help="the broadcast's id")
    keys_parser = commands.add_parser("keys", help="the keys that seal tips at rest")
    keys_parser.add_argument(
        "action", choices=["rotate"], help="seal everything under a new data key"
    )
    return parser


async def _serve(settings: Settings, secret: bytes, token: str) -> None:
    """Run the bot until SIGTERM or Ctrl+C: the core, its frontend and the HTTP server."""
    services = await prepare(settings, secret=secret)
    runtime = Runtime(settings, services, token=token)
    server = WebhookServer(
        settings.webhook,
        health=lambda: database_answers(services),
        before_metrics=lambda: metrics.read_database(services),
    )
    frontend = None
    if settings.telegram.mode == "webhook":
        assert settings.telegram_webhook_secret is not None
        frontend = TelegramWebhook(
            runtime.application,
            services,
            secret=settings.telegram_webhook_secret.get_secret_value(),
            public_url=settings.webhook.public_url,
        )
        server.route(TelegramWebhook.PATH, frontend.handle)
    # Zalo residents' webhooks (OA, bot) on the same server, when config.toml enables them.
    runtime.zalo.route(server)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await server.start()
    except WebhookListenError as error:
        if frontend is not None or runtime.zalo.needs_webhooks:
            await services.sessions.kw["bind"].dispose()
            raise
        # Polling needs no server: run on, only without /healthz and /metrics.
        log.warning("%s Polling goes on without /healthz and /metrics.", error)
    except BaseException:
        await services.sessions.kw["bind"].dispose()
        raise
    try:
        await runtime.start(frontend=frontend)
        await stop.wait()
    finally:
        log.info("Stopping")
        server.draining()
        await runtime.stop()
        await server.stop()


def _counts_line(counts: dict[DeliveryStatus, int]) -> str:
    return ", ".join(f"{status.value} {counts.get(status, 0)}" for status in DeliveryStatus)


def _month_bounds(month: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """Return the UTC start and end of a "YYYY-MM" month in the ward's time zone."""
    start = datetime.strptime(month, "%Y-%m").replace(tzinfo=tz)
    end = (start + timedelta(days=32)).replace(day=1)
    return start.astimezone(UTC), end.astimezone(UTC)


async def _list_broadcasts(services: Services) -> int:
    async with unit_of_work(services.sessions) as session:
        rows = await broadcast_repo.list_broadcasts(session=session)
        counts = await broadcast_repo.delivery_counts(
            session=session, broadcast_ids=[row.id for row in rows if row.id is not None]
        )
    if not rows:
        print("No broadcasts yet.")
    for row in rows:
        assert row.id is not None
        print(
            f"#{row.id}\t{row.month or '-'}\t{row.ward_code or 'all wards'}"
            f"\t{row.status.value}\t{_counts_line(counts[row.id])}"
        )
    return 0


async def _broadcast_status(services: Services, broadcast_id: int) -> int:
    tz = services.settings.bot.tz
    async with unit_of_work(services.sessions) as session:
        row = await broadcast_repo.get_broadcast(session=session, broadcast_id=broadcast_id)
        if row is None:
            print(f"There is no broadcast #{broadcast_id}.", file=sys.stderr)
            return 2
        counts = await broadcast_repo.delivery_counts(
            session=session, broadcast_ids=[broadcast_id]
        )
        month = row.month or (row.started_at or row.scheduled_at).astimezone(tz).strftime("%Y-%m")
        start, end = _month_bounds(month, tz)
        wards = [row.ward_code] if row.ward_code else [w.code for w in services.settings.wards]
        coverage = {
            code: await broadcast_repo.coverage(
                session=session, month_start=start, month_end=end, ward_code=code
            )
            for code in wards
        }
    print(f"Broadcast #{broadcast_id}: {row.status.value}; {_counts_line(counts[broadcast_id])}")
    print(f"Coverage in {month}: active subscribers who received at least one message")
    for code, areas in coverage.items():
        active = sum(a for _, a, _ in areas)
        reached = sum(r for _, _, r in areas)
        print(f"  {code}: {reached}/{active} ({_share(reached, active)})")
        for area, area_active, area_reached in areas:
            label = area or "(no area)"
            print(
                f"    {label}: {area_reached}/{area_active} ({_share(area_reached, area_active)})"
            )
    return 0


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "-"


def _progress_bar(summary: engine.Summary, total: int) -> None:
    done = min(summary.done, total)
    width = 30
    filled = width * done // total if total else width
    left = (total - done) / summary.per_second if summary.per_second else 0
    print(
        f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} "
        f"{_share(done, total)} · failed {summary.failed} · about {left:.0f} s left ",
        end="",
        file=sys.stderr,
        flush=True,
    )


async def _send_broadcast(
    services: Services, *, next_: bool, broadcast_id: int | None, ward: str | None, wait: bool
) -> int:
    if ward is not None and ward not in {w.code for w in services.settings.wards}:
        print(f"There is no ward {ward} in the configuration.", file=sys.stderr)
        return 2
    if next_:
        now = services.clock()
        await schedule.monthly_broadcasts(services, now)
        async with unit_of_work(services.sessions) as session:
            rows = await broadcast_repo.month_broadcasts(
                session=session, month=schedule.month_of(services.settings, now), ward_code=ward
            )
        ids = [row.id for row in rows if row.id is not None]
        if not ids:
            print("This month's broadcasts are already delivered or cancelled.")
            return 0
    else:
        assert broadcast_id is not None
        async with unit_of_work(services.sessions) as session:
            row = await broadcast_repo.get_broadcast(session=session, broadcast_id=broadcast_id)
        if row is None:
            print(f"There is no broadcast #{broadcast_id}.", file=sys.stderr)
            return 2
        if ward is not None and row.ward_code != ward:
            print(f"Broadcast #{broadcast_id} is not for ward {ward}.", file=sys.stderr)
            return 2
        ids = [broadcast_id]
    try:
        added = [await engine.enqueue(services, id_) for id_ in ids]
    except engine.BroadcastCancelled as error:
        print(f"Broadcast #{error.args[0]} was cancelled; it is not sent.", file=sys.stderr)
        return 2
    names = ", ".join(f"#{id_}" for id_ in ids)
    if not wait:
        print(
            f"Broadcast {names}: {sum(added)} recipient(s) queued; the running bot delivers it, "
            "or run this again with --wait to deliver it from here."
        )
        return 0
    total = engine.Summary()
    for id_ in ids:
        summary = await engine.deliver(services, id_, on_progress=_progress_bar)
        total.sent += summary.sent
        total.failed += summary.failed
        total.unsubscribed += summary.unsubscribed
        total.seconds += summary.seconds
    print(file=sys.stderr)
    print(
        f"Broadcast {names}: sent {total.sent}, failed {total.failed}, "
        f"unsubscribed {total.unsubscribed}, {total.seconds:.1f} s, "
        f"{total.per_second:.1f} messages/s"
    )
    return 0


async def broadcast_command(
    arguments: argparse.Namespace, settings: Settings, secret: bytes
) -> int:
    """List, send or report on broadcasts, from the operator's terminal."""
    services = await prepare(settings, secret=secret)
    try:
        if arguments.action == "list":
            return await _list_broadcasts(services)
        if arguments.action == "status":
            return await _broadcast_status(services, arguments.id)
        if settings.telegram_bot_token is None:
            print(token_missing_message(), file=sys.stderr)
            return 2
        token = settings.telegram_bot_token.get_secret_value()
        async with telegram_channel.connected(token, settings.telegram) as channel:
            services.channels[channel.name] = channel
            return await _send_broadcast(
                services,
                next_=arguments.next,
                broadcast_id=arguments.id,
                ward=arguments.ward,
                wait=arguments.wait,
            )
    finally:
        await services.sessions.kw["bind"].dispose()


async def keys_command(settings: Settings, secret: bytes) -> int:
    """Seal every stored tip, answer and address under a new data key."""
    services = await prepare(settings, secret=secret)
    try:
        async with unit_of_work(services.sessions) as session:
            report = await keys.rotate(
                session=session, metadata=SQLModel.metadata, now=services.clock()
            )
    finally:
        await services.sessions.kw["bind"].dispose()
    total = sum(report.resealed.values())
    print(
        f"New data key #{report.new_key}; {report.retired} old key(s) retired; "
        f"{total} value(s) sealed anew."
    )
    for column, count in sorted(report.resealed.items()):
        print(f"  {column}: {count}")
    print(
        "A running bot switches to the new key within a minute and then deletes the old one; "
        "a stopped bot does so when it starts."
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, check the configuration, and do what was asked."""
    # PTB 22 is moving durations to timedelta and warns on every 429 until one opts in.
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    arguments = _parser().parse_args(argv)
    try:
        settings = load_settings(arguments.config)
        setup_logging(
            settings.bot.log_level,
            secrets=[settings.telegram_bot_token.get_secret_value()]
            if settings.telegram_bot_token
            else [],
        )
        if arguments.command == "db":
            asyncio.run(_upgrade(settings.database.url))
            log.info("Database is up to date")
            return 0
        secret = load_secret_key(settings)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    try:
        return _run_command(arguments, settings, secret)
    except WrongSecretKey as error:
        print(f"Cannot start: {error}.", file=sys.stderr)
        return 2
    except AlreadyServed as error:
        print(f"Cannot start: {error}", file=sys.stderr)
        return 2


async def _upgrade(url: str) -> None:
    async with startup_lock(url):
        await upgrade_async(url)


def _run_command(arguments: argparse.Namespace, settings: Settings, secret: bytes) -> int:
    """Do what the command line asked, once the configuration and the key are sound."""
    if arguments.command == "keys":
        return asyncio.run(keys_command(settings, secret))
    if arguments.command == "broadcast":
        try:
            return asyncio.run(broadcast_command(arguments, settings, secret))
        except KeyboardInterrupt:
            print("\nInterrupted; the same command resumes where it stopped.", file=sys.stderr)
            return 130
    # Playground: without a token, `run` tries the bot locally instead of stopping.
    if arguments.command == "playground" or settings.telegram_bot_token is None:
        if arguments.command == "run":
            print(token_missing_message(), file=sys.stderr)
            print("Starting the local playground instead.\n", file=sys.stderr, flush=True)
        try:
            with single_process(settings.database.url):
                asyncio.run(_upgrade(settings.database.url))
                asyncio.run(serve_playground(settings, secret))
        except ListenError as error:
            print(error, file=sys.stderr)
            return 2
        return 0
    # End of playground.
    token = settings.telegram_bot_token.get_secret_value()
    try:
        with single_process(settings.database.url):
            asyncio.run(_serve(settings, secret, token))
    except WebhookListenError as error:
        print(error, file=sys.stderr)
        return 2
    return 0
