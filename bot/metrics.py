"""What /metrics shows: counters kept by this process, and gauges read from the database.

Nothing here can name or count a single resident: no label carries a chat, a person, a
pseudonym, a ward's area or a tip; labels come from fixed sets (event kinds, outcomes,
channel names, delivery reasons, job names). Counters are per process (Prometheus sums the
processes); the gauges read from the database are the cluster's, the same in every process.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import func
from sqlmodel import col, select

from handlers.context import Services, Turn
from handlers.dispatch import Dispatcher
from handlers.events import Inbound
from handlers.middleware import Answer
from storage.db import unit_of_work
from storage.models import Broadcast, BroadcastStatus, Delivery, DeliveryStatus, Tip, TipStatus

# Prometheus' usual habit: the metrics are module-level, registered once, on our own registry
# (not the default one, so that nothing else a library registers is published).
REGISTRY: Final = CollectorRegistry()
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
_DAY: Final = timedelta(days=1)

UPDATES: Final = Counter(
    "homthu_updates",
    "Events handled, by kind (text, choice, photo, ...) and outcome (ok, error)",
    ["kind", "outcome"],
    registry=REGISTRY,
)
TURN_SECONDS: Final = Histogram(
    "homthu_turn_seconds",
    "Time from an event reaching the dispatcher to its answers being sent",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
TURNS_FAILED: Final = Counter(
    "homthu_turns_failed",
    "Turns that failed and were rolled back (the person got the apology), by event kind",
    ["kind"],
    registry=REGISTRY,
)
WEBHOOK_REQUESTS: Final = Counter(
    "homthu_webhook_requests",
    "Webhook deliveries, by source and outcome "
    "(accepted, repeat, unauthorized, malformed, too_large, stopping)",
    ["source", "outcome"],
    registry=REGISTRY,
)
SENDS: Final = Counter(
    "homthu_sends",
    "Messages sent, by channel and result (sent, or why not: blocked, rate_limited, ...)",
    ["channel", "result"],
    registry=REGISTRY,
)
FLOOD_WAITS: Final = Counter(
    "homthu_flood_waits",
    "429 Too Many Requests answers from a platform, by channel",
    ["channel"],
    registry=REGISTRY,
)
JOB_RUNS: Final = Counter(
    "homthu_job_runs",
    "Scheduled job runs in this process, by job and outcome (ok, failed)",
    ["job", "outcome"],
    registry=REGISTRY,
)
LEADER: Final = Gauge(
    "homthu_leader",
    "1 when this process runs the scheduled jobs of the cluster",
    registry=REGISTRY,
)
TIPS: Final = Gauge(
    "homthu_tips", "Tips stored, every ward together, by status", ["status"], registry=REGISTRY
)
TIPS_RECEIVED_DAY: Final = Gauge(
    "homthu_tips_received_24h", "Tips received in the last 24 hours", registry=REGISTRY
)
CARDS_PENDING: Final = Gauge(
    "homthu_cards_pending",
    "Tips whose card or files have not reached the officers' group yet",
    registry=REGISTRY,
)
CARDS_OLDEST: Final = Gauge(
    "homthu_cards_pending_oldest_seconds",
    "Age of the oldest tip still waiting for its card (0 when none waits)",
    registry=REGISTRY,
)
BROADCAST_DELIVERIES: Final = Gauge(
    "homthu_broadcast_deliveries",
    "Copies of the broadcasts now running, by delivery status",
    ["status"],
    registry=REGISTRY,
)
BROADCASTS_RUNNING: Final = Gauge(
    "homthu_broadcasts_running", "Broadcasts being delivered now", registry=REGISTRY
)


class CountedDispatcher(Dispatcher):
    """The dispatcher, counting events by kind and outcome and timing their turns."""

    async def handle(self, event: Inbound) -> None:
        """Handle the event, then count it."""
        started = time.perf_counter()
        outcome = "error"
        try:
            await super().handle(event)
            outcome = "ok"
        finally:
            TURN_SECONDS.observe(time.perf_counter() - started)
            UPDATES.labels(event.kind.value, outcome).inc()


def counting(apology: Answer) -> Answer:
    """The dispatcher's apology middleware, counting the failed turns it answers."""

    def apologise(turn: Turn) -> None:
        TURNS_FAILED.labels(turn.event.kind.value).inc()
        apology(turn)

    return apologise


async def read_database(services: Services) -> None:
    """Set the gauges that describe the whole cluster from the database."""
    now: datetime = services.clock()
    async with unit_of_work(services.sessions) as session:
        by_status = dict(
            (await session.exec(select(Tip.status, func.count()).group_by(Tip.status))).all()
        )
        day = (
            await session.exec(select(func.count()).where(col(Tip.created_at) >= now - _DAY))
        ).one()
        pending, oldest = (
            await session.exec(
                select(func.count(), func.min(Tip.created_at)).where(col(Tip.posted_at).is_(None))
            )
        ).one()
        running = (
            await session.exec(
                select(func.count()).where(col(Broadcast.status) == BroadcastStatus.RUNNING)
            )
        ).one()
        deliveries = dict(
            (
                await session.exec(
                    select(Delivery.status, func.count())
                    .join(Broadcast, col(Broadcast.id) == col(Delivery.broadcast_id))
                    .where(col(Broadcast.status) == BroadcastStatus.RUNNING)
                    .group_by(Delivery.status)
                )
            ).all()
        )
    for status in TipStatus:
        TIPS.labels(status.value).set(by_status.get(status, 0))
    TIPS_RECEIVED_DAY.set(day)
    CARDS_PENDING.set(pending)
    CARDS_OLDEST.set((now - oldest).total_seconds() if oldest is not None else 0)
    BROADCASTS_RUNNING.set(running)
    for delivery_status in DeliveryStatus:
        BROADCAST_DELIVERIES.labels(delivery_status.value).set(deliveries.get(delivery_status, 0))


def exposition() -> bytes:
    """Every metric in Prometheus' text format."""
    return generate_latest(REGISTRY)
