"""Repository functions: every read and write the use cases need, keyword-only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import dialect_insert
from storage.models import (
    AttachmentKind,
    ChatState,
    ContactLink,
    Draft,
    Throttle,
    Tip,
    TipAttachment,
    TipBase,
)


class DraftConflict(Exception):
    """Another process changed the same draft since it was read; read it again."""


@dataclass(frozen=True, slots=True)
class AttachmentIn:
    """A file to store with a new tip."""

    kind: AttachmentKind
    file_id: str
    file_name: str | None = None
    mime_type: str | None = None


async def get_draft(*, session: AsyncSession, chat_key: str) -> Draft | None:
    """Return the chat's draft, if it has one."""
    return await session.get(Draft, chat_key)


async def save_draft(
    *,
    session: AsyncSession,
    chat_key: str,
    step: str,
    data: dict[str, Any],
    version: int | None,
    now: datetime,
) -> int:
    """Insert or update a draft, refusing to overwrite a newer one; return its new version.

    ``version`` is the version that was read (None for a new draft). A guarded update
    instead of a lock keeps several bot processes correct without holding rows.
    """
    if version is None:
        session.add(Draft(chat_key=chat_key, step=step, data=data, version=1, updated_at=now))
        await session.flush()
        return 1
    result = await session.exec(
        update(Draft)
        .where(col(Draft.chat_key) == chat_key, col(Draft.version) == version)
        .values(step=step, data=data, version=version + 1, updated_at=now)
    )
    if result.rowcount != 1:
        raise DraftConflict(chat_key)
    return version + 1


async def delete_draft(*, session: AsyncSession, chat_key: str) -> bool:
    """Delete the chat's draft; return whether there was one."""
    result = await session.exec(delete(Draft).where(col(Draft.chat_key) == chat_key))
    return bool(result.rowcount)


async def purge_drafts(*, session: AsyncSession, untouched_since: datetime) -> int:
    """Delete drafts nobody has touched since a moment; return how many."""
    result = await session.exec(delete(Draft).where(col(Draft.updated_at) < untouched_since))
    return int(result.rowcount)


async def get_chat_state(*, session: AsyncSession, chat_key: str) -> ChatState | None:
    """Return the chat's language and awaited input, if any were stored."""
    return await session.get(ChatState, chat_key)


async def set_chat_state(
    *, session: AsyncSession, chat_key: str, now: datetime, **changes: str | None
) -> ChatState:
    """Change the chat's language or awaited input, creating the row when needed."""
    state = await session.get(ChatState, chat_key)
    if state is None:
        state = ChatState(chat_key=chat_key, updated_at=now)
    for name, value in changes.items():
        setattr(state, name, value)
    state.updated_at = now
    session.add(state)
    await session.flush()
    return state


async def create_tip(
    *,
    session: AsyncSession,
    tip_in: TipBase,
    receipt_hash: str,
    attachments: Sequence[AttachmentIn],
    contact_sealer: Any | None,
    now: datetime,
    priority: str = "normal",
    flags: Sequence[dict[str, str]] = (),
    sender_tag: str | None = None,
) -> Tip:
    """Store a tip, in one INSERT with its triage and sender tag, then its attachments and,
    when given, its sealed contact link.

    ``contact_sealer`` is a callable from the new tip's id to the sealed bytes: the seal is
    bound to the id, which only exists once the row is flushed.
    """
    tip = Tip.model_validate(
        tip_in,
        update={
            "receipt_hash": receipt_hash,
            "attachment_count": len(attachments),
            "priority": priority,
            "flags": list(flags),
            "sender_tag": sender_tag,
            "created_at": now,
            "updated_at": now,
        },
    )
    session.add(tip)
    await session.flush()
    assert tip.id is not None
    for position, item in enumerate(attachments, start=1):
        session.add(
            TipAttachment(
                tip_id=tip.id,
                position=position,
                kind=item.kind,
                file_id=item.file_id,
                file_name=item.file_name,
                mime_type=item.mime_type,
            )
        )
    if contact_sealer is not None:
        session.add(ContactLink(tip_id=tip.id, sealed=contact_sealer(tip.id), created_at=now))
    await session.flush()
    return tip


