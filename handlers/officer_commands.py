"""Officers' commands, in their group or in a private chat: /queue, /tip N and /stats."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from handlers.cards import STATUS_ICONS, age
from handlers.context import Services, Turn
from handlers.events import Choice, DeliveryError, Outbound
from handlers.router import Router, Scope, callback, parse_id
from handlers.settings import Ward
from handlers.staff import group_ward, may_act, user_id
from handlers.text import split_text
from handlers.triage import Priority, describe
from storage import broadcasts as broadcast_repo
from storage import queue as queue_repo
from storage import reports
from storage.models import Tip, TipEvent, TipMessage, TipStatus

log = logging.getLogger(__name__)

router = Router(__name__, scope=Scope.GROUP)
# The same commands in an officer's own chat with the bot; a resident falls through.
private_router = Router(f"{__name__}.private", scope=Scope.PRIVATE)

NAMESPACE: Final = "o"
PAGE_SIZE: Final = 10
MAX_PAGE: Final = 100_000
TEXT_LIMIT: Final = 4096
PRIORITY_DOTS: Final = {
    Priority.URGENT: "🔴",
    Priority.HIGH: "🟠",
    Priority.NORMAL: "🟢",
    Priority.LOW: "⚪",
}
# Audit-log actions with a label; an action added later shows its code until it gets one.
ACTIONS: Final = frozenset(
    {"claim", "status", "assign", "note", "ask", "answer", "block", "contact_deleted"}
)
STATUS_ACTIONS: Final = frozenset({"claim", "status"})
STATUS_VALUES: Final = frozenset(status.value for status in TipStatus)


@dataclass(frozen=True, slots=True)
class Desk:
    """Who may be answered about which wards, and in which language."""

    services: Services
    wards: tuple[Ward, ...]
    language: str

    def t(self, key: str, **values: object) -> str:
        """Return a catalogue text in the answer's language."""
        return self.services.catalogue.text(self.language, key, **values)

    def local(self, moment: datetime) -> str:
        """Return a moment as the ward's clock shows it."""
        return moment.astimezone(self.services.settings.bot.tz).strftime("%H:%M %d/%m/%Y")

    def ward(self, code: str) -> Ward | None:
        """Return one of the desk's wards by code."""
        return next((ward for ward in self.wards if ward.code == code), None)


Command = Callable[[Turn, Desk], Awaitable[None]]


def _group_desk(turn: Turn) -> Desk | None:
    ward = group_ward(turn)
    if ward is None:
        return None
    # What is posted in the group is read by all, so it is in the bot's language.
    return Desk(turn.services, (ward,), turn.services.settings.bot.language)


def _private_desk(turn: Turn) -> Desk | None:
    user = user_id(turn)
    wards = tuple(ward for ward in turn.services.settings.wards if may_act(ward, user))
    return Desk(turn.services, wards, turn.language) if wards else None


async def _in_group(turn: Turn, command: Command) -> bool:
    desk = _group_desk(turn)
    if desk is None:
        return False
    if not may_act(desk.wards[0], user_id(turn)):
        turn.send(Outbound(text=desk.t("officer.not_allowed"), reply_to=turn.event.message_id))
        return True
    await command(turn, desk)
    return True


async def _in_private(turn: Turn, command: Command) -> bool:
    desk = _private_desk(turn)
    if desk is None:
        return False
    await command(turn, desk)
    return True


def _say_long(turn: Turn, text: str) -> None:
    for piece in split_text(text, TEXT_LIMIT):
        turn.say(piece)


# /queue


def tip_line(desk: Desk, tip: Tip, now: datetime) -> str:
    """Return one tip as a line of a list: priority, number, category, area, age, handler."""
    return desk.t(
        "officer.queue_line",
        dot=PRIORITY_DOTS.get(Priority(tip.priority), "•"),
        number=tip.id,
        category=desk.t(f"category.{tip.category.value}"),
        area=tip.area or desk.t("tip.area_unknown"),
        age=age(desk.t, tip.created_at, now),
        who=tip.assignee_name or desk.t("card.nobody"),
    )


