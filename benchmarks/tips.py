"""Benchmark: many residents send tips at once through the real bot and the Bot API emulator.

    .venv/bin/python benchmarks/tips.py [--tips 500] [--residents 100] [--latency-ms 0]
                                        [--database URL | --postgres] [--limits] [--timeout 300]
                                        [--webhook]

Starts the Bot API emulator in-process on loopback and the real bot (``bot.app.Runtime``: the
PTB Application over HTTP, long polling) against it. Each simulated resident walks the whole
tip flow by tapping and typing, its own tips one after another, all residents at once. Per
tip it measures the time from the tap on "✅ Gửi tin" to the receipt in the resident's chat
and to the tip's card ("🆕 TIN #N") in the officers' group, both taken when the emulator
stores the bot's message, so the figures exclude the benchmark's own wake-up delays.

Database:
  (default)       a fresh SQLite file in a temporary directory, deleted afterwards;
  --postgres      a scratch database on HOMTHU_PG_ADMIN_URL (default
                  postgresql://postgres@127.0.0.1:5432/postgres, trust auth), created before
                  the run and dropped after it;
  --database URL  an existing, EMPTY database (e.g. postgresql+asyncpg://postgres@127.0.0.1/
                  homthu_bench): the schema is migrated to head, but tips already stored there
                  would be re-posted as cards and spoil the counts.

--webhook: the emulator posts updates to the bot's webhook server (as Telegram does in webhook
mode) instead of the bot long-polling.

--limits turns on the emulator's Telegram-like send limits (20 messages a minute to a group):
500 cards then need about 25 minutes, so use it with a few dozen tips or a longer --timeout.
HOMTHU_* and TELEGRAM_BOT_TOKEN variables are ignored (removed from this process only).
The run ends on its own: it fails after --timeout seconds, whatever happens.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import resource
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Final

from support import BotFailed, add_database_options, database, percentile, run_bot_benchmark

from bot.app import Runtime, open_services
from bot.config import Settings
from bot.emulator import BotApiEmulator, EmuMessage, EmuUser
from bot.emulator.faults import Limits
from bot.runners import TelegramWebhook
from bot.webhook import WebhookServer
from handlers.settings import WebhookSection
from storage.db import upgrade_async

TOKEN: Final = "123456:AAH-benchmark-token-never-logged"
SECRET: Final = b"benchmark-secret-key-with-32-characters!!"
WEBHOOK_SECRET: Final = "benchmark-webhook-secret"
GROUP_ID: Final = -1001234567890
FIRST_RESIDENT_ID: Final = 6_000_000_000
AREAS: Final = [f"Khu phố {n}" for n in range(1, 11)]
# How long one step of the flow may take before the run is declared broken.
STEP_TIMEOUT: Final = 60.0
CARD = re.compile(r"TIN #(\d+)")
RECEIPT = re.compile(r"Đã gửi tin #(\d+)")
SEND_LABEL: Final = "✅ Gửi tin"
# The bot's apology when handling a turn failed (common.error in handlers/locales/vi.toml).
APOLOGY: Final = "Xin lỗi, bot vừa gặp lỗi"


@dataclass
class Recorder:
    """Sees every message the bot puts into a chat, the moment the emulator stores it."""

    inboxes: dict[int, asyncio.Queue[EmuMessage]] = field(
        default_factory=lambda: defaultdict(asyncio.Queue)
    )
    card_at: dict[int, float] = field(default_factory=dict)
    receipt_at: dict[int, float] = field(default_factory=dict)
    card_events: dict[int, asyncio.Event] = field(
        default_factory=lambda: defaultdict(asyncio.Event)
    )
    group_messages: int = 0
    repeated_cards: int = 0

    def attach(self, emulator: BotApiEmulator) -> None:
        """Chain onto the emulator's hook, keeping its own statistics."""
        previous_hook = emulator.world.on_bot_message

        def hook(message: EmuMessage, previous: EmuMessage | None) -> None:
            if previous_hook is not None:
                previous_hook(message, previous)
            self.saw(message)

        emulator.world.on_bot_message = hook

    def saw(self, message: EmuMessage) -> None:
        """Note one bot message: cards by number, receipts by number, the rest per chat."""
        now = time.perf_counter()
        if message.chat_id == GROUP_ID:
            self.group_messages += 1
            match = CARD.search(message.content)
            if match:
                number = int(match.group(1))
                if number in self.card_at:
                    self.repeated_cards += 1
                else:
                    self.card_at[number] = now
                self.card_events[number].set()
            return
        match = RECEIPT.search(message.content)
        if match:
            self.receipt_at[int(match.group(1))] = now
        self.inboxes[message.chat_id].put_nowait(message)


