"""Supervisors' own broadcasts: /broadcast composes, previews and sends; /broadcasts lists.

Only a ward supervisor, in a private chat, reaches these handlers; anyone else falls through
to the normal answers. A broadcast being composed is stored as a row with status cancelled
and no finish time, so nothing ever sends it before the supervisor confirms.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from typing import Final

from broadcasts import engine
from broadcasts.content import footer
from handlers.context import AfterCommit, Services, Turn
from handlers.events import Choice, EventKind, Media, Outbound
from handlers.router import Router, callback, parse_id
from handlers.settings import Ward
from handlers.staff import user_id
from storage import broadcasts as store
from storage.db import unit_of_work
from storage.models import Broadcast, BroadcastStatus, DeliveryStatus

log = logging.getLogger(__name__)

router = Router(__name__)

NAMESPACE: Final = "bc"
AWAITING_TEXT: Final = "bc:text"
AWAITING_WHEN: Final = "bc:when:"
LIST_SIZE: Final = 15
# With the ward's hotlines below it, the message still fits one Telegram message (4,096).
TEXT_LIMIT: Final = 3000
ALL: Final = "all"
_TIME: Final = re.compile(r"(\d{1,2})\s*[:hg]\s*(\d{2})")
_DATE: Final = re.compile(r"(\d{1,2})\s*[/.-]\s*(\d{1,2})(?:\s*[/.-]\s*(\d{4}))?")

Rows = tuple[tuple[Choice, ...], ...]


def _supervised(services: Services, user: int | None) -> tuple[Ward, ...]:
    return tuple(w for w in services.settings.wards if user is not None and user in w.supervisors)


def _wards(turn: Turn) -> tuple[Ward, ...]:
    return _supervised(turn.services, user_id(turn)) if turn.event.private else ()


def _button(turn: Turn, key: str, value: str, **values: object) -> Choice:
    return Choice(turn.t(key, **values), callback(NAMESPACE, value))


def _local(turn: Turn, moment: datetime) -> str:
    return moment.astimezone(turn.services.settings.bot.tz).strftime("%H:%M %d/%m/%Y")


def _is_draft(broadcast: Broadcast) -> bool:
    return broadcast.status is BroadcastStatus.DRAFT


def _audience(turn: Turn, broadcast: Broadcast) -> str:
    if broadcast.ward_code is None:
        return turn.t("compose.audience_all")
    name = turn.services.ward(broadcast.ward_code).name
    if broadcast.area is None:
        return name
    return turn.t("compose.audience_area", ward=name, area=broadcast.area)


def resident_text(turn: Turn, body: str, ward: Ward) -> str:
    """Return what residents of a ward receive: the text, then the ward's hotlines."""
    return (
        f"{body}\n\n{footer(ward, turn.services.settings.bot.language, turn.services.catalogue)}"
    )


async def _draft(turn: Turn, broadcast_id: str) -> Broadcast | None:
    """Return this supervisor's draft with that id, or None for anything else."""
    number = parse_id(broadcast_id)
    if number is None:
        return None
    broadcast = await store.get_broadcast(session=turn.session, broadcast_id=number)
    if broadcast is None or not _is_draft(broadcast) or broadcast.created_by != user_id(turn):
        return None
    return broadcast


def _stale(turn: Turn) -> None:
    turn.awaiting = None
    turn.say(turn.t("compose.stale"))


@router.command("broadcast")
async def on_broadcast(turn: Turn) -> bool:
    """Ask a supervisor for the text (and optionally a photo) of a new broadcast."""
    if not _wards(turn):
        return False
    turn.awaiting = AWAITING_TEXT
    turn.say(turn.t("compose.ask_text"), ((_button(turn, "compose.cancel", "no:0"),),))
    return True


async def _take_text(turn: Turn) -> None:
    """Store the text as a draft and ask who should receive it."""
    event = turn.event
    body = (event.text or "").strip()
    photo = event.media.file_id if event.kind is EventKind.PHOTO and event.media else None
    if event.kind not in (EventKind.TEXT, EventKind.PHOTO) or not body:
        turn.say(turn.t("compose.need_text"), ((_button(turn, "compose.cancel", "no:0"),),))
        return
    if len(body) > TEXT_LIMIT:
        limit = f"{TEXT_LIMIT:,}".replace(",", ".")
        too_long = turn.t("hardening.broadcast_too_long", limit=limit)
        turn.say(too_long, ((_button(turn, "compose.cancel", "no:0"),),))
        return
    user = user_id(turn)
    draft = Broadcast(
        text=body,
        image=photo,
        status=BroadcastStatus.DRAFT,
        scheduled_at=turn.now,
        created_by=user,
        progress_chat=event.chat,
    )
    await store.save_broadcast(session=turn.session, broadcast=draft)
    turn.awaiting = None
    _ask_audience(turn, draft)


