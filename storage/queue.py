"""Repository functions of the officers' queue: claims, statuses, audit log, relay, blocks."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

from sqlalchemy import case, delete, func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import dialect_insert
from storage.models import (
    GroupPrompt,
    Officer,
    SenderBlock,
    Tip,
    TipEvent,
    TipMessage,
    TipStatus,
)

PRIORITY_ORDER: Final = ("urgent", "high", "normal", "low")
OPEN: Final = (TipStatus.NEW, TipStatus.ACKNOWLEDGED, TipStatus.VERIFYING, TipStatus.REFERRED)


def _update_tip(tip_id: int) -> Any:
    # The caller keeps the row it read as the "before" of the change; synchronising would
    # expire it, and reading an expired row in async code fails (MissingGreenlet).
    return update(Tip).where(col(Tip.id) == tip_id).execution_options(synchronize_session=False)


def _changed(now: datetime, last_action: str) -> dict[str, Any]:
    """The columns every change to a tip sets: a new card version, the time, what happened."""
    return {
        "card_version": col(Tip.card_version) + 1,
        "updated_at": now,
        "last_action": last_action[:200],
    }


async def claim(
    *,
    session: AsyncSession,
    tip_id: int,
    officer_id: int,
    officer_name: str,
    now: datetime,
    last_action: str,
) -> bool:
    """Make an officer the tip's handler if nobody is; return whether this call won.

    The condition is in the UPDATE itself, so of two officers pressing at once exactly one
    row update succeeds, whatever the number of bot processes.
    """
    result = await session.exec(
        _update_tip(tip_id)
        .where(col(Tip.assignee_id).is_(None))
        .values(
            assignee_id=officer_id,
            assignee_name=officer_name[:128],
            claimed_at=now,
            status=case(
                (col(Tip.status) == TipStatus.NEW.value, TipStatus.ACKNOWLEDGED.value),
                else_=col(Tip.status),
            ),
            **_changed(now, last_action),
        )
    )
    return bool(result.rowcount)


async def assign(
    *,
    session: AsyncSession,
    tip_id: int,
    officer_id: int,
    officer_name: str,
    now: datetime,
    last_action: str,
) -> None:
    """Give the tip to an officer (a supervisor's decision, whoever had it before)."""
    await session.exec(
        _update_tip(tip_id).values(
            assignee_id=officer_id,
            assignee_name=officer_name[:128],
            claimed_at=func.coalesce(col(Tip.claimed_at), now),
            **_changed(now, last_action),
        )
    )


async def set_status(
    *,
    session: AsyncSession,
    tip_id: int,
    status: TipStatus,
    closed: bool,
    now: datetime,
    last_action: str,
) -> None:
    """Change a tip's status; a closing status stamps the time it was closed."""
    await session.exec(
        _update_tip(tip_id).values(
            status=status, closed_at=now if closed else None, **_changed(now, last_action)
        )
    )


async def touch(*, session: AsyncSession, tip_id: int, now: datetime, last_action: str) -> None:
    """Record that something happened to a tip (a note, a question) for its card."""
    await session.exec(_update_tip(tip_id).values(**_changed(now, last_action)))


async def set_pinned(*, session: AsyncSession, tip_id: int, pinned: bool) -> None:
    """Record whether the tip's card is pinned in its group."""
    await session.exec(_update_tip(tip_id).values(pinned=pinned))


async def set_triage(
    *, session: AsyncSession, tip_id: int, priority: str, flags: list[dict[str, str]]
) -> None:
    """Store the priority and flags the triage rules gave a tip."""
    await session.exec(_update_tip(tip_id).values(priority=priority, flags=flags))


async def add_event(
    *,
    session: AsyncSession,
    tip_id: int,
    at: datetime,
    action: str,
    actor_id: int | None = None,
    actor_name: str | None = None,
    before: str | None = None,
    after: str | None = None,
    detail: str | None = None,
) -> None:
    """Append one entry to a tip's audit log (entries are never changed or removed)."""
    session.add(
        TipEvent(
            tip_id=tip_id,
            at=at,
            actor_id=actor_id,
            # Cut to their columns: a before/after can be an officer's name.
            actor_name=actor_name[:128] if actor_name else actor_name,
            action=action,
            before=before[:64] if before else before,
            after=after[:64] if after else after,
            detail=detail,
        )
    )
    await session.flush()


async def events_of(*, session: AsyncSession, tip_id: int) -> Sequence[TipEvent]:
    """Return a tip's audit log, oldest first."""
    found = await session.exec(
        select(TipEvent).where(col(TipEvent.tip_id) == tip_id).order_by(col(TipEvent.id))
    )
    return found.all()


async def remember_officer(
    *, session: AsyncSession, user_id: int, name: str, now: datetime
) -> None:
    """Keep the display name an officer has in the group, for cards and the assign list."""
    statement = (
        dialect_insert(session)(Officer)
        .values(user_id=user_id, name=name[:128], seen_at=now)
        .on_conflict_do_update(
            index_elements=["user_id"], set_={"name": name[:128], "seen_at": now}
        )
    )
    await session.exec(statement)


async def officer_names(*, session: AsyncSession, user_ids: Sequence[int]) -> dict[int, str]:
    """Return the known display names of these officers."""
    found = await session.exec(select(Officer).where(col(Officer.user_id).in_(list(user_ids))))
    return {officer.user_id: officer.name for officer in found.all()}


async def add_prompt(
    *,
    session: AsyncSession,
    group_chat: str,
    message_id: str,
    tip_id: int,
    kind: str,
    officer_id: int,
    now: datetime,
) -> None:
    """Remember what an officer's reply to this bot prompt will mean."""
    session.add(
        GroupPrompt(
            group_chat=group_chat,
            message_id=message_id,
            tip_id=tip_id,
            kind=kind,
            officer_id=officer_id,
            created_at=now,
        )
    )
    await session.flush()


async def take_prompt(
    *, session: AsyncSession, group_chat: str, message_id: str
) -> GroupPrompt | None:
    """Return and forget the prompt an officer replied to, if it is one of ours."""
    prompt = await session.get(GroupPrompt, (group_chat, message_id))
    if prompt is not None:
        await session.exec(
            delete(GroupPrompt).where(
                col(GroupPrompt.group_chat) == group_chat,
                col(GroupPrompt.message_id) == message_id,
            )
        )
    return prompt


async def find_tip_by_card(
    *, session: AsyncSession, ward_code: str, card_message_id: str
) -> Tip | None:
    """Return the tip whose card is this message in the ward's group."""
    found = await session.exec(
        select(Tip).where(
            col(Tip.ward_code) == ward_code, col(Tip.card_message_id) == card_message_id
        )
    )
    return found.first()


async def add_message(
    *,
    session: AsyncSession,
    tip_id: int,
    direction: str,
    text: str,
    at: datetime,
    officer_id: int | None = None,
    resident_ref: str | None = None,
    group_message_id: str | None = None,
    held_for: str | None = None,
) -> None:
    """Keep one message of the anonymous conversation about a tip."""
    session.add(
        TipMessage(
            tip_id=tip_id,
            direction=direction,
            text=text,
            at=at,
            officer_id=officer_id,
            resident_ref=resident_ref,
            group_message_id=group_message_id,
            held_for=held_for,
        )
    )
    await session.flush()


async def held_questions(*, session: AsyncSession, held_for: str) -> Sequence[TipMessage]:
    """Return the questions waiting for a sender to write again, oldest first."""
    found = await session.exec(
        select(TipMessage).where(col(TipMessage.held_for) == held_for).order_by(col(TipMessage.id))
    )
    return found.all()


async def release_question(
    *, session: AsyncSession, message_id: int | None, resident_ref: str
) -> None:
    """Mark a held question delivered: a reply to it now finds the tip."""
    question = await session.get(TipMessage, message_id)
    if question is not None:
        question.held_for = None
        question.resident_ref = resident_ref
        session.add(question)


async def find_question(*, session: AsyncSession, resident_ref: str) -> TipMessage | None:
    """Return the question a resident's reply answers, found by its keyed reference."""
    found = await session.exec(
        select(TipMessage).where(col(TipMessage.resident_ref) == resident_ref)
    )
    return found.first()


async def messages_of(*, session: AsyncSession, tip_id: int) -> Sequence[TipMessage]:
    """Return the conversation about a tip, oldest first."""
    found = await session.exec(
        select(TipMessage).where(col(TipMessage.tip_id) == tip_id).order_by(col(TipMessage.id))
    )
    return found.all()


async def block_sender(
    *, session: AsyncSession, sender_tag: str, until: datetime, tip_id: int, now: datetime
) -> None:
    """Stop a pseudonymous sender from sending tips until a date."""
    statement = (
        dialect_insert(session)(SenderBlock)
        .values(sender_tag=sender_tag, until=until, tip_id=tip_id, created_at=now)
        .on_conflict_do_update(
            index_elements=["sender_tag"], set_={"until": until, "tip_id": tip_id}
        )
    )
    await session.exec(statement)


async def blocked_until(*, session: AsyncSession, sender_tag: str | None) -> datetime | None:
    """Return until when a sender is blocked, if they are or were."""
    if sender_tag is None:
        return None
    block = await session.get(SenderBlock, sender_tag)
    return block.until if block else None


async def recent_texts(*, session: AsyncSession, sender_tag: str, since: datetime) -> list[str]:
    """Return the texts a sender's tips carried since a moment, for the duplicate check."""
    found = await session.exec(
        select(Tip.text).where(col(Tip.sender_tag) == sender_tag, col(Tip.created_at) >= since)
    )
    return list(found.all())


def priority_rank() -> Any:
    """An SQL expression ordering tips urgent first, low last."""
    return case(
        *((col(Tip.priority) == name, rank) for rank, name in enumerate(PRIORITY_ORDER)),
        else_=len(PRIORITY_ORDER),
    )


async def open_tips(
    *, session: AsyncSession, ward_code: str, offset: int, limit: int
) -> tuple[Sequence[Tip], int]:
    """Return a page of the ward's open tips, urgent first then oldest, and how many in all."""
    where = (col(Tip.ward_code) == ward_code, col(Tip.status).in_([s.value for s in OPEN]))
    found = await session.exec(
        select(Tip)
        .where(*where)
        .order_by(priority_rank(), col(Tip.created_at), col(Tip.id))
        .offset(offset)
        .limit(limit)
    )
    total = await session.exec(select(func.count()).select_from(Tip).where(*where))
    return found.all(), int(total.one())