class Resident:
    """One person in a private chat with the bot, reading the bot's answers in order."""

    def __init__(self, emulator: BotApiEmulator, user: EmuUser, recorder: Recorder) -> None:
        self.emulator = emulator
        self.user = user
        self.inbox = recorder.inboxes[user.id]

    async def sees(self) -> EmuMessage:
        """The bot's next message to this resident."""
        try:
            async with asyncio.timeout(STEP_TIMEOUT):
                message = await self.inbox.get()
        except TimeoutError:
            raise TimeoutError(
                f"resident {self.user.id} got no answer within {STEP_TIMEOUT}s\n"
                f"{self.emulator.dump(self.user.id)}"
            ) from None
        if APOLOGY in message.content:
            raise BotFailed(f"the bot apologised to resident {self.user.id}; see the log above")
        return message

    async def says(self, text: str) -> EmuMessage:
        """Send a message (a command when it starts with a slash) and read the answer."""
        if text.startswith("/"):
            command, _, args = text.partition(" ")
            await self.emulator.send_command(self.user, command, args=args)
        else:
            await self.emulator.send_text(self.user, text)
        return await self.sees()

    async def taps(self, label: str) -> tuple[EmuMessage, float]:
        """Tap the button on the latest message showing it; the answer and when it was tapped."""
        for message in reversed(self.emulator.bot_messages(self.user.id)):
            if label in message.button_labels():
                break
        else:
            raise LookupError(f"no button {label!r}\n{self.emulator.dump(self.user.id)}")
        tapped = time.perf_counter()
        await self.emulator.click(self.user, message, label)
        return await self.sees(), tapped

    async def send_tip(self, text: str) -> tuple[int, float]:
        """Walk the whole flow, as tests/tests_support.py does; the tip number and send time."""
        await self.says("/start")
        await self.taps("📝 Gửi tin tố giác")
        await self.taps("💊 Mua bán ma túy")
        await self.taps("Khu phố 3")
        await self.says("Quán nước đầu ngõ 12")
        await self.says(text)
        await self.taps("⏭ Bỏ qua")
        done, tapped = await self.taps(SEND_LABEL)
        match = RECEIPT.search(done.content)
        if match is None:
            raise AssertionError(f"no receipt after {SEND_LABEL!r}: {done.content!r}")
        return int(match.group(1)), tapped


def figures(label: str, seconds: list[float]) -> str:
    ms = [s * 1000 for s in seconds]
    return (
        f"{label:<22} p50 {percentile(ms, 0.50):8.1f} ms   p95 {percentile(ms, 0.95):8.1f} ms"
        f"   max {max(ms):8.1f} ms"
    )


async def run(args: argparse.Namespace) -> None:
    """Set everything up, send the tips, check every card arrived and print the figures."""
    async with database(args) as (url, backend):
        await upgrade_async(url)
        emulator = BotApiEmulator(token=TOKEN, bot_username="homthu_bench_bot")
        emulator.latency = args.latency_ms / 1000
        if args.limits:
            emulator.limits = Limits()
        recorder = Recorder()
        recorder.attach(emulator)
        await emulator.start()
        try:
            # Residents here send tips back to back, faster than people can: the abuse limits
            # would refuse them. benchmarks/flood.py measures the limits.
            unlimited = {
                "tips_per_hour": 1_000_000,
                "tips_per_day": 1_000_000,
                "messages_per_minute": 1_000_000,
            }
            async with running_bot(emulator, url, webhook=args.webhook, limits=unlimited):
                await measure(args, emulator, recorder, backend)
        finally:
            await emulator.stop()


@asynccontextmanager
async def running_bot(
    emulator: BotApiEmulator, url: str, *, webhook: bool = False, **sections: dict[str, object]
) -> AsyncIterator[Runtime]:
    """The real bot for one ward, against the emulator and the database, with its data dir."""
    with tempfile.TemporaryDirectory(prefix="homthu-bench-data-") as data_dir:
        settings = Settings(
            bot={"data_dir": data_dir, "log_level": "WARNING"},
            telegram={
                "base_url": emulator.base_url,
                "base_file_url": emulator.base_file_url,
                "poll_timeout": 1,
            },
            database={"url": url},
            wards=[
                {
                    "code": "dong-cuong",
                    "name": "Phường Đông Cương",
                    "officer_chat_id": GROUP_ID,
                    "areas": AREAS,
                }
            ],
            **sections,
        )
        emulator.add_group(GROUP_ID, "CA phường Đông Cương")
        runtime = Runtime(settings, await open_services(settings, secret=SECRET), token=TOKEN)
        server = WebhookServer(WebhookSection(port=0))
        frontend = None
        if webhook:
            frontend = TelegramWebhook(
                runtime.application, runtime.services, secret=WEBHOOK_SECRET, public_url=""
            )
            server.route(TelegramWebhook.PATH, frontend.handle)
            await server.start()
            frontend.url = server.url + TelegramWebhook.PATH
        await runtime.start(frontend=frontend)
        try:
            yield runtime
        finally:
            await runtime.stop()
            await server.stop()


