"""Repository functions of «Xóa dấu vết»: the message ids of residents' recent chats."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import dialect_insert
from storage.models import ChatTrace


async def add_traces(
    *, session: AsyncSession, trace_key: str, message_ids: Sequence[str], hour: datetime
) -> None:
    """Record messages of one chat in a single INSERT; an id already recorded is skipped."""
    if not message_ids:
        return
    insert = dialect_insert(session)
    rows = [{"trace_key": trace_key, "message_id": m, "hour": hour} for m in message_ids]
    await session.exec(insert(ChatTrace).values(rows).on_conflict_do_nothing())


async def recent_traces(
    *, session: AsyncSession, trace_key: str, since: datetime
) -> Sequence[str]:
    """Return the ids of a chat's messages recorded in an hour after ``since``."""
    found = await session.exec(
        select(ChatTrace.message_id).where(
            col(ChatTrace.trace_key) == trace_key, col(ChatTrace.hour) > since
        )
    )
    return found.all()


async def forget_traces(
    *, session: AsyncSession, trace_key: str, message_ids: Sequence[str], until: datetime
) -> int:
    """Forget a chat's given messages and any recorded up to ``until``; return how many."""
    result = await session.exec(
        delete(ChatTrace).where(
            col(ChatTrace.trace_key) == trace_key,
            col(ChatTrace.message_id).in_(message_ids) | (col(ChatTrace.hour) <= until),
        )
    )
    return int(result.rowcount)


async def purge_traces(*, session: AsyncSession, until: datetime) -> int:
    """Forget every message recorded up to ``until``: Telegram no longer lets them be deleted."""
    result = await session.exec(delete(ChatTrace).where(col(ChatTrace.hour) <= until))
    return int(result.rowcount)