async def find_tip_by_receipt(*, session: AsyncSession, receipt_hash: str) -> Tip | None:
    """Return the tip stored under a receipt's keyed hash."""
    found = await session.exec(select(Tip).where(col(Tip.receipt_hash) == receipt_hash))
    return found.first()


async def get_tip(*, session: AsyncSession, tip_id: int) -> Tip | None:
    """Return a tip by its reference number."""
    return await session.get(Tip, tip_id)


async def get_contact_link(*, session: AsyncSession, tip_id: int) -> ContactLink | None:
    """Return the sealed way back to a tip's sender, if they allowed contact."""
    return await session.get(ContactLink, tip_id)


async def tips_to_post(*, session: AsyncSession, limit: int = 20) -> Sequence[Tip]:
    """Return tips whose card or attachments have not all reached the officers yet."""
    pending_attachment = select(TipAttachment.tip_id).where(
        col(TipAttachment.posted_message_id).is_(None)
    )
    found = await session.exec(
        select(Tip)
        .where(col(Tip.posted_at).is_(None) | col(Tip.id).in_(pending_attachment))
        .order_by(col(Tip.id))
        .limit(limit)
    )
    return found.all()


async def attachments_of(*, session: AsyncSession, tip_id: int) -> Sequence[TipAttachment]:
    """Return a tip's attachments in the order they were sent."""
    found = await session.exec(
        select(TipAttachment)
        .where(col(TipAttachment.tip_id) == tip_id)
        .order_by(col(TipAttachment.position))
    )
    return found.all()


async def mark_card_posted(
    *, session: AsyncSession, tip_id: int, message_id: str, now: datetime
) -> None:
    """Record where a tip's card landed in the officers' group."""
    await session.exec(
        update(Tip)
        .where(col(Tip.id) == tip_id)
        .values(card_message_id=message_id, posted_at=now)
        # A caller may hold the tip it read; expiring it would break async attribute reads.
        .execution_options(synchronize_session=False)
    )


async def mark_attachment_posted(
    *, session: AsyncSession, attachment_id: int, message_id: str
) -> None:
    """Record that an attachment reached the officers' group."""
    await session.exec(
        update(TipAttachment)
        .where(col(TipAttachment.id) == attachment_id)
        .values(posted_message_id=message_id)
    )


async def count_in_window(
    *, session: AsyncSession, chat_key: str, scope: str, window: timedelta, now: datetime
) -> int:
    """Return how often this sender did ``scope`` in the current window."""
    count, _ = await window_state(
        session=session, chat_key=chat_key, scope=scope, window=window, now=now
    )
    return count


async def window_state(
    *, session: AsyncSession, chat_key: str, scope: str, window: timedelta, now: datetime
) -> tuple[int, datetime]:
    """Return how often this sender did ``scope`` in the current window, and when it ends."""
    row = await session.get(Throttle, (chat_key, scope))
    if row is None or row.window_start + window <= now:
        return 0, now + window
    return row.count, row.window_start + window


async def record_in_window(
    *, session: AsyncSession, chat_key: str, scope: str, window: timedelta, now: datetime
) -> int:
    """Count one more ``scope`` for this sender, starting a new window when due; return the count.

    One upsert, so two processes counting at once cannot both read the old value.
    """
    insert = dialect_insert(session)
    expired = col(Throttle.window_start) <= now - window
    statement = (
        insert(Throttle)
        .values(chat_key=chat_key, scope=scope, window_start=now, count=1)
        .on_conflict_do_update(
            index_elements=["chat_key", "scope"],
            set_={
                "count": case((expired, 1), else_=col(Throttle.count) + 1),
                "window_start": case((expired, now), else_=col(Throttle.window_start)),
            },
        )
        .returning(col(Throttle.count))
    )
    result = await session.exec(statement)
    return int(result.scalar_one())
