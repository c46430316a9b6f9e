"""Repository functions of monthly broadcasts: subscriptions, broadcasts and their outbox."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, literal, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import dialect_insert
from storage.models import Broadcast, BroadcastStatus, Delivery, DeliveryStatus, Subscription

# Subscriptions


async def subscribe(
    *,
    session: AsyncSession,
    chat_key: str,
    sealed_chat: bytes,
    ward_code: str,
    area: str | None,
    language: str,
    now: datetime,
) -> Subscription:
    """Subscribe a chat, or change and re-activate its subscription; return the row."""
    values = {
        "sealed_chat": sealed_chat,
        "ward_code": ward_code,
        "area": area,
        "language": language,
        "active": True,
        "ended_at": None,
        "end_reason": None,
    }
    insert = dialect_insert(session)(Subscription).values(
        chat_key=chat_key, created_at=now, **values
    )
    await session.exec(insert.on_conflict_do_update(index_elements=["chat_key"], set_=values))
    subscription = await get_subscription(session=session, chat_key=chat_key)
    assert subscription is not None
    return subscription


async def unsubscribe(*, session: AsyncSession, chat_key: str, now: datetime, reason: str) -> bool:
    """End a chat's subscription at once; return whether it was active."""
    result = await session.exec(
        update(Subscription)
        .where(col(Subscription.chat_key) == chat_key, col(Subscription.active).is_(True))
        .values(active=False, ended_at=now, end_reason=reason[:16])
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)


async def get_subscription(*, session: AsyncSession, chat_key: str) -> Subscription | None:
    """Return a chat's subscription, active or not."""
    result = await session.exec(select(Subscription).where(Subscription.chat_key == chat_key))
    return result.first()


# Broadcasts


async def get_broadcast(*, session: AsyncSession, broadcast_id: int) -> Broadcast | None:
    """Return one broadcast."""
    return await session.get(Broadcast, broadcast_id)


async def list_broadcasts(*, session: AsyncSession, limit: int = 50) -> Sequence[Broadcast]:
    """Return the latest broadcasts, newest first."""
    result = await session.exec(select(Broadcast).order_by(col(Broadcast.id).desc()).limit(limit))
    return result.all()


async def month_broadcasts(
    *, session: AsyncSession, month: str, ward_code: str | None = None
) -> Sequence[Broadcast]:
    """Return a month's scheduled broadcasts not yet finished or cancelled, by ward."""
    query = select(Broadcast).where(
        col(Broadcast.month) == month,
        col(Broadcast.status).in_([BroadcastStatus.SCHEDULED, BroadcastStatus.RUNNING]),
    )
    if ward_code is not None:
        query = query.where(col(Broadcast.ward_code) == ward_code)
    result = await session.exec(query.order_by(col(Broadcast.id)))
    return result.all()


async def delivery_counts(
    *, session: AsyncSession, broadcast_ids: Sequence[int]
) -> dict[int, dict[DeliveryStatus, int]]:
    """Return, per broadcast, how many deliveries are in each status."""
    result = await session.exec(
        select(Delivery.broadcast_id, Delivery.status, func.count())
        .where(col(Delivery.broadcast_id).in_(broadcast_ids))
        .group_by(col(Delivery.broadcast_id), col(Delivery.status))
    )
    counts: dict[int, dict[DeliveryStatus, int]] = {id_: {} for id_ in broadcast_ids}
    for broadcast_id, status, count in result.all():
        counts[broadcast_id][DeliveryStatus(status)] = count
    return counts