def _ask_audience(turn: Turn, draft: Broadcast) -> None:
    wards = _wards(turn)
    rows: list[tuple[Choice, ...]] = []
    if len(wards) > 1:
        rows.append((_button(turn, "compose.to_all", f"w:{draft.id}:{ALL}"),))
    for ward in wards:
        rows.append(
            (_button(turn, "compose.to_ward", f"w:{draft.id}:{ward.code}", ward=ward.name),)
        )
    for ward in wards:
        rows.append(
            (_button(turn, "compose.to_area", f"a:{draft.id}:{ward.code}", ward=ward.name),)
        )
    rows.append((_button(turn, "compose.cancel", f"no:{draft.id}"),))
    turn.say(turn.t("compose.ask_audience"), tuple(rows))


def _ask_area(turn: Turn, draft: Broadcast, ward: Ward) -> None:
    buttons = [
        Choice(name, callback(NAMESPACE, f"r:{draft.id}:{ward.code}:{i}"))
        for i, name in enumerate(ward.areas)
    ]
    rows = [tuple(buttons[i : i + 2]) for i in range(0, len(buttons), 2)]
    rows.append((_button(turn, "compose.cancel", f"no:{draft.id}"),))
    turn.say(turn.t("compose.ask_area", ward=ward.name), tuple(rows))


def _preview(turn: Turn, draft: Broadcast) -> None:
    """Show the message exactly as residents will get it, then ask when to send."""
    wards = _targets(turn, draft)
    media = Media(EventKind.PHOTO, draft.image) if draft.image else None
    turn.say(turn.t("compose.preview_intro", audience=_audience(turn, draft)))
    turn.send(Outbound(text=resident_text(turn, draft.text, wards[0]), media=media))
    if len(wards) > 1:
        turn.say(turn.t("compose.preview_each_ward"))
    turn.say(
        turn.t("compose.ask_when"),
        (
            (_button(turn, "compose.now", f"n:{draft.id}"),),
            (_button(turn, "compose.later", f"l:{draft.id}"),),
            (_button(turn, "compose.cancel", f"no:{draft.id}"),),
        ),
    )


def _targets(turn: Turn, draft: Broadcast) -> tuple[Ward, ...]:
    if draft.ward_code is None:
        return _wards(turn)
    return (turn.services.ward(draft.ward_code),)


async def _choose_audience(turn: Turn, kind: str, draft: Broadcast, rest: str) -> bool:
    wards = {ward.code: ward for ward in _wards(turn)}
    code, _, pick = rest.partition(":")
    area = parse_id(pick)
    if kind == "w" and (code == ALL or code in wards):
        draft.ward_code, draft.area = (None if code == ALL else code), None
    elif kind == "a" and code in wards:
        _ask_area(turn, draft, wards[code])
        return True
    elif kind == "r" and code in wards and area is not None and area < len(wards[code].areas):
        draft.ward_code, draft.area = code, wards[code].areas[area]
    else:
        return False
    await store.save_broadcast(session=turn.session, broadcast=draft)
    _preview(turn, draft)
    return True


def _confirm(turn: Turn, draft: Broadcast, when: datetime | None) -> None:
    if when is None:
        text = turn.t("compose.confirm_now", audience=_audience(turn, draft))
        data = f"g:{draft.id}:0"
    else:
        text = turn.t(
            "compose.confirm_later", audience=_audience(turn, draft), when=_local(turn, when)
        )
        data = f"g:{draft.id}:{int(when.timestamp()) // 60}"
    turn.say(
        text,
        (
            (_button(turn, "compose.confirm", data),),
            (_button(turn, "compose.cancel", f"no:{draft.id}"),),
        ),
    )


