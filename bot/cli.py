"""Command line: ``python -m bot run``, ``playground`` and ``db upgrade``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from bot.app import Runtime, build_services
from bot.config import ConfigError, Settings, load_settings, token_missing_message
from bot.keyfile import load_secret_key
from bot.logs import setup_logging
from bot.playground import ListenError
from bot.playground import serve as serve_playground
from storage.db import upgrade

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
    return parser


async def _serve(settings: Settings, secret: bytes, token: str) -> None:
    runtime = Runtime(settings, build_services(settings, secret=secret), token=token)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await runtime.start()
    try:
        await stop.wait()
    finally:
        log.info("Stopping")
        await runtime.stop()


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
            upgrade(settings.database.url)
            log.info("Database is up to date")
            return 0
        secret = load_secret_key(settings)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    # Playground: without a token, `run` tries the bot locally instead of stopping.
    if arguments.command == "playground" or settings.telegram_bot_token is None:
        if arguments.command == "run":
            print(token_missing_message(), file=sys.stderr)
            print("Starting the local playground instead.\n", file=sys.stderr, flush=True)
        upgrade(settings.database.url)
        try:
            asyncio.run(serve_playground(settings, secret))
        except ListenError as error:
            print(error, file=sys.stderr)
            return 2
        return 0
    # End of playground.
    upgrade(settings.database.url)
    token = settings.telegram_bot_token.get_secret_value()
    asyncio.run(_serve(settings, secret, token))
    return 0