async def measure(
    args: argparse.Namespace, emulator: BotApiEmulator, recorder: Recorder, backend: str
) -> None:
    residents = [
        Resident(
            emulator,
            emulator.add_user(FIRST_RESIDENT_ID + n, f"Cư dân {n}", language_code="vi"),
            recorder,
        )
        for n in range(args.residents)
    ]
    # Tips dealt round-robin: 500 over 100 residents is 5 each.
    shares = [len(range(n, args.tips, args.residents)) for n in range(args.residents)]
    calls_before = sum(emulator.stats.calls_by_method.values())
    throttled_before = emulator.stats.too_many_requests

    async def walk(resident: Resident, count: int) -> list[tuple[int, float]]:
        return [
            await resident.send_tip(f"Tối nào cũng có người bán ma túy đá (lần {k + 1})")
            for k in range(count)
        ]

    started = time.perf_counter()
    walks = await asyncio.gather(
        *(walk(resident, count) for resident, count in zip(residents, shares, strict=True))
    )
    flows_done = time.perf_counter()
    sent = [tip for tips in walks for tip in tips]
    numbers = [number for number, _ in sent]
    try:
        async with asyncio.timeout(STEP_TIMEOUT):
            for number in numbers:
                await recorder.card_events[number].wait()
    except TimeoutError:
        missing = sorted(set(numbers) - set(recorder.card_at))
        raise AssertionError(
            f"{len(missing)} card(s) never reached the group: {missing[:20]}"
        ) from None
    finished = time.perf_counter()

    assert len(sent) == args.tips, (len(sent), args.tips)
    assert len(set(numbers)) == args.tips, "two residents got the same tip number"
    assert set(recorder.card_at) == set(numbers), "cards do not match the receipts"
    assert recorder.repeated_cards == 0, f"{recorder.repeated_cards} card(s) posted twice"
    assert recorder.group_messages == args.tips, (recorder.group_messages, args.tips)
    to_card = [recorder.card_at[number] - tapped for number, tapped in sent]
    to_receipt = [recorder.receipt_at[number] - tapped for number, tapped in sent]
    wall = finished - started
    calls = sum(emulator.stats.calls_by_method.values()) - calls_before
    throttled = emulator.stats.too_many_requests - throttled_before
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rate = args.tips / wall
    top = ", ".join(f"{m} {n}" for m, n in emulator.stats.calls_by_method.most_common(4))
    database_name = backend.split(" ", 1)[0]
    limits = ", Telegram-like limits" if args.limits else ""
    print(
        f"""
homthu tip benchmark
  tips                   {args.tips} (all {len(recorder.card_at)} cards reached the group)
  residents              {args.residents} concurrent, {max(shares)} tips each at most
  database               {backend}
  Bot API latency        {args.latency_ms:g} ms per call{limits}
  updates by             {"webhook" if args.webhook else "long polling"}
  wall time              {wall:.2f} s (last receipt at {flows_done - started:.2f} s)
  throughput             {rate:.1f} tips/s (whole 8-step flows, until the last card)
  {figures("Gửi → card in group", to_card)}
  {figures("Gửi → receipt", to_receipt)}
  Bot API calls          {calls} ({calls / args.tips:.1f} per tip; {top})
  429 Too Many Requests  {throttled}
  duplicate bot messages {emulator.stats.duplicates}
  peak RSS               {peak_mib:.0f} MiB

README: {args.tips} tips from {args.residents} concurrent residents on {database_name}: \
{rate:.1f} tips/s; Gửi→card p50 {percentile(to_card, 0.5) * 1000:.0f} ms, \
p95 {percentile(to_card, 0.95) * 1000:.0f} ms; Gửi→receipt p50 \
{percentile(to_receipt, 0.5) * 1000:.0f} ms, p95 {percentile(to_receipt, 0.95) * 1000:.0f} ms; \
{calls} Bot API calls, {throttled} 429s; peak RSS {peak_mib:.0f} MiB"""
    )


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tips", type=int, default=500, help="tips in all (default 500)")
    parser.add_argument("--residents", type=int, default=100, help="concurrent residents")
    add_database_options(parser)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay per Bot API call")
    parser.add_argument("--limits", action="store_true", help="Telegram-like send limits")
    parser.add_argument("--webhook", action="store_true", help="updates by webhook, not polling")
    parser.add_argument("--timeout", type=float, default=300.0, help="give up after (s)")
    args = parser.parse_args(argv)
    if args.tips < 1 or args.residents < 1:
        parser.error("--tips and --residents must be at least 1")
    args.residents = min(args.residents, args.tips)
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    return run_bot_benchmark(lambda: run(args), timeout=args.timeout, token=TOKEN)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