async def _commit(turn: Turn, draft: Broadcast, minute: str) -> bool:
    """Turn the draft into one broadcast per ward; send now or leave it scheduled."""
    number = parse_id(minute)
    if number is None:
        return False
    now = number == 0
    try:
        when = turn.now if now else datetime.fromtimestamp(number * 60, tz=turn.now.tzinfo)
    except (OverflowError, OSError, ValueError):
        # Not a minute this bot wrote: the year would be out of range.
        return False
    if when < turn.now - timedelta(minutes=1):
        turn.say(turn.t("compose.past"))
        return True
    ids: list[int] = []
    body = draft.text
    for i, ward in enumerate(_targets(turn, draft)):
        text = resident_text(turn, body, ward)
        row = draft if i == 0 else Broadcast(text=text, created_by=draft.created_by)
        row.text, row.image, row.ward_code, row.area = text, draft.image, ward.code, draft.area
        row.progress_chat = draft.progress_chat
        row.status, row.scheduled_at = BroadcastStatus.SCHEDULED, when
        ids.append(await store.save_broadcast(session=turn.session, broadcast=row))
    numbers = ", ".join(f"#{n}" for n in ids)
    log.info("Supervisor broadcast %s confirmed", numbers)
    if now:
        turn.say(turn.t("compose.started", numbers=numbers))
        services, chat, channel = turn.services, turn.event.chat, turn.event.channel
        for broadcast_id in ids:
            turn.then(_sender(services, broadcast_id, channel, chat, turn.language))
    else:
        turn.say(turn.t("compose.scheduled", numbers=numbers, when=_local(turn, when)))
    return True


def _sender(
    services: Services, broadcast_id: int, channel_name: str, chat: str, language: str
) -> AfterCommit:
    """Return the follow-up work that sends a broadcast and keeps one progress message."""

    def t(key: str, **values: object) -> str:
        return services.catalogue.text(language, key, **values)

    async def run() -> None:
        channel = services.channel(channel_name)
        sent = await channel.send(
            chat, Outbound(text=t("compose.progress_start", id=broadcast_id))
        )
        async with unit_of_work(services.sessions) as session:
            broadcast = await store.get_broadcast(session=session, broadcast_id=broadcast_id)
            if broadcast is not None:
                broadcast.progress_message_id = sent.message_id
                await store.save_broadcast(session=session, broadcast=broadcast)

        async def progress(summary: engine.Summary, total: int) -> None:
            await channel.edit(chat, sent.message_id, Outbound(text=progress_text(summary, total)))

        def progress_text(summary: engine.Summary, total: int) -> str:
            share = round(100 * summary.done / total) if total else 100
            left = total - summary.done
            rate = summary.done / summary.seconds if summary.seconds > 0 else 0.0
            minutes = max(1, round(left / rate / 60)) if rate > 0 and left > 0 else 0
            return t(
                "compose.progress",
                id=broadcast_id,
                done=f"{summary.done:,}".replace(",", "."),
                total=f"{total:,}".replace(",", "."),
                share=share,
                failed=summary.failed,
                minutes=minutes,
            )

        try:
            summary = await engine.send(services, broadcast_id, on_progress=progress)
        except engine.BroadcastCancelled:
            await channel.edit(chat, sent.message_id, Outbound(text=t("compose.was_cancelled")))
            return
        done = progress_text(summary, summary.done)
        line = t(
            "compose.summary",
            sent=summary.sent,
            failed=summary.failed,
            unsubscribed=summary.unsubscribed,
            seconds=f"{summary.seconds:.0f}",
        )
        await channel.edit(chat, sent.message_id, Outbound(text=f"{done}\n{line}"))

    return run


def parse_when(text: str, now: datetime, services: Services) -> datetime | None:
    """Read "08:00 15/12" or "15/12/2026 08:00" in the ward's clock; None when malformed."""
    clock, date = _TIME.search(text), _DATE.search(_TIME.sub(" ", text))
    if clock is None or date is None:
        return None
    tz = services.settings.bot.tz
    year = int(date[3]) if date[3] else now.astimezone(tz).year
    try:
        return datetime(year, int(date[2]), int(date[1]), int(clock[1]), int(clock[2]), tzinfo=tz)
    except ValueError:
        return None


async def _take_when(turn: Turn, broadcast_id: str) -> None:
    draft = await _draft(turn, broadcast_id)
    if draft is None:
        _stale(turn)
        return
    when = parse_when(turn.event.text or "", turn.now, turn.services)
    cancel = ((_button(turn, "compose.cancel", f"no:{draft.id}"),),)
    if when is None:
        turn.say(turn.t("compose.bad_when"), cancel)
    elif when <= turn.now:
        turn.say(turn.t("compose.past"), cancel)
    else:
        turn.awaiting = None
        _confirm(turn, draft, when)


@router.fallback
async def on_input(turn: Turn) -> bool:
    """Take the typed text, photo or date a supervisor was asked for."""
    awaited = turn.awaiting or ""
    if not awaited.startswith(NAMESPACE) or not _wards(turn):
        return False
    if awaited == AWAITING_TEXT:
        await _take_text(turn)
    elif awaited.startswith(AWAITING_WHEN):
        await _take_when(turn, awaited.removeprefix(AWAITING_WHEN))
    else:
        turn.awaiting = None
        return False
    return True


