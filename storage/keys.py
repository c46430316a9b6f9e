"""Data keys: loading them, sealing what older versions stored plain, rotating."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import sqlalchemy as sa
from sqlmodel import col, delete, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.crypto import Keyring, SealError, new_data_key
from storage.models import ContactLink, DataKey, Subscription
from storage.sealed import MARK, Sealed, keyring_of, prefix

log = logging.getLogger(__name__)

# A retired key is deleted only this long after everything was sealed anew, so a turn that
# sealed with it just before the switch has committed and been sealed again by then.
RETIRED_GRACE: Final = timedelta(minutes=5)
BATCH: Final = 500


class WrongSecretKey(Exception):
    """The secret key in use is not the one this database's data keys were wrapped with."""


async def load(*, session: AsyncSession, keyring: Keyring, now: datetime) -> int:
    """Install the database's data keys in the keyring, creating the first; return the current.

    The current key is the newest one not retired; retired ones still open what they sealed.
    """
    rows = (await session.exec(select(DataKey).order_by(col(DataKey.id)))).all()
    if not any(row.retired_at is None for row in rows):
        session.add(DataKey(wrapped=keyring.wrap(new_data_key()), created_at=now))
        await session.flush()
        # Two processes starting at once may each add one: both keep every key and seal
        # with the newest, so they agree after this read.
        rows = (await session.exec(select(DataKey).order_by(col(DataKey.id)))).all()
    try:
        keys = {row.id: keyring.unwrap(row.wrapped) for row in rows if row.id is not None}
    except SealError as error:
        raise WrongSecretKey(
            "the secret key (HOMTHU_SECRET_KEY or data/secret.key) is not the one this "
            "database was created with; nothing sealed can be read without it"
        ) from error
    current = max(row.id for row in rows if row.id is not None and row.retired_at is None)
    keyring.install(keys, current=current)
    return current


@dataclass(frozen=True)
class SealedColumn:
    """A column of sealed content, in its table."""

    table: sa.Table
    column: sa.Column[Any]

    @property
    def kind(self) -> Sealed:
        """The column's sealed type."""
        kind = self.column.type
        assert isinstance(kind, Sealed)
        return kind

    @property
    def name(self) -> str:
        """``table.column``."""
        return f"{self.table.name}.{self.column.name}"


def sealed_columns(metadata: sa.MetaData) -> Iterator[SealedColumn]:
    """Every sealed column of every table, in a stable order."""
    for table in metadata.sorted_tables:
        for column in table.columns:
            if isinstance(column.type, Sealed):
                yield SealedColumn(table, column)


async def reseal(
    *, session: AsyncSession, metadata: sa.MetaData, everything: bool
) -> dict[str, int]:
    """Seal stored content with the current data key; return how many values per column.

    With ``everything`` false, only values stored plain (by a version before sealing) are
    sealed: one cheap query per column, run at every start. With it true, every value not
    under the current key is opened and sealed again: the work of a rotation.
    """
    keyring = keyring_of(session.get_bind().dialect)
    current = keyring.current_key_id
    counts: dict[str, int] = {}
    for sealed in sealed_columns(metadata):
        stored = sa.type_coerce(sealed.column, sa.Text)
        keys = list(sealed.table.primary_key.columns)
        pattern = f"{prefix(current)}%" if everything else f"{MARK}%"
        query = sa.select(*keys, stored).where(stored.is_not(None), stored.not_like(pattern))
        rows = (await session.exec(query)).all()  # type: ignore[call-overload]
        # One executemany per batch: a statement per value is ten times slower on SQLite.
        statement = (
            sa.update(sealed.table)
            .where(*(k == sa.bindparam(f"key_{k.name}") for k in keys))
            .values({sealed.column.name: sa.bindparam("sealed_value", type_=sealed.kind)})
        )
        for start in range(0, len(rows), BATCH):
            batch = [
                {
                    **{f"key_{k.name}": v for k, v in zip(keys, identity, strict=True)},
                    "sealed_value": (
                        sealed.kind.open(value, keyring)
                        if value.startswith(MARK)
                        else sealed.kind.from_plain(value)
                    ),
                }
                for *identity, value in rows[start : start + BATCH]
            ]
            connection = await session.connection()
            await connection.execute(statement, batch)
        if rows:
            counts[sealed.name] = len(rows)
    if everything:
        counts.update(await _reseal_addresses(session, keyring, current))
    return counts


async def _reseal_addresses(
    session: AsyncSession, keyring: Keyring, current: int
) -> dict[str, int]:
    """Seal contact links and subscribers' addresses again under the current key."""
    counts = {"contact_links.sealed": 0, "subscriptions.sealed_chat": 0}
    for link in (await session.exec(select(ContactLink))).all():
        if keyring.key_id_of(link.sealed) != current:
            context = f"contact:{link.tip_id}"
            link.sealed = keyring.seal(keyring.open(link.sealed, context=context), context=context)
            session.add(link)
            counts["contact_links.sealed"] += 1
    for row in (await session.exec(select(Subscription))).all():
        if keyring.key_id_of(row.sealed_chat) != current:
            context = f"subscription:{row.chat_key}"
            opened = keyring.open(row.sealed_chat, context=context)
            row.sealed_chat = keyring.seal(opened, context=context)
            session.add(row)
            counts["subscriptions.sealed_chat"] += 1
    await session.flush()
    return {name: count for name, count in counts.items() if count}


@dataclass(frozen=True)
class RotationReport:
    """What a rotation did."""

    new_key: int
    retired: int
    resealed: dict[str, int]


async def rotate(*, session: AsyncSession, metadata: sa.MetaData, now: datetime) -> RotationReport:
    """Retire the data keys in use, seal everything under a new one, in one transaction.

    The retired keys are deleted later by ``finish_rotation`` (the bot runs it every minute
    and at start), once a running bot has switched to the new key as well.
    """
    keyring = keyring_of(session.get_bind().dialect)
    await load(session=session, keyring=keyring, now=now)
    retired = await session.exec(
        update(DataKey).where(col(DataKey.retired_at).is_(None)).values(retired_at=now)
    )
    current = await load(session=session, keyring=keyring, now=now)
    counts = await reseal(session=session, metadata=metadata, everything=True)
    return RotationReport(new_key=current, retired=retired.rowcount, resealed=counts)


async def finish_rotation(*, session: AsyncSession, metadata: sa.MetaData, now: datetime) -> int:
    """Switch to the newest key, seal what is left under retired ones, and delete those.

    Return how many keys were deleted. Cheap when no rotation is pending: one small query.
    """
    keyring = keyring_of(session.get_bind().dialect)
    await load(session=session, keyring=keyring, now=now)
    retired = (
        await session.exec(select(DataKey).where(col(DataKey.retired_at).is_not(None)))
    ).all()
    if not retired:
        return 0
    resealed = await reseal(session=session, metadata=metadata, everything=True)
    if resealed:
        log.info("Sealed %d value(s) left under a retired key", sum(resealed.values()))
    due = [row.id for row in retired if row.retired_at and row.retired_at <= now - RETIRED_GRACE]
    if not due:
        return 0
    await session.exec(delete(DataKey).where(col(DataKey.id).in_(due)))
    await load(session=session, keyring=keyring, now=now)
    log.info("Deleted %d retired data key(s)", len(due))
    return len(due)
