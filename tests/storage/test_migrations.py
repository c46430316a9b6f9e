"""Migrations: from nothing to head, and across revisions with data in the tables."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from alembic import command
from alembic.util.exc import CommandError
from sqlalchemy import text

from storage.db import alembic_config, create_engine, upgrade_async


async def test_head_matches_the_models(empty_database: str) -> None:
    await upgrade_async(empty_database)
    try:
        # Alembic's env runs its own event loop: call it from a thread, as upgrade_async does.
        await asyncio.to_thread(command.check, alembic_config(empty_database))
    except CommandError as error:  # pragma: no cover - the message is the diagnosis
        pytest.fail(f"models and migrations differ: {error}")


async def test_tips_stored_before_the_queue_get_its_defaults(empty_database: str) -> None:
    await upgrade_async(empty_database, "0001")
    engine = create_engine(empty_database)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO tips (ward_code, category, text, status, receipt_hash,"
                " attachment_count, created_at, updated_at)"
                " VALUES ('w', 'dealing', 'old tip', 'new', 'h', 0, :now, :now)"
            ),
            {"now": now},
        )
    await upgrade_async(empty_database)
    async with engine.connect() as connection:
        row = (
            await connection.execute(text("SELECT priority, card_version, pinned FROM tips"))
        ).one()
    await engine.dispose()
    assert (row.priority, row.card_version, bool(row.pinned)) == ("normal", 1, False)
