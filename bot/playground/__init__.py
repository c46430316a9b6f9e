"""The local playground: the real bot against the emulator, with a web page to chat through."""

from bot.playground.cast import Cast, DemoGroup, DemoPerson
from bot.playground.runner import PLAYGROUND_TOKEN, ListenError, Playground, serve

__all__ = [
    "PLAYGROUND_TOKEN",
    "Cast",
    "DemoGroup",
    "DemoPerson",
    "ListenError",
    "Playground",
    "serve",
]
