"""Benchmark: one broadcast to many subscribers through the delivery engine and the emulator.

    .venv/bin/python benchmarks/broadcast.py [--subscribers 10000] [--latency-ms 30]
                                             [--paid] [--rate N] [--postgres | --database URL]
                                             [--timeout 900]

Starts the Bot API emulator in-process on loopback with Telegram-like send limits enforced
(30 messages a second overall; 1,000 with --paid, where the engine sets allow_paid_broadcast),
seeds the subscribers straight into the database and runs ``broadcasts.engine`` (enqueue, then
deliver) with a real python-telegram-bot ``Bot`` over HTTP. The configured rate is
``[broadcasts] rate_per_second``'s default, 25 (1,000 with --paid) unless --rate is given.

Prints messages per second (over the whole run, and between the first and the last send),
the share of the configured rate achieved, 429 answers, duplicates (chats that got the message
more than once), p50/p95 send latency (the channel's send call, HTTP round trip included) and
the peak RSS of this process (engine and emulator together).

Database: a fresh SQLite file by default; --postgres makes a scratch database on
HOMTHU_PG_ADMIN_URL (default postgresql://postgres@127.0.0.1:5432/postgres), dropped after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
from datetime import UTC, datetime
from typing import Final

from support import add_database_options, database, percentile
from telegram import Bot
from telegram.request import HTTPXRequest

from bot.app import open_services
from bot.channels.telegram import TelegramChannel
from bot.config import Settings
from bot.emulator import BotApiEmulator, Limits
from broadcasts import engine
from handlers.events import Outbound, Sent
from storage.db import unit_of_work, upgrade_async
from storage.models import Broadcast, Subscription

TOKEN: Final = "123456:AAH-benchmark-token-never-logged"
SECRET: Final = b"benchmark-secret-key-with-32-characters!!"
FIRST_CHAT: Final = 6_000_000_000
WARD: Final = "dong-cuong"
TEXT: Final = "Tháng này: tác hại của ma túy. Gọi 113 hoặc đường dây nóng của phường."


class TimedChannel:
    """The Telegram channel, timing each send."""

    def __init__(self, inner: TelegramChannel) -> None:
        self.inner = inner
        self.name = inner.name
        self.supports_buttons = inner.supports_buttons
        self.latencies: list[float] = []

    async def send(self, chat: str, message: Outbound, *, patient: bool = True) -> Sent:
        started = time.perf_counter()
        try:
            return await self.inner.send(chat, message, patient=patient)
        finally:
            self.latencies.append(time.perf_counter() - started)


async def run(args: argparse.Namespace) -> None:
    rate = args.rate or (1000.0 if args.paid else 25.0)
    emulator = BotApiEmulator(token=TOKEN)
    emulator.latency = args.latency_ms / 1000
    emulator.limits = Limits(global_per_second=1000 if args.paid else 30)
    await emulator.start()
    async with database(args) as (url, label):
        await upgrade_async(url)
        settings = Settings(
            telegram={"base_url": emulator.base_url, "base_file_url": emulator.base_file_url},
            database={"url": url},
            broadcasts={"quiet_hours": "", "rate_per_second": rate, "paid": args.paid},
            wards=[
                {"code": WARD, "name": "Phường Đông Cương", "officer_chat_id": -1, "areas": ["1"]}
            ],
        )
        services = await open_services(settings, secret=SECRET)
        bot = Bot(
            TOKEN,
            base_url=emulator.base_url,
            base_file_url=emulator.base_file_url,
            request=HTTPXRequest(connection_pool_size=engine.MAX_SENDERS + 8),
        )
        await bot.initialize()
        channel = TimedChannel(TelegramChannel(bot))
        services.channels[channel.name] = channel  # type: ignore[assignment]
        now = datetime.now(UTC)
        chats = range(FIRST_CHAT, FIRST_CHAT + args.subscribers)
        async with unit_of_work(services.sessions) as session:
            for chat_id in chats:
                emulator.add_user(user_id=chat_id, first_name="Cư dân")
                key = services.keyring.chat_key("telegram", str(chat_id))
                address = json.dumps({"channel": "telegram", "chat": str(chat_id)}).encode()
                sealed = services.keyring.seal(address, context=f"subscription:{key}")
                session.add(
                    Subscription(
                        chat_key=key,
                        sealed_chat=sealed,
                        ward_code=WARD,
                        area="1",
                        created_at=now,
                    )
                )
            broadcast = Broadcast(text=TEXT, ward_code=WARD, scheduled_at=now)
            session.add(broadcast)
            await session.flush()
            assert broadcast.id is not None
            broadcast_id = broadcast.id
        started = time.perf_counter()
        queued = await engine.enqueue(services, broadcast_id)
        enqueue_seconds = time.perf_counter() - started
        summary = await engine.deliver(services, broadcast_id)
        await bot.shutdown()
        await services.sessions.kw["bind"].dispose()
    await emulator.stop()

    sends = sorted(c.time for c in emulator.calls_to("sendMessage") if c.status == 200)
    steady = (len(sends) - 1) / (sends[-1] - sends[0]) if len(sends) > 1 else 0.0
    by_chat = emulator.stats.sends_by_chat
    duplicates = sum(n - 1 for n in by_chat.values() if n > 1)
    missed = sum(1 for chat_id in chats if by_chat[chat_id] == 0)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    p50, p95 = (percentile(channel.latencies, f) * 1000 for f in (0.50, 0.95))
    mode = "paid (1,000/s limit)" if args.paid else "free (30/s limit)"
    rate_share = summary.per_second / rate * 100
    print(
        f"""\
broadcast to {args.subscribers} subscribers, {mode}, latency {args.latency_ms:g} ms, {label}
  configured rate       {rate:g} messages/s ({engine.effective_rate(rate, paid=args.paid):g} used)
  enqueue               {queued} rows in {enqueue_seconds:.2f} s (one transaction)
  delivered             sent {summary.sent}, failed {summary.failed}, missed {missed}
  whole run             {summary.seconds:.1f} s, {summary.per_second:.1f} messages/s
  first to last send    {steady:.1f} messages/s
  share of rate         {rate_share:.1f}%
  429 answers           {emulator.stats.too_many_requests} (flood waits: {summary.flood_waits})
  duplicates            {duplicates}
  send latency          p50 {p50:.1f} ms, p95 {p95:.1f} ms
  peak RSS              {rss_mb:.0f} MB (engine and emulator in one process)

README: {args.subscribers} subscribers, {mode}, {args.latency_ms:g} ms latency, {label}: \
{summary.per_second:.1f} msg/s ({rate_share:.1f}% of {rate:g}), \
{emulator.stats.too_many_requests} x 429, {duplicates} duplicates, \
p50/p95 {p50:.0f}/{p95:.0f} ms, peak RSS {rss_mb:.0f} MB"""
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=float, default=30)
    parser.add_argument("--paid", action="store_true", help="allow_paid_broadcast, 1,000/s")
    parser.add_argument("--rate", type=float, help="[broadcasts] rate_per_second to use")
    add_database_options(parser)
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()
    for name in [n for n in os.environ if n.startswith("HOMTHU_") and n != "HOMTHU_PG_ADMIN_URL"]:
        del os.environ[name]
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    try:
        asyncio.run(asyncio.wait_for(run(args), timeout=args.timeout))
    except TimeoutError:
        print(f"benchmark did not finish within {args.timeout:g} s", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
