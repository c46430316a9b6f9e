"""Retention: forgetting the way back to a sender, then what they reported, after closing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import (
    ContactLink,
    GroupPrompt,
    Throttle,
    Tip,
    TipAttachment,
    TipEvent,
    TipMessage,
)


@dataclass(frozen=True)
class Purged:
    """What one retention run deleted."""

    contact_links: int
    tips: int
    counters: int = 0


def _closed_before(cutoff: datetime) -> Any:
    return select(Tip.id).where(col(Tip.closed_at).is_not(None), col(Tip.closed_at) <= cutoff)


async def forget_contacts(*, session: AsyncSession, closed_before: datetime) -> int:
    """Delete the contact links of tips closed before ``closed_before``; return how many."""
    result = await session.exec(
        delete(ContactLink).where(col(ContactLink.tip_id).in_(_closed_before(closed_before)))
    )
    return result.rowcount


async def forget_contact(*, session: AsyncSession, tip_id: int) -> bool:
    """Delete one tip's contact link, as its sender asked; return whether there was one."""
    result = await session.exec(delete(ContactLink).where(col(ContactLink.tip_id) == tip_id))
    return bool(result.rowcount)


async def forget_counters(*, session: AsyncSession, started_before: datetime) -> int:
    """Delete abuse counters whose window began before ``started_before``; return how many.

    They name nobody, but a counter kept forever would say a chat was active long ago.
    """
    result = await session.exec(
        delete(Throttle).where(col(Throttle.window_start) < started_before)
    )
    return result.rowcount


async def purge_content(*, session: AsyncSession, closed_before: datetime, now: datetime) -> int:
    """Empty the words, place and attachments of tips closed before ``closed_before``.

    What statistics need stays: ward, category, area, status, priority, flags, times and the
    audit trail of who did what (without the words of notes and questions). Return how many
    tips were purged.
    """
    due = (
        await session.exec(
            select(Tip.id).where(
                col(Tip.id).in_(_closed_before(closed_before)), col(Tip.purged_at).is_(None)
            )
        )
    ).all()
    if not due:
        return 0
    ids = list(due)
    for table, key in (
        (TipAttachment, TipAttachment.tip_id),
        (TipMessage, TipMessage.tip_id),
        (GroupPrompt, GroupPrompt.tip_id),
        (ContactLink, ContactLink.tip_id),
    ):
        await session.exec(delete(table).where(col(key).in_(ids)))
    await session.exec(update(TipEvent).where(col(TipEvent.tip_id).in_(ids)).values(detail=None))
    await session.exec(
        update(Tip)
        .where(col(Tip.id).in_(ids))
        .values(text="", place=None, latitude=None, longitude=None, purged_at=now)
        .execution_options(synchronize_session=False)
    )
    return len(ids)
