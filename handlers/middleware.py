"""What the dispatcher runs around every turn, handed to it by bot/app.py.

The dispatcher knows no feature: the per-minute limit, the trace of the messages a turn
left, and what a person is told when their turn failed are brought in from outside, as
aiogram's middlewares are, in the order app.py lists them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final

from handlers.context import Turn
from handlers.events import Inbound

Answer = Callable[[Turn], None]
"""Says something in a turn: the routers' answer is not wanted, or could not be had."""


@dataclass(frozen=True, slots=True)
class Admission:
    """A gate's word on an event, before it joins its chat's line."""

    handle: bool = True
    # Answers in place of the routers: the chat's state is read, never changed.
    instead: Answer | None = None


HANDLE: Final = Admission()
IGNORE: Final = Admission(handle=False)

Gate = Callable[[Inbound, str, int], Admission]
"""Takes the event, its chat key and how many of the chat's events are in line (the one
being handled counts too); runs before any transaction, so it must be cheap."""

AfterDelivery = Callable[[Turn, Sequence[str]], Awaitable[None]]
"""Runs once the turn's replies were sent, with the ids of the messages sent, before the
turn's follow-up work."""


@dataclass(frozen=True, slots=True)
class Middlewares:
    """The hooks of a dispatcher, each list run in its order."""

    gates: Sequence[Gate] = ()
    after_delivery: Sequence[AfterDelivery] = ()
    # A turn failed and rolled back: the turn holds the chat's state as it was before.
    apology: Answer | None = None
    # A tap in a private chat that no router took (a button of an older message).
    stale_choice: Answer | None = None

    def admit(self, event: Inbound, chat_key: str, waiting: int) -> Admission:
        """Return the first gate's word that is not HANDLE, or HANDLE."""
        for gate in self.gates:
            admission = gate(event, chat_key, waiting)
            if admission != HANDLE:
                return admission
        return HANDLE
