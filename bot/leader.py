"""One process of a cluster runs the scheduled jobs: whoever holds PostgreSQL's leader lock.

The lock is a session-level advisory lock held on a connection of its own. When its holder
dies (SIGKILL, a crash, a lost machine) PostgreSQL ends the session and frees the lock; the
next process to try takes it, within ``LEADER_SECONDS``. A leader whose connection fails
steps down at once, so two leaders never run together. On SQLite the one process leads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Final

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from bot import metrics
from storage.db import LEADER_LOCK, is_postgresql

log = logging.getLogger(__name__)

# How often a follower tries to take the lock, and a leader checks it still holds it.
LEADER_SECONDS: Final = 5.0


class Leadership:
    """Tries for the leader lock, and says when this process gains or loses it."""

    def __init__(self, url: str, on_change: Callable[[bool], Awaitable[None]]) -> None:
        self.url = url
        self.on_change = on_change
        self.leader = False
        self._engine = create_async_engine(url, poolclass=NullPool) if is_postgresql(url) else None
        self._connection: AsyncConnection | None = None
        self._loop: asyncio.Task[None] | None = None

    async def step(self) -> bool:
        """Try for the lock if a follower, check it if the leader; return whether leading."""
        if self._engine is None:
            await self._become(True)
            return True
        try:
            if self._connection is None:
                connection = await self._engine.connect()
                await connection.execution_options(isolation_level="AUTOCOMMIT")
                query = f"SELECT pg_try_advisory_lock({LEADER_LOCK})"
                got = (await connection.exec_driver_sql(query)).scalar_one()
                if got:
                    self._connection = connection
                else:
                    await connection.close()
            else:
                await self._connection.exec_driver_sql("SELECT 1")
        except (SQLAlchemyError, OSError) as error:
            log.warning("Leader lock: the database did not answer (%s)", type(error).__name__)
            await self._drop()
        await self._become(self._connection is not None)
        return self.leader

    def run(self) -> None:
        """Keep trying and checking in the background, until ``close``."""

        async def loop() -> None:
            while True:
                await asyncio.sleep(LEADER_SECONDS)
                await self.step()

        self._loop = asyncio.create_task(loop())

    async def close(self) -> None:
        """Give the lock up, so that another process takes the jobs at once."""
        if self._loop is not None:
            self._loop.cancel()
            await asyncio.gather(self._loop, return_exceptions=True)
            self._loop = None
        if self._connection is not None:
            # Closing the session below frees it all the same, should this fail.
            with contextlib.suppress(SQLAlchemyError, OSError):
                await self._connection.exec_driver_sql(f"SELECT pg_advisory_unlock({LEADER_LOCK})")
        await self._drop()
        self.leader = False
        metrics.LEADER.set(0)
        if self._engine is not None:
            await self._engine.dispose()

    async def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(SQLAlchemyError, OSError):
                await connection.close()

    async def _become(self, leader: bool) -> None:
        if leader == self.leader:
            return
        self.leader = leader
        metrics.LEADER.set(1 if leader else 0)
        log.info("This process %s the scheduled jobs", "now runs" if leader else "no longer runs")
        await self.on_change(leader)
