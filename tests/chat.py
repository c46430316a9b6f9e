"""Chat-style test helpers: a person taps and types; the test reads what they see."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

from bot.emulator import BotApiEmulator, EmuChat, EmuMessage, EmuUser

Settle = Callable[[], Awaitable[None]]
# How long a person waits for the bot's next message. A passing test never waits it out; it
# is long because CI shares its two cores, and a failing test dumps the chat when it ends.
TIMEOUT: Final = 20.0


async def _nothing() -> None:
    return None


class Person:
    """Someone in a private chat with the bot."""

    def __init__(self, emulator: BotApiEmulator, user: EmuUser, settle: Settle = _nothing) -> None:
        self.emulator = emulator
        self.user = user
        self.settle = settle

    @property
    def chat_id(self) -> int:
        """The private chat's id, which in Telegram is the user's id."""
        return self.user.id

    async def send(self, text: str) -> EmuMessage:
        """Type and send a message (a command when it starts with a slash)."""
        if text.startswith("/"):
            command, _, args = text.partition(" ")
            return await self.emulator.send_command(self.user, command, args=args)
        return await self.emulator.send_text(self.user, text)

    async def sees(self, timeout: float = TIMEOUT) -> EmuMessage:  # noqa: ASYNC109
        """Return the next message the bot sends this person, once the bot is done with it."""
        message = await self.emulator.next_bot_message(self.chat_id, timeout=timeout)
        await self.settle()
        return message

    async def says(self, text: str) -> EmuMessage:
        """Send a message and return the bot's answer."""
        await self.send(text)
        return await self.sees()

    def last_with(self, label: str) -> EmuMessage:
        """The latest bot message that still shows a button with this label."""
        for message in reversed(self.emulator.bot_messages(self.chat_id)):
            if label in message.button_labels():
                return message
        raise LookupError(
            f"no message with a button {label!r}\n{self.emulator.dump(self.chat_id)}"
        )

    async def taps(self, label: str) -> EmuMessage:
        """Tap a button on the latest message showing it, and return the bot's answer."""
        await self.emulator.click(self.user, self.last_with(label), label)
        return await self.sees()


class Group:
    """The officers' group chat, as the officers see it."""

    def __init__(self, emulator: BotApiEmulator, chat: EmuChat, settle: Settle = _nothing) -> None:
        self.emulator = emulator
        self.chat = chat
        self.settle = settle

    @property
    def chat_id(self) -> int:
        """The group's id."""
        return self.chat.id

    async def sees(self, timeout: float = TIMEOUT) -> EmuMessage:  # noqa: ASYNC109
        """Return the next message the bot posts in the group, once the bot is done with it."""
        message = await self.emulator.next_bot_message(self.chat_id, timeout=timeout)
        await self.settle()
        return message

    def messages(self) -> list[EmuMessage]:
        """Everything the bot has posted in the group."""
        return self.emulator.bot_messages(self.chat_id)


class Officer:
    """A ward officer in the officers' group."""

    def __init__(self, emulator: BotApiEmulator, user: EmuUser, group: Group) -> None:
        self.emulator = emulator
        self.user = user
        self.group = group

    async def taps(self, message: EmuMessage, label: str) -> str:
        """Tap a button on a message in the group (a card); return the callback query id."""
        return await self.emulator.click(self.user, message, label)

    async def replies(self, message: EmuMessage, text: str) -> EmuMessage:
        """Reply to a message in the group, as Telegram's reply does."""
        return await self.emulator.send_text(
            self.user, text, chat=self.group.chat_id, reply_to=message.message_id
        )

    async def taps_and_reads(self, message: EmuMessage, label: str) -> tuple[str, bool]:
        """Tap a button and return the bot's answer to the tap: its text and if it alerts."""
        query = await self.taps(message, label)

        def answered(emu: BotApiEmulator) -> bool:
            return any(a["callback_query_id"] == query for a in emu.callback_answers)

        await self.emulator.wait_until(answered)
        [answer] = [a for a in self.emulator.callback_answers if a["callback_query_id"] == query]
        return answer.get("text") or "", bool(answer.get("show_alert"))
