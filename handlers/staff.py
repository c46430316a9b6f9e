"""Staff identity: which ward's officers' group an event comes from, and who may act there."""

from __future__ import annotations

from handlers.context import Turn
from handlers.router import parse_id
from handlers.settings import Ward
from storage import queue as queue_repo


def group_ward(turn: Turn) -> Ward | None:
    """Return the ward whose officers' group this event comes from."""
    for ward in turn.services.settings.wards:
        if str(ward.officer_chat_id) == turn.event.chat:
            return ward
    return None


def user_id(turn: Turn) -> int | None:
    """Return the numeric platform id of whoever acted, if it is one."""
    user = turn.event.user
    if user is None:
        return None
    number = parse_id(user.removeprefix("-"))
    return None if number is None else (-number if user.startswith("-") else number)


def may_act(ward: Ward, user: int | None) -> bool:
    """Return whether this person is one of the ward's officers or supervisors."""
    return user is not None and (user in ward.officers or user in ward.supervisors)


async def actor(turn: Turn) -> tuple[int, str]:
    """Return who is acting, remembering their display name for cards and assign lists."""
    user = user_id(turn)
    assert user is not None
    name = (turn.event.user_name or "").strip() or turn.t("queue.officer_fallback", id=user)
    await queue_repo.remember_officer(session=turn.session, user_id=user, name=name, now=turn.now)
    return user, name
