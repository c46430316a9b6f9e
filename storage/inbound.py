"""Webhook deliveries already accepted: a repeat is recognised by any process."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import col, delete
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import dialect_insert
from storage.models import SeenUpdate


async def first_delivery(
    *, session: AsyncSession, source: str, update_id: str, now: datetime
) -> bool:
    """Record an update as accepted; False when it was already (a platform's retry)."""
    statement = (
        dialect_insert(session)(SeenUpdate)
        .values(source=source, update_id=update_id, received_at=now)
        .on_conflict_do_nothing()
    )
    result = await session.exec(statement)
    return bool(result.rowcount)


async def forget_seen(*, session: AsyncSession, before: datetime) -> int:
    """Forget updates accepted before ``before``; return how many."""
    result = await session.exec(delete(SeenUpdate).where(col(SeenUpdate.received_at) < before))
    return int(result.rowcount)
