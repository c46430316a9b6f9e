"""The officers' group: what the bot answers there before the officer queue exists."""

from __future__ import annotations

from handlers.context import Turn
from handlers.router import Router, Scope

router = Router(__name__, scope=Scope.GROUP)


@router.command("chatid", "id")
async def on_chat_id(turn: Turn) -> bool:
    """Tell whoever sets the bot up the id of this group, for officer_chat_id."""
    turn.say(turn.t("group.chat_id", chat_id=turn.event.chat))
    return True
