"""What the benchmark scripts share: the database to run on, and percentiles."""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import secrets
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Final

import asyncpg
from sqlalchemy.engine import make_url

from bot.logs import setup_logging

PG_ADMIN_URL: Final = os.environ.get(
    "HOMTHU_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def add_database_options(parser: argparse.ArgumentParser) -> None:
    """Add --database URL and --postgres, the choices ``database()`` reads."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--database", metavar="URL", help="an existing, empty database")
    where.add_argument(
        "--postgres", action="store_true", help="a scratch PostgreSQL database, dropped after"
    )


@asynccontextmanager
async def database(args: argparse.Namespace) -> AsyncIterator[tuple[str, str]]:
    """The database URL to use and a label for it; scratch ones are removed afterwards.

    ``args.database`` is a given URL; ``args.postgres`` a scratch PostgreSQL database on
    HOMTHU_PG_ADMIN_URL; otherwise a fresh SQLite file in a temporary directory.
    """
    if args.database:
        backend = make_url(args.database).get_backend_name()
        yield args.database, f"{backend} (given URL)"
    elif args.postgres:
        name = f"homthu_bench_{secrets.token_hex(4)}"
        await _pg_admin(f'CREATE DATABASE "{name}"')
        server = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        try:
            yield f"{server}/{name}", f"postgresql (scratch database {name}, dropped)"
        finally:
            await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    else:
        with tempfile.TemporaryDirectory(prefix="homthu-bench-") as tmp:
            yield f"sqlite+aiosqlite:///{tmp}/homthu.db", "sqlite (fresh file in a temp dir)"


async def _pg_admin(statement: str) -> None:
    connection = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


class BotFailed(Exception):
    """The bot answered a resident with its error apology: a handler failed."""


def run_bot_benchmark(run: Callable[[], Awaitable[None]], *, timeout: float, token: str) -> int:
    """Run a benchmark of the real bot in a clean environment, bounded in time; exit status."""
    for name in list(os.environ):
        if name.startswith("HOMTHU_") or name == "TELEGRAM_BOT_TOKEN":
            del os.environ[name]
    # As bot.cli does: PTB 22 warns on every 429 unless durations are timedeltas.
    os.environ["PTB_TIMEDELTA"] = "true"
    setup_logging("WARNING", secrets=[token])

    async def bounded() -> None:
        async with asyncio.timeout(timeout):
            await run()

    try:
        asyncio.run(bounded())
    except TimeoutError:
        print(f"benchmark did not finish within {timeout:g} s", file=sys.stderr)
        return 1
    except (BotFailed, AssertionError, LookupError) as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 1
    return 0
