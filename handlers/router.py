"""Routers: each feature module registers its commands, buttons and fallbacks on one."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final

from handlers.context import Turn

CALLBACK_VERSION: Final = "1"
# A number in button data or a command fits a signed 64-bit column with this many digits.
ID_DIGITS: Final = 18

Handler = Callable[[Turn], Awaitable[bool]]
ChoiceHandler = Callable[[Turn, str], Awaitable[bool]]


class Scope(enum.StrEnum):
    """Where a router listens: residents' private chats or the officers' groups."""

    PRIVATE = "private"
    GROUP = "group"


def callback(namespace: str, value: str) -> str:
    """Build short, versioned button data: ``1:<namespace>:<value>`` (at most 64 bytes)."""
    data = f"{CALLBACK_VERSION}:{namespace}:{value}"
    if len(data.encode()) > 64:
        raise ValueError(f"button data too long: {data!r}")
    return data


def parse_callback(data: str) -> tuple[str, str] | None:
    """Return (namespace, value) of button data we made, or None for anything else."""
    parts = data.split(":", 2)
    if len(parts) != 3 or parts[0] != CALLBACK_VERSION or not parts[1]:
        return None
    return parts[1], parts[2]


def parse_id(text: str) -> int | None:
    """Return the number in button data or a command, or None unless it is 1-18 ASCII digits.

    str.isdigit() also accepts "²" and "٣", which int() refuses or reads, and a number too long
    for the database makes the query fail: a forged button must be stale, never an error.
    """
    if 0 < len(text) <= ID_DIGITS and text.isascii() and text.isdigit():
        return int(text)
    return None


@dataclass
class Router:
    """A feature's entry points; the app registers routers in the order they are tried."""

    name: str
    scope: Scope = Scope.PRIVATE
    commands: dict[str, Handler] = field(default_factory=dict)
    choices: dict[str, ChoiceHandler] = field(default_factory=dict)
    fallbacks: list[Handler] = field(default_factory=list)

    def command(self, *names: str) -> Callable[[Handler], Handler]:
        """Register a handler for slash commands such as ``/start``."""

        def register(handler: Handler) -> Handler:
            for name in names:
                self.commands[name] = handler
            return handler

        return register

    def choice(self, namespace: str) -> Callable[[ChoiceHandler], ChoiceHandler]:
        """Register the handler of buttons whose data starts with ``1:<namespace>:``."""

        def register(handler: ChoiceHandler) -> ChoiceHandler:
            self.choices[namespace] = handler
            return handler

        return register

    def fallback(self, handler: Handler) -> Handler:
        """Register a handler tried, in order, for anything not claimed above."""
        self.fallbacks.append(handler)
        return handler
