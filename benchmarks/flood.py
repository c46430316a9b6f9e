"""Benchmark: one or more chats flood the bot while a neighbour sends a tip.

    .venv/bin/python benchmarks/flood.py [--messages 1000] [--flooders 1]
                                         [--database URL | --postgres] [--timeout 300]

Starts the Bot API emulator in-process on loopback and the real bot (``bot.app.Runtime``: the
PTB Application over HTTP, long polling, 64 concurrent updates) against it, with the default
limits (20 messages a minute per resident). First a neighbour walks the whole tip flow on a
quiet bot; then every flooder's messages are queued at once and another neighbour walks the
same flow behind them. Prints both flows' times (first message to card in the officers'
group), how long the bot took to get through the flood, how many flood messages it answered,
and what the in-memory count costs per ignored message.

Database: a fresh SQLite file by default; --postgres makes a scratch database on
HOMTHU_PG_ADMIN_URL (default postgresql://postgres@127.0.0.1:5432/postgres), dropped after.
HOMTHU_* and TELEGRAM_BOT_TOKEN variables are ignored (removed from this process only).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from typing import Final

from support import add_database_options, database, run_bot_benchmark
from tips import SECRET, TOKEN, Recorder, Resident, running_bot

from bot.app import Runtime
from bot.emulator import BotApiEmulator
from handlers.events import EventKind, Inbound
from handlers.limits import MessageLimiter
from storage.crypto import Keyring
from storage.db import upgrade_async

FIRST_FLOODER_ID: Final = 6_100_000_000
QUIET_ID: Final = 6_200_000_001
NEIGHBOUR_ID: Final = 6_200_000_002
SENTINEL_ID: Final = 6_200_000_003
ADMITS: Final = 100_000


async def flow(resident: Resident, recorder: Recorder, text: str) -> tuple[float, float]:
    """Walk a whole tip; return seconds from the first message, and from «Gửi», to the card."""
    started = time.perf_counter()
    number, tapped = await resident.send_tip(text)
    await recorder.card_events[number].wait()
    card = recorder.card_at[number]
    return card - started, card - tapped


def admit_cost() -> float:
    """Microseconds the dispatcher spends on a message it ignores: chat key and count."""
    keyring = Keyring(SECRET)
    limiter = MessageLimiter(20)
    event = Inbound(channel="telegram", chat=str(FIRST_FLOODER_ID), kind=EventKind.TEXT)
    now = datetime.now(UTC)
    started = time.perf_counter()
    for _ in range(ADMITS):
        limiter.admit(event, keyring.chat_key(event.channel, event.chat), now)
    return (time.perf_counter() - started) / ADMITS * 1e6


async def run(args: argparse.Namespace) -> None:
    """Set everything up, measure a quiet flow and a flooded one, and print the figures."""
    async with database(args) as (url, backend):
        await upgrade_async(url)
        emulator = BotApiEmulator(token=TOKEN, bot_username="homthu_bench_bot")
        recorder = Recorder()
        recorder.attach(emulator)
        await emulator.start()
        try:
            async with running_bot(emulator, url) as runtime:
                await measure(args, emulator, recorder, runtime, backend)
        finally:
            await emulator.stop()


async def measure(
    args: argparse.Namespace,
    emulator: BotApiEmulator,
    recorder: Recorder,
    runtime: Runtime,
    backend: str,
) -> None:
    def resident(user_id: int) -> Resident:
        return Resident(
            emulator, emulator.add_user(user_id, "Cư dân", language_code="vi"), recorder
        )

    quiet_flow, quiet_card = await flow(resident(QUIET_ID), recorder, "Có người bán ma túy đá")

    flooders = [
        emulator.add_user(FIRST_FLOODER_ID + n, "Spam", language_code="vi")
        for n in range(args.flooders)
    ]
    neighbour = resident(NEIGHBOUR_ID)
    injecting = time.perf_counter()
    for n in range(args.messages):
        for flooder in flooders:
            await emulator.send_text(flooder, f"alo alo {n}")
    injected = time.perf_counter()
    flooded_flow, flooded_card = await flow(neighbour, recorder, "Có người lạ trước cổng trường")
    # Updates are taken in order: once a later chat is answered, every flood message has
    # been counted, and those let through are in their chat's line until the bot is idle.
    await resident(SENTINEL_ID).says("/start")
    await runtime.dispatcher.idle()
    through = time.perf_counter()
    answered = sum(recorder.inboxes[flooder.id].qsize() for flooder in flooders)
    sent = args.messages * args.flooders

    print(
        f"""
homthu flood benchmark
  database               {backend}
  flood                  {sent} messages from {args.flooders} chat(s), queued in \
{injected - injecting:.2f} s
  answered               {answered} ({answered / args.flooders:.0f} per flooding chat; \
the rest ignored)
  flood gone through     {through - injected:.2f} s after it was queued
  quiet tip flow         {quiet_flow:.2f} s from /start to card \
(Gửi → card {quiet_card * 1000:.0f} ms)
  tip behind the flood   {flooded_flow:.2f} s from /start to card \
(Gửi → card {flooded_card * 1000:.0f} ms)
  ignoring one message   {admit_cost():.1f} µs (chat key and in-memory count)"""
    )


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--messages", type=int, default=1000, help="messages per flooder")
    parser.add_argument("--flooders", type=int, default=1, help="chats flooding at once")
    add_database_options(parser)
    parser.add_argument("--timeout", type=float, default=300.0, help="give up after (s)")
    args = parser.parse_args(argv)
    if args.messages < 1 or args.flooders < 1:
        parser.error("--messages and --flooders must be at least 1")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    return run_bot_benchmark(lambda: run(args), timeout=args.timeout, token=TOKEN)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
