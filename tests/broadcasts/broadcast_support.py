"""Seeding subscribers and broadcasts the way the resident flow and the scheduler will."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from handlers.context import Services
from storage import broadcasts as repo
from storage.crypto import Keyring
from storage.db import SessionFactory, unit_of_work
from storage.models import Broadcast

WARD = "dong-cuong"


def sealed_address(keyring: Keyring, chat_id: int) -> tuple[str, bytes]:
    """The chat key and sealed address a subscription stores for a Telegram chat."""
    chat_key = keyring.chat_key("telegram", str(chat_id))
    address = json.dumps({"channel": "telegram", "chat": str(chat_id)}).encode()
    return chat_key, keyring.seal(address, context=f"subscription:{chat_key}")


async def subscribe(
    sessions: SessionFactory,
    keyring: Keyring,
    chat_ids: list[int],
    now: datetime,
    *,
    ward: str = WARD,
    area: str | None = "Khu phố 1",
) -> None:
    """Subscribe these chats, in one transaction."""
    async with unit_of_work(sessions) as session:
        for chat_id in chat_ids:
            chat_key, sealed = sealed_address(keyring, chat_id)
            await repo.subscribe(
                session=session,
                chat_key=chat_key,
                sealed_chat=sealed,
                ward_code=ward,
                area=area,
                language="vi",
                now=now,
            )


async def add_broadcast(services: Services | SessionFactory, **fields: object) -> int:
    """Store a broadcast and return its id."""
    sessions = services.sessions if isinstance(services, Services) else services
    values: dict[str, object] = {
        "text": "Tháng này: tác hại của ma túy.",
        "ward_code": WARD,
        "scheduled_at": datetime.now(UTC),
    }
    values.update(fields)
    async with unit_of_work(sessions) as session:
        broadcast = Broadcast(**values)  # type: ignore[arg-type]
        session.add(broadcast)
        await session.flush()
        assert broadcast.id is not None
        return broadcast.id
