"""Chat-style test helpers: a person taps and types; the test reads what they see."""

from __future__ import annotations

from bot.emulator import BotApiEmulator, EmuChat, EmuMessage, EmuUser


class Person:
    """Someone in a private chat with the bot."""

    def __init__(self, emulator: BotApiEmulator, user: EmuUser) -> None:
        self.emulator = emulator
        self.user = user

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

    async def sees(self, timeout: float = 5.0) -> EmuMessage:  # noqa: ASYNC109
        """Return the next message the bot sends this person."""
        return await self.emulator.next_bot_message(self.chat_id, timeout=timeout)

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

    def __init__(self, emulator: BotApiEmulator, chat: EmuChat) -> None:
        self.emulator = emulator
        self.chat = chat

    @property
    def chat_id(self) -> int:
        """The group's id."""
        return self.chat.id

    async def sees(self, timeout: float = 5.0) -> EmuMessage:  # noqa: ASYNC109
        """Return the next message the bot posts in the group."""
        return await self.emulator.next_bot_message(self.chat_id, timeout=timeout)

    def messages(self) -> list[EmuMessage]:
        """Everything the bot has posted in the group."""
        return self.emulator.bot_messages(self.chat_id)
