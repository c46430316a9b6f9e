"""Benchmark: the Zalo OA webhook under many residents writing at once.

    .venv/bin/python benchmarks/zalo_webhook.py [--residents 50] [--messages 10]
                                                [--postgres | --database URL] [--timeout 300]

Starts the Telegram Bot API emulator, the Zalo OA emulator and the real bot
(``bot.app.Runtime`` with [zalo_oa] enabled and its webhook server on loopback). Each resident
posts signed ``user_send_text`` deliveries to /zalo/oa, one after another, waiting for the
bot's answer on Zalo before the next. Prints the webhook's answer time (POST to HTTP 200,
which Zalo wants within about 2 s) and the time until the bot's answer reached the OA
emulator, each p50/p95, over all residents at once; then, in the same run, the same residents'
messages on Telegram (long polling) for comparison, with the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from typing import Final

import aiohttp
from support import add_database_options, database, percentile, run_bot_benchmark

from bot.app import Runtime, open_services
from bot.config import Settings
from bot.emulator import BotApiEmulator
from bot.emulator.zalo_oa import OAUser, ZaloOAEmulator, signature
from bot.webhook import WebhookServer
from storage.db import upgrade_async

TOKEN: Final = "123456:AAH-benchmark-token-never-logged"
SECRET: Final = b"benchmark-secret-key-with-32-characters!!"
GROUP_ID: Final = -1001234567890
AREAS: Final = [f"Khu phố {n}" for n in range(1, 11)]
WORDS: Final = ("/start", "xin chào", "/riengtu")


async def resident(
    http: aiohttp.ClientSession,
    oa: ZaloOAEmulator,
    user: OAUser,
    count: int,
    answers: list[float],
    replies: list[float],
) -> None:
    """Post ``count`` signed messages, each after the bot answered the one before."""
    for k in range(count):
        body = json.dumps(oa.text(user, WORDS[k % len(WORDS)])).encode()
        timestamp = json.loads(body)["timestamp"]
        headers = {
            "Content-Type": "application/json",
            "X-ZEvent-Signature": signature(oa.app_id, body, timestamp, oa.secret_key),
        }
        before = len(oa.messages_to(user))
        started = time.perf_counter()
        async with http.post(oa.webhook_url, data=body, headers=headers) as response:
            await response.read()
            if response.status != 200:
                raise AssertionError(f"webhook answered HTTP {response.status}")
        answers.append(time.perf_counter() - started)
        await oa.wait_for(user, before + 1)
        replies.append(time.perf_counter() - started)


async def telegram_resident(
    emulator: BotApiEmulator, user_id: int, count: int, replies: list[float]
) -> None:
    """The same messages on Telegram: each sent when the bot answered the one before."""
    user = emulator.add_user(user_id, f"Cư dân {user_id}", language_code="vi")
    for k in range(count):
        started = time.perf_counter()
        await emulator.send_text(user, WORDS[k % len(WORDS)])
        await emulator.next_bot_message(user.id, timeout=120)
        replies.append(time.perf_counter() - started)


async def run(args: argparse.Namespace) -> None:
    async with database(args) as (url, backend):
        await upgrade_async(url)
        emulator = BotApiEmulator(token=TOKEN)
        await emulator.start()
        oa = ZaloOAEmulator()
        await oa.start()
        try:
            with tempfile.TemporaryDirectory(prefix="homthu-bench-data-") as data_dir:
                settings = Settings(
                    bot={"data_dir": data_dir, "log_level": "WARNING"},
                    telegram={
                        "base_url": emulator.base_url,
                        "base_file_url": emulator.base_file_url,
                        "poll_timeout": 1,
                    },
                    database={"url": url},
                    # Residents are not throttled per minute here: the webhook is measured.
                    limits={"messages_per_minute": 1000},
                    webhook={"port": 0},
                    zalo_oa={
                        "enabled": True,
                        "api_url": oa.url,
                        "oauth_url": oa.url,
                        "app_id": oa.app_id,
                        "oa_id": oa.oa_id,
                    },
                    zalo_oa_app_secret=oa.app_secret,
                    zalo_oa_secret_key=oa.secret_key,
                    zalo_oa_refresh_token=oa.grant(),
                    wards=[
                        {
                            "code": "dong-cuong",
                            "name": "Phường Đông Cương",
                            "officer_chat_id": GROUP_ID,
                            "areas": AREAS,
                        }
                    ],
                )
                emulator.add_group(GROUP_ID, "CA phường Đông Cương")
                runtime = Runtime(
                    settings, await open_services(settings, secret=SECRET), token=TOKEN
                )
                server = WebhookServer(settings.webhook)
                runtime.zalo.route(server)
                await server.start()
                await runtime.start(jobs=False)
                try:
                    oa.webhook_url = server.url + "/zalo/oa"
                    await measure(args, oa, emulator, backend)
                finally:
                    await runtime.stop()
                    await server.stop()
        finally:
            await oa.stop()
            await emulator.stop()


async def measure(
    args: argparse.Namespace, oa: ZaloOAEmulator, emulator: BotApiEmulator, backend: str
) -> None:
    answers: list[float] = []
    replies: list[float] = []
    users = [oa.user(f"Cư dân {n}") for n in range(args.residents)]
    connector = aiohttp.TCPConnector(limit=args.residents)
    async with aiohttp.ClientSession(connector=connector) as http:
        started = time.perf_counter()
        await asyncio.gather(
            *(resident(http, oa, user, args.messages, answers, replies) for user in users)
        )
        elapsed = time.perf_counter() - started
    telegram: list[float] = []
    began = time.perf_counter()
    await asyncio.gather(
        *(
            telegram_resident(emulator, 5_550_000_000 + n, args.messages, telegram)
            for n in range(args.residents)
        )
    )
    telegram_elapsed = time.perf_counter() - began

    def ms(values: list[float], fraction: float) -> str:
        return f"{percentile(values, fraction) * 1000:.0f} ms"

    total = len(answers)
    print(
        f"""Zalo OA webhook: {args.residents} concurrent residents x {args.messages} messages \
on {backend}
  {total} deliveries in {elapsed:.1f} s ({total / elapsed:.1f}/s)
  webhook answer (POST to 200): p50 {ms(answers, 0.5)}, p95 {ms(answers, 0.95)}, \
max {max(answers) * 1000:.0f} ms
  bot's answer on Zalo:         p50 {ms(replies, 0.5)}, p95 {ms(replies, 0.95)}
  same on Telegram (polling):   {total / telegram_elapsed:.1f}/s; bot's answer p50 \
{ms(telegram, 0.5)}, p95 {ms(telegram, 0.95)}
  Zalo / Telegram: throughput {total / elapsed / (total / telegram_elapsed):.2f}, \
answer p50 {percentile(replies, 0.5) / percentile(telegram, 0.5):.2f}"""
    )


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--residents", type=int, default=50, help="concurrent residents")
    parser.add_argument("--messages", type=int, default=10, help="messages per resident")
    add_database_options(parser)
    parser.add_argument("--timeout", type=float, default=300.0, help="give up after (s)")
    args = parser.parse_args(argv)
    if args.residents < 1 or args.messages < 1:
        parser.error("--residents and --messages must be at least 1")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    return run_bot_benchmark(lambda: run(args), timeout=args.timeout, token=TOKEN)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
