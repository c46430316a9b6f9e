"""Database engine, sessions and schema migrations."""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, Final

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.crypto import Keyring
from storage.sealed import bind_keyring

MIGRATIONS: Final = Path(__file__).with_name("migrations")
# PostgreSQL advisory lock keys, one per purpose, the same in every process of a deployment.
STARTUP_LOCK: Final = 0x686F6D74_0001
LEADER_LOCK: Final = 0x686F6D74_0002

SessionFactory = async_sessionmaker[AsyncSession]


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers go on while a writer commits; busy_timeout waits for the writer
    # instead of failing at once; foreign keys are off in SQLite unless asked for.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
    # Transactions are begun by _begin_immediate below, not by the driver.
    dbapi_connection.isolation_level = None


def _begin_immediate(connection: Any) -> None:
    # A deferred transaction that reads, then writes after another connection committed,
    # fails at once with "database is locked" (busy_timeout does not help). Taking the
    # write lock at BEGIN makes writers queue instead (seen under benchmarks/tips.py).
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def ensure_sqlite_directory(url: str) -> None:
    """Create the folder of a SQLite database file, so a fresh checkout can start."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


def create_engine(url: str, *, keyring: Keyring | None = None) -> AsyncEngine:
    """Create the async engine for a database URL, tuned for its backend.

    Sealed columns (tip texts, places, answers) read and write only through an engine
    given the keyring; one without it can manage the schema but not the content.
    """
    ensure_sqlite_directory(url)
    if make_url(url).get_backend_name() == "sqlite":
        # SQLite has one writer at a time. With one connection, transactions queue in asyncio;
        # with several, they wait in SQLite's sleeping busy handler (seconds-long p95 spikes
        # in benchmarks/tips.py).
        engine = create_async_engine(url, pool_size=1, max_overflow=0, pool_timeout=60)
    else:
        engine = create_async_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _begin_immediate)
    if keyring is not None:
        bind_keyring(engine, keyring)
    return engine


def dialect_insert(session: AsyncSession) -> Any:
    """Return the INSERT construct of the session's database, for ON CONFLICT upserts."""
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def session_factory(engine: AsyncEngine) -> SessionFactory:
    """Return the factory every use case opens its unit of work with."""
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


@asynccontextmanager
async def unit_of_work(sessions: SessionFactory) -> AsyncIterator[AsyncSession]:
    """Open a session that commits once at the end, or rolls back on error."""
    async with sessions() as session, session.begin():
        yield session


def alembic_config(url: str) -> Config:
    """Return an Alembic configuration pointing at our migrations and this database."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations up to ``revision``; call from outside a running event loop."""
    ensure_sqlite_directory(url)
    command.upgrade(alembic_config(url), revision)


async def upgrade_async(url: str, revision: str = "head") -> None:
    """Apply migrations from inside an event loop (Alembic's env runs its own loop)."""
    await asyncio.to_thread(upgrade, url, revision)


def is_postgresql(url: str) -> bool:
    """Whether the URL names a PostgreSQL database (several processes may share it)."""
    return make_url(url).get_backend_name() == "postgresql"


@asynccontextmanager
async def startup_lock(url: str) -> AsyncIterator[None]:
    """Hold PostgreSQL's start-up lock: processes starting together migrate one at a time.

    Without it, three processes started at once on a new database collided in their
    migrations and each created its own first data key. SQLite needs none (one process).
    """
    if not is_postgresql(url):
        yield
        return
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.exec_driver_sql(f"SELECT pg_advisory_lock({STARTUP_LOCK})")
            try:
                yield
            finally:
                await connection.exec_driver_sql(f"SELECT pg_advisory_unlock({STARTUP_LOCK})")
    finally:
        await engine.dispose()


class AlreadyServed(Exception):
    """Another process already serves this SQLite database."""


@contextmanager
def single_process(url: str) -> Iterator[None]:
    """Refuse to serve a SQLite database that another process already serves.

    SQLite's per-minute limits, card lock and jobs live in one process's memory; a second
    process would post cards twice. The lock is the kernel's, so a killed process frees it.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        yield
        return
    ensure_sqlite_directory(url)
    path = f"{parsed.database}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AlreadyServed(
                f"Another bot process is already running on {parsed.database}; SQLite serves "
                "one process only: stop the other one, or use PostgreSQL to run several."
            ) from None
        yield
    finally:
        os.close(fd)
