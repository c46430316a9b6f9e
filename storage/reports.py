"""Repository functions for officers' reports: one tip's record, reminders, digests, stats."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Tip, TipStatus
from storage.queue import OPEN


@dataclass(frozen=True, slots=True)
class MonthStats:
    """What a ward received in a period, and how fast its tips were picked up."""

    received: int
    by_status: dict[str, int] = field(default_factory=dict)
    by_category: dict[str, int] = field(default_factory=dict)
    by_area: dict[str | None, int] = field(default_factory=dict)
    claimed: int = 0
    median_to_claim: timedelta | None = None


async def ward_tip(*, session: AsyncSession, ward_codes: Sequence[str], tip_id: int) -> Tip | None:
    """Return the tip with this number if it belongs to one of these wards, else None."""
    tip = await session.get(Tip, tip_id)
    return tip if tip is not None and tip.ward_code in ward_codes else None


def _due(due_before: datetime) -> ColumnElement[bool]:
    # Reminded tips count from their last reminder, the others from when they came in.
    return func.coalesce(col(Tip.reminded_at), col(Tip.created_at)) <= due_before


async def unclaimed_urgent(*, session: AsyncSession, due_before: datetime) -> Sequence[Tip]:
    """Return posted urgent tips nobody has claimed, not received or reminded since a moment."""
    found = await session.exec(
        select(Tip)
        .where(
            col(Tip.priority) == "urgent",
            col(Tip.status) == TipStatus.NEW.value,
            col(Tip.assignee_id).is_(None),
            col(Tip.card_message_id).is_not(None),
            _due(due_before),
        )
        .order_by(col(Tip.created_at), col(Tip.id))
    )
    return found.all()


async def mark_reminded(
    *, session: AsyncSession, tip_id: int, now: datetime, due_before: datetime
) -> bool:
    """Stamp a reminder on a tip still due for one; return whether this call stamped it.

    The condition is in the UPDATE, so two runs of the job (or two bot processes) cannot
    both remind. The card is unchanged, so neither its version nor updated_at moves.
    """
    result = await session.exec(
        update(Tip)
        .where(
            col(Tip.id) == tip_id,
            col(Tip.assignee_id).is_(None),
            col(Tip.status) == TipStatus.NEW.value,
            _due(due_before),
        )
        .values(reminded_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)


async def open_since(
    *, session: AsyncSession, ward_code: str, received_before: datetime
) -> Sequence[Tip]:
    """Return the ward's open tips received before a moment, oldest first."""
    found = await session.exec(
        select(Tip)
        .where(
            col(Tip.ward_code) == ward_code,
            col(Tip.status).in_([s.value for s in OPEN]),
            col(Tip.created_at) < received_before,
        )
        .order_by(col(Tip.created_at), col(Tip.id))
    )
    return found.all()


async def month_stats(
    *, session: AsyncSession, ward_code: str, start: datetime, end: datetime
) -> MonthStats:
    """Count the tips received in [start, end) and time the claims made in it."""
    received = (
        col(Tip.ward_code) == ward_code,
        col(Tip.created_at) >= start,
        col(Tip.created_at) < end,
    )

    async def count_by(column: object) -> dict[object, int]:
        rows = await session.exec(
            select(column, func.count()).where(*received).group_by(column)  # type: ignore[call-overload]
        )
        # Most first, then by name with "unknown" last (databases disagree on where NULL goes).
        ranked = sorted(rows.all(), key=lambda row: (-row[1], row[0] is None, str(row[0])))
        return {key: int(n) for key, n in ranked}

    by_status = await count_by(col(Tip.status))
    by_category = await count_by(col(Tip.category))
    by_area = await count_by(col(Tip.area))
    claims = await session.exec(
        select(Tip.created_at, Tip.claimed_at).where(
            col(Tip.ward_code) == ward_code,
            col(Tip.claimed_at) >= start,
            col(Tip.claimed_at) < end,
        )
    )
    waits = sorted(claimed - created for created, claimed in claims.all() if claimed is not None)
    return MonthStats(
        received=sum(by_status.values()),
        by_status={str(getattr(k, "value", k)): n for k, n in by_status.items()},
        by_category={str(getattr(k, "value", k)): n for k, n in by_category.items()},
        by_area={(str(k) if k is not None else None): n for k, n in by_area.items()},
        claimed=len(waits),
        median_to_claim=_median(waits),
    )


def _median(spans: Sequence[timedelta]) -> timedelta | None:
    """Return the middle of sorted durations (the mean of the two middle ones if even)."""
    if not spans:
        return None
    middle = len(spans) // 2
    return spans[middle] if len(spans) % 2 else (spans[middle - 1] + spans[middle]) / 2