@router.choice(NAMESPACE)
async def on_choice(turn: Turn, value: str) -> bool:
    """Act on a button of the broadcast conversation or list."""
    if not _wards(turn):
        return False
    kind, _, rest = value.partition(":")
    if kind == "x":
        await _cancel(turn, rest)
        return True
    broadcast_id, _, rest = rest.partition(":")
    if kind == "no":
        draft = await _draft(turn, broadcast_id)
        if draft is not None:
            await store.delete_broadcast(session=turn.session, broadcast=draft)
        turn.awaiting = None
        turn.say(turn.t("compose.dropped"))
        return True
    draft = await _draft(turn, broadcast_id)
    if draft is None:
        _stale(turn)
        return True
    if kind in ("w", "a", "r"):
        handled = await _choose_audience(turn, kind, draft, rest)
    elif kind == "n":
        _confirm(turn, draft, None)
        handled = True
    elif kind == "l":
        turn.awaiting = f"{AWAITING_WHEN}{draft.id}"
        turn.say(
            turn.t("compose.ask_time", example=_local(turn, turn.now + timedelta(days=1))),
            ((_button(turn, "compose.cancel", f"no:{draft.id}"),),),
        )
        handled = True
    elif kind == "g":
        handled = await _commit(turn, draft, rest)
    else:
        handled = False
    if not handled:
        _stale(turn)
    return True


# /broadcasts


def _visible(broadcast: Broadcast, wards: tuple[Ward, ...]) -> bool:
    codes = {ward.code for ward in wards}
    return not _is_draft(broadcast) and (
        broadcast.ward_code is None or broadcast.ward_code in codes
    )


@router.command("broadcasts")
async def on_list(turn: Turn) -> bool:
    """List the latest broadcasts with their counts and a cancel button where one applies."""
    wards = _wards(turn)
    if not wards:
        return False
    latest = await store.list_broadcasts(session=turn.session, limit=LIST_SIZE * 4)
    shown = [b for b in latest if _visible(b, wards)][:LIST_SIZE]
    if not shown:
        turn.say(turn.t("compose.list_empty"))
        return True
    counts = await store.delivery_counts(
        session=turn.session, broadcast_ids=[b.id for b in shown if b.id is not None]
    )
    lines = [turn.t("compose.list_header")]
    buttons: list[tuple[Choice, ...]] = []
    for broadcast in shown:
        assert broadcast.id is not None
        count = counts.get(broadcast.id, {})
        lines.append(
            turn.t(
                "compose.list_line",
                id=broadcast.id,
                status=turn.t(f"compose.status_{broadcast.status.value}"),
                when=_local(turn, broadcast.started_at or broadcast.scheduled_at),
                audience=_audience(turn, broadcast),
                sent=count.get(DeliveryStatus.SENT, 0),
                failed=count.get(DeliveryStatus.FAILED, 0),
                unsubscribed=count.get(DeliveryStatus.UNSUBSCRIBED, 0),
            )
        )
        if broadcast.status in (BroadcastStatus.SCHEDULED, BroadcastStatus.RUNNING):
            buttons.append(
                (_button(turn, "compose.cancel_one", f"x:{broadcast.id}", id=broadcast.id),)
            )
    turn.say("\n\n".join(lines), tuple(buttons))
    return True


async def _cancel(turn: Turn, broadcast_id: str) -> None:
    """Cancel a scheduled or running broadcast; running senders stop at their next claim."""
    number = parse_id(broadcast_id)
    broadcast = (
        await store.get_broadcast(session=turn.session, broadcast_id=number)
        if number is not None
        else None
    )
    if (
        broadcast is None
        or not _visible(broadcast, _wards(turn))
        or broadcast.status not in (BroadcastStatus.SCHEDULED, BroadcastStatus.RUNNING)
    ):
        turn.say(turn.t("compose.cannot_cancel"))
        return
    broadcast.status, broadcast.finished_at = BroadcastStatus.CANCELLED, turn.now
    await store.save_broadcast(session=turn.session, broadcast=broadcast)
    log.info("Broadcast #%d cancelled by a supervisor", broadcast.id)
    turn.say(turn.t("compose.cancelled", id=broadcast.id))


async def start_due(services: Services) -> int:
    """Start the supervisors' scheduled broadcasts whose time has come; return how many."""
    async with unit_of_work(services.sessions) as session:
        due = await store.due_composed(session=session, now=services.clock())
    for broadcast_id in due:
        await engine.enqueue(services, broadcast_id)
    return len(due)