async def queue_page(turn: Turn, desk: Desk, ward: Ward, page: int) -> Outbound:
    """Return a page of a ward's open tips with paging buttons; past the end, the last page."""
    # Past any real queue, and an offset the database can still take.
    page = min(max(0, page), MAX_PAGE)
    tips, total = await queue_repo.open_tips(
        session=turn.session, ward_code=ward.code, offset=page * PAGE_SIZE, limit=PAGE_SIZE
    )
    if not total:
        return Outbound(text=desk.t("officer.queue_empty", ward=ward.name))
    pages = -(-total // PAGE_SIZE)
    if not 0 <= page < pages:
        page = min(max(0, page), pages - 1)
        tips, total = await queue_repo.open_tips(
            session=turn.session, ward_code=ward.code, offset=page * PAGE_SIZE, limit=PAGE_SIZE
        )
    header = desk.t(
        "officer.queue_header", ward=ward.name, total=total, page=page + 1, pages=pages
    )
    lines = [header, "", *(tip_line(desk, tip, turn.now) for tip in tips)]
    buttons = []
    if page > 0:
        buttons.append(
            Choice(desk.t("officer.page_back"), callback(NAMESPACE, f"{ward.code}:{page - 1}"))
        )
    if page < pages - 1:
        buttons.append(
            Choice(desk.t("officer.page_next"), callback(NAMESPACE, f"{ward.code}:{page + 1}"))
        )
    return Outbound(text="\n".join(lines), choices=(tuple(buttons),) if buttons else ())


async def _queue(turn: Turn, desk: Desk) -> None:
    for ward in desk.wards:
        turn.send(await queue_page(turn, desk, ward, 0))


@router.command("queue")
async def on_group_queue(turn: Turn) -> bool:
    """List the group's ward's open tips, urgent first, ten to a page."""
    return await _in_group(turn, _queue)


@private_router.command("queue")
async def on_private_queue(turn: Turn) -> bool:
    """List the open tips of the officer's ward(s); leave anyone else to the menu."""
    return await _in_private(turn, _queue)


async def _turn_page(turn: Turn, desk: Desk, value: str) -> None:
    code, _, number = value.rpartition(":")
    ward = desk.ward(code)
    if ward is None or turn.event.message_id is None:
        turn.notify(desk.t("officer.stale_page"), alert=True)
        return
    page = parse_id(number) or 0
    message = await queue_page(turn, desk, ward, page)
    services, chat, message_id = turn.services, turn.event.chat, turn.event.message_id
    channel = services.channel(turn.event.channel)

    async def edit() -> None:
        try:
            await channel.edit(chat, message_id, message)
        except DeliveryError as error:
            log.warning("Could not turn the queue page: %s", error)

    turn.then(edit)


@router.choice(NAMESPACE)
async def on_group_page(turn: Turn, value: str) -> bool:
    """Show another page of the queue in place, for the ward's officers only."""
    desk = _group_desk(turn)
    if desk is None:
        return False
    if not may_act(desk.wards[0], user_id(turn)):
        turn.notify(desk.t("officer.not_allowed"), alert=True)
        return True
    await _turn_page(turn, desk, value)
    return True


@private_router.choice(NAMESPACE)
async def on_private_page(turn: Turn, value: str) -> bool:
    """Show another page of the queue in the officer's own chat."""
    desk = _private_desk(turn)
    if desk is None:
        return False
    await _turn_page(turn, desk, value)
    return True


# /tip N


def _tip_number(turn: Turn) -> int | None:
    typed = turn.event.args.strip().lstrip("#")
    return parse_id(typed)


def _facts(desk: Desk, tip: Tip, now: datetime) -> list[str]:
    category = desk.t(f"category.{tip.category.value}")
    lines = [
        desk.t("card.header", icon=STATUS_ICONS[tip.status], number=tip.id, category=category),
        desk.t(f"priority.{Priority(tip.priority).value}"),
        *(
            desk.t(
                "officer.flag_line",
                flag=desk.t(f"flag.{flag['code']}"),
                rule=describe(flag["rule"], desk.t),
            )
            for flag in tip.flags
        ),
    ]
    if len(desk.services.settings.wards) > 1:
        lines.append(desk.t("officer.ward_line", ward=desk.services.ward(tip.ward_code).name))
    lines.append(desk.t("card.area", area=tip.area or desk.t("tip.area_unknown")))
    if tip.place:
        lines.append(desk.t("card.place", place=tip.place))
    if tip.latitude is not None and tip.longitude is not None:
        lines.append(desk.t("card.map", lat=f"{tip.latitude:.5f}", lon=f"{tip.longitude:.5f}"))
    ago = age(desk.t, tip.created_at, now)
    lines.append(desk.t("card.received", time=desk.local(tip.created_at), age=ago))
    who = tip.assignee_name or desk.t("card.nobody")
    lines.append(desk.t("card.status", status=desk.t(f"status.{tip.status.value}"), who=who))
    if tip.attachment_count:
        lines.append(desk.t("officer.files", count=tip.attachment_count))
    if tip.purged_at is not None:
        return [*lines, "", desk.t("card.purged", date=desk.local(tip.purged_at))]
    return [*lines, "", desk.t("card.text"), tip.text]


def _value(desk: Desk, event: TipEvent, value: str) -> str:
    if event.action in STATUS_ACTIONS and value in STATUS_VALUES:
        return desk.t(f"status.{value}")
    return value


def _history(desk: Desk, events: Sequence[TipEvent]) -> list[str]:
    lines = [desk.t("officer.history")]
    for event in events:
        if event.actor_name:
            who = event.actor_name
        elif event.actor_id is not None:
            who = desk.t("queue.officer_fallback", id=event.actor_id)
        else:
            who = desk.t("officer.sender")
        known = event.action in ACTIONS
        action = desk.t(f"officer.action_{event.action}") if known else event.action
        line = desk.t("officer.event_line", time=desk.local(event.at), who=who, action=action)
        if event.before and event.after:
            before, after = _value(desk, event, event.before), _value(desk, event, event.after)
            line += desk.t("officer.event_change", before=before, after=after)
        elif event.after:
            line += desk.t("officer.event_after", after=_value(desk, event, event.after))
        lines.append(line)
        if event.detail:
            lines.append(desk.t("officer.event_detail", text=event.detail))
    if not events:
        lines.append(desk.t("officer.history_none"))
    return lines


def _conversation(desk: Desk, messages: Sequence[TipMessage], names: dict[int, str]) -> list[str]:
    lines = [desk.t("officer.conversation")]
    for message in messages:
        time = desk.local(message.at)
        if message.direction == "question":
            officer = message.officer_id
            who = names.get(officer or 0) or desk.t("queue.officer_fallback", id=officer or "?")
            lines.append(desk.t("officer.question", time=time, who=who))
        else:
            lines.append(desk.t("officer.answer", time=time))
        lines.append(desk.t("officer.message_text", text=message.text))
    if not messages:
        lines.append(desk.t("officer.conversation_none"))
    return lines


async def tip_record(turn: Turn, desk: Desk, tip: Tip) -> str:
    """Return a tip's facts, its audit log and its anonymous conversation, as one text."""
    assert tip.id is not None
    events = await queue_repo.events_of(session=turn.session, tip_id=tip.id)
    messages = await queue_repo.messages_of(session=turn.session, tip_id=tip.id)
    askers = {m.officer_id for m in messages if m.officer_id is not None}
    names = await queue_repo.officer_names(session=turn.session, user_ids=sorted(askers))
    parts = [
        _facts(desk, tip, turn.now),
        _history(desk, events),
        _conversation(desk, messages, names),
    ]
    return "\n\n".join("\n".join(part) for part in parts)


async def _tip(turn: Turn, desk: Desk) -> None:
    number = _tip_number(turn)
    if number is None:
        turn.say(desk.t("officer.tip_usage"))
        return
    tip = await reports.ward_tip(
        session=turn.session, ward_codes=[ward.code for ward in desk.wards], tip_id=number
    )
    if tip is None:
        turn.say(desk.t("officer.not_found", number=number))
        return
    _say_long(turn, await tip_record(turn, desk, tip))


@router.command("tip")
async def on_group_tip(turn: Turn) -> bool:
    """Show one of the ward's tips in full, with who did what to it and the conversation."""
    return await _in_group(turn, _tip)


@private_router.command("tip")
async def on_private_tip(turn: Turn) -> bool:
    """Show an officer one of their ward's tips; a bare /tip is the resident's command."""
    if not turn.event.args.strip():
        return False
    return await _in_private(turn, _tip)


# /stats


def duration_text(desk: Desk, span: timedelta) -> str:
    """Return a duration in whole minutes, hours or days, as people say it."""
    minutes = max(0, int(span.total_seconds() // 60))
    if minutes < 60:
        return desk.t("officer.minutes", m=minutes)
    if minutes < 48 * 60:
        return desk.t("officer.hours_minutes", h=minutes // 60, m=minutes % 60)
    return desk.t("officer.days_hours", d=minutes // 1440, h=minutes % 1440 // 60)


def month_bounds(now: datetime, services: Services) -> tuple[datetime, datetime]:
    """Return the start of this month and of the next, in UTC, by the ward's calendar."""
    local = now.astimezone(services.settings.bot.tz)
    start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    following = (start + timedelta(days=32)).replace(day=1)
    return start.astimezone(UTC), following.astimezone(UTC)


def stats_text(
    desk: Desk,
    ward: Ward,
    stats: reports.MonthStats,
    month: str,
    reach: Sequence[tuple[str | None, int, int]] = (),
) -> str:
    """Return a ward's month: tips by status, category and area, speed, and broadcast reach."""
    lines = [
        desk.t("officer.stats_header", month=month, ward=ward.name),
        desk.t("officer.stats_received", count=stats.received),
    ]
    if stats.received:
        statuses = [(s.value, stats.by_status.get(s.value, 0)) for s in TipStatus]
        groups = (
            ("officer.stats_by_status", [(desk.t(f"status.{k}"), n) for k, n in statuses if n]),
            (
                "officer.stats_by_category",
                [(desk.t(f"category.{k}"), n) for k, n in stats.by_category.items()],
            ),
            (
                "officer.stats_by_area",
                [(k or desk.t("tip.area_unknown"), n) for k, n in stats.by_area.items()],
            ),
        )
        for title, rows in groups:
            lines += ["", desk.t(title)]
            lines += [desk.t("officer.stats_row", label=label, count=n) for label, n in rows]
    lines.append("")
    if stats.median_to_claim is None:
        lines.append(desk.t("officer.stats_no_claims"))
    else:
        duration = duration_text(desk, stats.median_to_claim)
        lines.append(desk.t("officer.stats_median", duration=duration, count=stats.claimed))
    # The plans' KPI: every resident reached by the monthly message at least once a month.
    subscribed = sum(active for _, active, _ in reach)
    lines += ["", desk.t("officer.reach_header")]
    if not subscribed:
        lines.append(desk.t("officer.reach_nobody"))
    for area, active, reached in reach:
        if active:
            lines.append(
                desk.t(
                    "officer.reach_row",
                    area=area or desk.t("tip.area_unknown"),
                    reached=reached,
                    active=active,
                    share=round(100 * reached / active),
                )
            )
    return "\n".join(lines)


async def _stats(turn: Turn, desk: Desk) -> None:
    start, end = month_bounds(turn.now, turn.services)
    month = start.astimezone(turn.services.settings.bot.tz).strftime("%m/%Y")
    for ward in desk.wards:
        stats = await reports.month_stats(
            session=turn.session, ward_code=ward.code, start=start, end=end
        )
        reach = await broadcast_repo.coverage(
            session=turn.session, month_start=start, month_end=end, ward_code=ward.code
        )
        _say_long(turn, stats_text(desk, ward, stats, month, reach))


@router.command("stats")
async def on_group_stats(turn: Turn) -> bool:
    """Give this month's figures of the group's ward."""
    return await _in_group(turn, _stats)


@private_router.command("stats")
async def on_private_stats(turn: Turn) -> bool:
    """Give this month's figures of the officer's ward(s)."""
    return await _in_private(turn, _stats)
