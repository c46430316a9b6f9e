"""Benchmark: what sealing tips at rest costs, per value and for a whole key rotation.

    .venv/bin/python benchmarks/sealing.py [--tips 10000] [--postgres | --database URL]

Seals and opens a typical tip text (300 characters of Vietnamese) many times and prints the
cost of each in microseconds (p50/p95 over batches). Then stores --tips tips, each with a place,
a location, one attachment and a question and answer (seven sealed values a tip), through the
real ORM and sealed column types, and times ``storage.keys.rotate``: every value opened and
sealed again under a new data key, in one transaction. Prints values per second, the total
time and the peak RSS.

Database: a fresh SQLite file by default; --postgres makes a scratch database on
HOMTHU_PG_ADMIN_URL (default postgresql://postgres@127.0.0.1:5432/postgres), dropped after.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import time
from datetime import UTC, datetime
from typing import Final

from sqlmodel import SQLModel
from support import add_database_options, database, percentile

from storage import keys
from storage.crypto import Keyring
from storage.db import create_engine, session_factory, unit_of_work
from storage.models import Category, Tip, TipAttachment, TipMessage
from storage.sealed import SealedText

SECRET: Final = b"benchmark-secret-key-with-32-chars!!"
TEXT: Final = ("Tối nào cũng có người bán ma túy đá ở quán nước đầu ngõ 12, khoảng 9 giờ. " * 4)[
    :300
]
BATCHES: Final = 50
PER_BATCH: Final = 200


def value_costs(keyring: Keyring) -> tuple[list[float], list[float]]:
    """Microseconds per seal and per open, one figure per batch."""
    column = SealedText("tips.text")
    seals: list[float] = []
    opens: list[float] = []
    for _ in range(BATCHES):
        start = time.perf_counter()
        stored = [column.seal(TEXT, keyring) for _ in range(PER_BATCH)]
        seals.append((time.perf_counter() - start) / PER_BATCH * 1e6)
        start = time.perf_counter()
        for value in stored:
            column.open(value, keyring)
        opens.append((time.perf_counter() - start) / PER_BATCH * 1e6)
    return seals, opens


async def run(args: argparse.Namespace) -> int:
    async with database(args) as (url, label):
        keyring = Keyring(SECRET)
        engine = create_engine(url, keyring=keyring)
        async with engine.begin() as connection:
            await connection.run_sync(SQLModel.metadata.create_all)
        sessions = session_factory(engine)
        now = datetime.now(UTC)
        async with unit_of_work(sessions) as session:
            await keys.load(session=session, keyring=keyring, now=now)
        seals, opens = value_costs(keyring)
        for start in range(0, args.tips, 500):
            async with unit_of_work(sessions) as session:
                for n in range(start, min(start + 500, args.tips)):
                    tip = Tip(
                        ward_code="dong-cuong",
                        category=Category.DEALING,
                        area="Khu phố 3",
                        place="Quán nước đầu ngõ 12",
                        latitude=21.02851,
                        longitude=105.85423,
                        text=TEXT,
                        receipt_hash=f"{n:064d}",
                        created_at=now,
                        updated_at=now,
                    )
                    session.add(tip)
                    await session.flush()
                    assert tip.id is not None
                    session.add(
                        TipAttachment(tip_id=tip.id, position=0, kind="photo", file_id="AgAC" * 20)
                    )
                    for direction in ("question", "answer"):
                        session.add(
                            TipMessage(tip_id=tip.id, direction=direction, text=TEXT[:80], at=now)
                        )
        start_time = time.perf_counter()
        async with unit_of_work(sessions) as session:
            report = await keys.rotate(session=session, metadata=SQLModel.metadata, now=now)
        took = time.perf_counter() - start_time
        await engine.dispose()
    values = sum(report.resealed.values())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"database: {label}")
    print(
        f"seal one 300-character text: p50 {percentile(seals, 0.5):.1f} µs, "
        f"p95 {percentile(seals, 0.95):.1f} µs"
    )
    print(f"open one: p50 {percentile(opens, 0.5):.1f} µs, p95 {percentile(opens, 0.95):.1f} µs")
    print(
        f"keys rotate over {args.tips:,} tips: {values:,} values sealed anew in {took:.1f} s "
        f"({values / took:,.0f} values/s)"
    )
    print(f"peak RSS: {peak:.0f} MiB")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tips", type=int, default=10_000)
    add_database_options(parser)
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