async def enqueue(*, session: AsyncSession, broadcast: Broadcast, now: datetime) -> int:
    """Write one pending delivery per active subscriber in the audience; mark it running.

    Subscribers who already have a row keep it, so running this twice adds only those who
    subscribed since. Returns how many rows were added.
    """
    assert broadcast.id is not None
    audience = select(
        literal(broadcast.id),
        col(Subscription.id),
        literal(DeliveryStatus.PENDING.value),
        literal(0),
    ).where(col(Subscription.active).is_(True))
    if broadcast.ward_code is not None:
        audience = audience.where(col(Subscription.ward_code) == broadcast.ward_code)
    if broadcast.area is not None:
        audience = audience.where(col(Subscription.area) == broadcast.area)
    insert = (
        dialect_insert(session)(Delivery)
        .from_select(["broadcast_id", "subscription_id", "status", "attempts"], audience)
        .on_conflict_do_nothing(index_elements=["broadcast_id", "subscription_id"])
    )
    result = await session.exec(insert)
    await session.exec(
        update(Broadcast)
        .where(col(Broadcast.id) == broadcast.id)
        .values(
            status=BroadcastStatus.RUNNING,
            started_at=func.coalesce(col(Broadcast.started_at), now),
            finished_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)


async def finish(*, session: AsyncSession, broadcast_id: int, now: datetime) -> None:
    """Mark a running broadcast done."""
    await session.exec(
        update(Broadcast)
        .where(col(Broadcast.id) == broadcast_id, col(Broadcast.status) == BroadcastStatus.RUNNING)
        .values(status=BroadcastStatus.DONE, finished_at=now)
        .execution_options(synchronize_session=False)
    )


async def save_broadcast(*, session: AsyncSession, broadcast: Broadcast) -> int:
    """Store a new broadcast, or the changes to one, now; return its id."""
    session.add(broadcast)
    await session.flush()
    assert broadcast.id is not None
    return broadcast.id


async def delete_broadcast(*, session: AsyncSession, broadcast: Broadcast) -> None:
    """Delete a broadcast that was never sent (a supervisor's dropped draft)."""
    await session.delete(broadcast)


async def due_composed(*, session: AsyncSession, now: datetime) -> list[int]:
    """Return the ids of supervisors' scheduled broadcasts whose time has come."""
    result = await session.exec(
        select(Broadcast.id).where(
            col(Broadcast.status) == BroadcastStatus.SCHEDULED,
            col(Broadcast.month).is_(None),
            col(Broadcast.scheduled_at) <= now,
        )
    )
    return [id_ for id_ in result.all() if id_ is not None]


async def running_broadcasts(*, session: AsyncSession) -> Sequence[int]:
    """Return the ids of broadcasts whose delivery started and has not finished."""
    result = await session.exec(
        select(Broadcast.id)
        .where(col(Broadcast.status) == BroadcastStatus.RUNNING)
        .order_by(col(Broadcast.id))
    )
    return [id_ for id_ in result.all() if id_ is not None]


# The outbox


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery a sender took, with where to send it (still sealed)."""

    delivery_id: int
    subscription_id: int
    chat_key: str
    sealed_chat: bytes


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one claimed delivery."""

    delivery_id: int
    status: DeliveryStatus
    attempts: int = 0
    error: str | None = None
    subscription_id: int | None = None


async def requeue_sending(*, session: AsyncSession, broadcast_id: int) -> int:
    """Put back rows left claimed by a run that died; only call with no sender running."""
    result = await session.exec(
        update(Delivery)
        .where(
            col(Delivery.broadcast_id) == broadcast_id,
            col(Delivery.status) == DeliveryStatus.SENDING,
        )
        .values(status=DeliveryStatus.PENDING, claimed_at=None)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)


async def count_pending(*, session: AsyncSession, broadcast_id: int) -> int:
    """Return how many deliveries of a broadcast are waiting to be sent."""
    result = await session.exec(
        select(func.count()).where(
            col(Delivery.broadcast_id) == broadcast_id,
            col(Delivery.status) == DeliveryStatus.PENDING,
        )
    )
    return int(result.one())


async def claim(
    *, session: AsyncSession, broadcast_id: int, limit: int, now: datetime
) -> list[Claimed]:
    """Take up to ``limit`` pending deliveries to active subscribers, marking them sending.

    Nothing is taken once the broadcast is no longer running (cancelled).

    PostgreSQL skips rows another transaction is claiming; SQLite's write lock, taken at
    BEGIN, already lets one claim run at a time.
    """
    query = (
        select(Delivery.id, Subscription.id, Subscription.chat_key, Subscription.sealed_chat)
        .join(Subscription, col(Subscription.id) == col(Delivery.subscription_id))
        .join(Broadcast, col(Broadcast.id) == col(Delivery.broadcast_id))
        .where(
            col(Delivery.broadcast_id) == broadcast_id,
            col(Delivery.status) == DeliveryStatus.PENDING,
            col(Subscription.active).is_(True),
            # A supervisor's cancel stops the senders at their next claim.
            col(Broadcast.status) == BroadcastStatus.RUNNING,
        )
        .order_by(col(Delivery.id))
        .limit(limit)
        .with_for_update(skip_locked=True, of=Delivery)
    )
    rows = (await session.exec(query)).all()
    claimed = [Claimed(d, s, k, bytes(c)) for d, s, k, c in rows if d is not None and s]
    if claimed:
        await session.exec(
            update(Delivery)
            .where(col(Delivery.id).in_([c.delivery_id for c in claimed]))
            .values(status=DeliveryStatus.SENDING, claimed_at=now)
            .execution_options(synchronize_session=False)
        )
    return claimed


async def drop_unsubscribed(*, session: AsyncSession, broadcast_id: int) -> int:
    """Mark pending rows of residents who unsubscribed since the outbox was written."""
    gone = select(Subscription.id).where(col(Subscription.active).is_(False))
    result = await session.exec(
        update(Delivery)
        .where(
            col(Delivery.broadcast_id) == broadcast_id,
            col(Delivery.status) == DeliveryStatus.PENDING,
            col(Delivery.subscription_id).in_(gone),
        )
        .values(status=DeliveryStatus.UNSUBSCRIBED)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)


async def record(*, session: AsyncSession, outcomes: Sequence[Outcome], now: datetime) -> None:
    """Write the outcomes of sends; a blocked recipient's subscription ends with them."""
    by_status: dict[tuple[DeliveryStatus, int, str | None], list[int]] = {}
    for outcome in outcomes:
        key = (outcome.status, outcome.attempts, outcome.error)
        by_status.setdefault(key, []).append(outcome.delivery_id)
    for (status, attempts, error), ids in by_status.items():
        values: dict[str, Any] = {"status": status, "error": error}
        if status is DeliveryStatus.SENT:
            values["sent_at"] = now
        if status is DeliveryStatus.PENDING:
            values["claimed_at"] = None
        if attempts:
            values["attempts"] = col(Delivery.attempts) + attempts
        await session.exec(
            update(Delivery)
            .where(col(Delivery.id).in_(ids))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
    blocked = [o.subscription_id for o in outcomes if o.status is DeliveryStatus.UNSUBSCRIBED]
    if blocked:
        await session.exec(
            update(Subscription)
            .where(col(Subscription.id).in_(blocked), col(Subscription.active).is_(True))
            .values(active=False, ended_at=now, end_reason="blocked")
            .execution_options(synchronize_session=False)
        )


# Coverage: the plans' KPI


async def coverage(
    *, session: AsyncSession, month_start: datetime, month_end: datetime, ward_code: str
) -> list[tuple[str | None, int, int]]:
    """Return, per area, active subscribers and how many got a message in the month."""
    reached = (
        select(col(Delivery.subscription_id).label("subscription_id"))
        .where(
            col(Delivery.status) == DeliveryStatus.SENT,
            col(Delivery.sent_at) >= month_start,
            col(Delivery.sent_at) < month_end,
        )
        .distinct()
        .subquery()
    )
    result = await session.exec(
        select(
            Subscription.area,
            func.count(col(Subscription.id)),
            func.count(reached.c.subscription_id),
        )
        .select_from(Subscription)
        .outerjoin(reached, and_(reached.c.subscription_id == col(Subscription.id)))
        .where(col(Subscription.active).is_(True), col(Subscription.ward_code) == ward_code)
        .group_by(col(Subscription.area))
        .order_by(col(Subscription.area))
    )
    return [(area, int(active), int(got)) for area, active, got in result.all()]


async def forget_subscriber(*, session: AsyncSession, chat_key: str, now: datetime) -> bool:
    """End a chat's subscription and delete its sealed address (the person left the channel)."""
    result = await session.exec(
        update(Subscription)
        .where(col(Subscription.chat_key) == chat_key)
        .values(active=False, sealed_chat=b"", ended_at=now, end_reason="left")
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)
