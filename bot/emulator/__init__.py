"""A Telegram Bot API emulator that real python-telegram-bot applications talk to over HTTP."""

from bot.emulator.emulator import BotApiEmulator
from bot.emulator.faults import Limits, Stats
from bot.emulator.state import ApiCall, Button, EmuChat, EmuMessage, EmuUser

__all__ = [
    "ApiCall",
    "BotApiEmulator",
    "Button",
    "EmuChat",
    "EmuMessage",
    "EmuUser",
    "Limits",
    "Stats",
]
