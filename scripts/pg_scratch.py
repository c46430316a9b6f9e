"""Run a command against a scratch PostgreSQL database, created before and dropped after.

Usage: python scripts/pg_scratch.py COMMAND...  The command sees HOMTHU_TEST_DATABASE_URL.
The server comes from HOMTHU_PG_ADMIN_URL (default: postgres@127.0.0.1:5432, trust auth).
Without a reachable server it skips (exit 0), unless HOMTHU_REQUIRE_POSTGRES is set.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys

import asyncpg

ADMIN_URL = os.environ.get("HOMTHU_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


async def _admin(statement: str) -> None:
    connection = await asyncpg.connect(ADMIN_URL, timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def main(command: list[str]) -> int:
    """Create the scratch database, run the command, drop the database; return its status."""
    name = f"homthu_test_{secrets.token_hex(4)}"
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError, TimeoutError) as error:
        if os.environ.get("HOMTHU_REQUIRE_POSTGRES"):
            print(f"PostgreSQL is required but not usable: {error}", file=sys.stderr)
            return 1
        print(f"PostgreSQL not reachable ({error}); skipping the PostgreSQL run.", file=sys.stderr)
        return 0
    server = ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    env = {**os.environ, "HOMTHU_TEST_DATABASE_URL": f"{server}/{name}"}
    print(f"PostgreSQL run on scratch database {name}", file=sys.stderr)
    try:
        return subprocess.call(command, env=env)
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
