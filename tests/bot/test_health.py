"""/healthz and /metrics: what an operator's monitoring reads, and that it names no one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot import metrics
from bot.app import Runtime, database_answers
from bot.emulator import BotApiEmulator
from bot.webhook import WebhookServer
from chat import Group, Person
from handlers.events import DeliveryReason, EventKind
from handlers.settings import WebhookSection
from storage import repositories as repo
from storage.db import create_engine, session_factory
from storage.models import BroadcastStatus, DeliveryStatus, TipStatus
from tests_support import send_tip


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


@pytest.fixture
async def server(runtime: Runtime) -> AsyncIterator[WebhookServer]:
    """The bot's HTTP server beside the running bot, on a free port."""
    services = runtime.services
    served = WebhookServer(
        WebhookSection(port=0),
        health=lambda: database_answers(services),
        before_metrics=lambda: metrics.read_database(services),
    )
    await served.start()
    yield served
    await served.stop()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_healthz_answers_from_the_database_alone(
    server: WebhookServer, emulator: BotApiEmulator
) -> None:
    calls = len(emulator.calls)
    assert await get(server.url + "/healthz") == (200, "ok\n")
    assert len(emulator.calls) == calls  # never asks Telegram

    server.draining()
    assert await get(server.url + "/healthz") == (503, "stopping\n")


async def test_healthz_fails_when_the_database_does_not_answer() -> None:
    # Nothing listens on port 1: the database "is down".
    engine = create_engine("postgresql+asyncpg://homthu@127.0.0.1:1/homthu")
    broken: Any = SimpleNamespace(sessions=session_factory(engine))
    served = WebhookServer(WebhookSection(port=0), health=lambda: database_answers(broken))
    await served.start()
    try:
        assert await get(served.url + "/healthz") == (503, "database unavailable\n")
    finally:
        await served.stop()
        await engine.dispose()


async def test_metrics_count_the_work_and_name_no_one(
    server: WebhookServer, runtime: Runtime, resident: Person, officers: Group
) -> None:
    before = samples((await get(server.url + "/metrics"))[1])
    await send_tip(resident, "Có người bán ma túy đá ở nhà số 7 hẻm 12 mỗi tối")
    await officers.sees()
    job = runtime.scheduler.get_job("purge-drafts")
    assert job is not None
    await job.func()  # as the scheduler runs it

    status, text = await get(server.url + "/metrics")
    assert status == 200
    after = samples(text)

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert grew("homthu_updates_total", kind="text", outcome="ok") == 2
    assert grew("homthu_updates_total", kind="choice", outcome="ok") == 5
    assert grew("homthu_updates_total", kind="command", outcome="ok") == 1
    assert grew("homthu_sends_total", channel="telegram", result="sent") >= 8
    assert grew("homthu_turn_seconds_count") == 8
    assert after[("homthu_tips", (("status", "new"),))] == 1
    assert after[("homthu_tips_received_24h", ())] == 1
    assert after[("homthu_cards_pending", ())] == 0
    assert after[("homthu_cards_pending_oldest_seconds", ())] == 0
    assert after[("homthu_leader", ())] == 1
    assert grew("homthu_job_runs_total", job="purge-drafts", outcome="ok") == 1
    assert grew("homthu_turns_failed_total", kind="text") == 0

    # Nobody can be named or counted: no person, chat, words or pseudonym in it...
    services = runtime.services
    for secret in (
        str(resident.chat_id),
        "Trần Văn",
        "tran_van_bian_secret",
        "nhà số 7 hẻm 12",
        services.keyring.chat_key("telegram", str(resident.chat_id)),
        services.keyring.pseudonym("telegram", str(resident.chat_id)),
        "Khu phố",
    ):
        assert secret not in text
    # ...and every label comes from a fixed set, so none can carry one.
    allowed = {
        "kind": {k.value for k in EventKind},
        "outcome": {
            "ok",
            "error",
            "failed",
            "accepted",
            "repeat",
            "unauthorized",
            "malformed",
            "too_large",
            "stopping",
        },
        "channel": {"telegram", "zalo"},
        "result": {"sent"} | {r.value for r in DeliveryReason},
        "source": {"telegram", "zalo", "other"},
        "status": {s.value for s in (*TipStatus, *DeliveryStatus, *BroadcastStatus)},
        "job": set(),  # filled below from the scheduler's own names
        "le": None,
    }
    allowed["job"] = {job.id for job in runtime.scheduler.get_jobs()}
    for name, labels in after:
        for label, value in labels:
            assert label in allowed, (name, label)
            assert allowed[label] is None or value in allowed[label], (name, label, value)


async def test_a_failed_turn_is_counted_by_its_kind(
    server: WebhookServer, resident: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def unreachable(**_: object) -> None:
        raise ConnectionRefusedError("database down")

    before = samples((await get(server.url + "/metrics"))[1])
    monkeypatch.setattr(repo, "get_chat_state", unreachable)
    sorry = await resident.says("xin chào")
    assert "Xin lỗi" in sorry.text
    after = samples((await get(server.url + "/metrics"))[1])
    key = ("homthu_turns_failed_total", (("kind", "text"),))
    assert after[key] - before.get(key, 0) == 1
