"""The resident's anonymous tip: category, area, place, what happened, files, review, send."""

from __future__ import annotations

import enum
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from pydantic import BaseModel, Field

from handlers import cards, limits, menu, triage
from handlers.context import Turn
from handlers.events import MEDIA_KINDS, Choice, EventKind, Inbound
from handlers.router import Router, callback
from handlers.text import match_choice
from storage import queue as queue_repo
from storage import repositories as repo
from storage.models import AttachmentKind, Category, TipBase

log = logging.getLogger(__name__)

router = Router(__name__)

NAMESPACE: Final = "t"
NEW: Final = "new"
RECEIPT_DIGITS: Final = 16
PREVIEW_CHARS: Final = 600
# The attachment columns: a longer file handle is not one this bot can re-send; a longer name
# or type is cut.
FILE_ID_CHARS: Final = 256
FILE_NAME_CHARS: Final = 256
MIME_TYPE_CHARS: Final = 128
CATEGORIES: Final = tuple(Category)


class Step(enum.StrEnum):
    """Where the resident is in the tip; short values because they travel in button data."""

    WARD = "w"
    CATEGORY = "c"
    AREA = "a"
    PLACE = "p"
    TEXT = "x"
    FILES = "f"
    REVIEW = "r"
    EDIT = "e"
    RESUME = "s"


NUMBERED: Final = {Step.CATEGORY: 1, Step.AREA: 2, Step.PLACE: 3, Step.TEXT: 4, Step.FILES: 5}
FREE_TEXT: Final = frozenset({Step.PLACE, Step.TEXT, Step.FILES})
EDITABLE: Final = (Step.CATEGORY, Step.AREA, Step.PLACE, Step.TEXT, Step.FILES)


class AttachmentData(BaseModel):
    """A file the resident sent, kept by the channel's file handle only."""

    kind: AttachmentKind
    file_id: str
    file_name: str | None = None
    mime_type: str | None = None
    album: str | None = None


class DraftData(BaseModel):
    """Everything the resident has told so far."""

    ward: str | None = None
    category: Category | None = None
    area: str | None = None
    place: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    text: str = ""
    attachments: list[AttachmentData] = Field(default_factory=list)
    contact: bool = True
    editing: bool = False
    resume_step: Step | None = None
    refused_album: str | None = None


@dataclass
class DraftState:
    """A draft as read from the database, with the version that guards its update."""

    step: Step
    data: DraftData
    version: int | None = None


def _data(step: Step, value: str) -> str:
    return callback(NAMESPACE, f"{step}:{value}")


def _button(turn: Turn, step: Step, value: str, key: str, **values: object) -> Choice:
    return Choice(turn.t(key, **values), _data(step, value))


def _nav(turn: Turn, step: Step, *, back: bool = True) -> tuple[Choice, ...]:
    row = [_button(turn, step, "back", "tip.back")] if back else []
    row.append(_button(turn, step, "cancel", "tip.cancel"))
    return tuple(row)


def _first_step(turn: Turn) -> Step:
    return Step.WARD if len(turn.services.settings.wards) > 1 else Step.CATEGORY


def _back_of(turn: Turn, step: Step) -> Step | None:
    order = [Step.CATEGORY, Step.AREA, Step.PLACE, Step.TEXT, Step.FILES, Step.REVIEW]
    if len(turn.services.settings.wards) > 1:
        order.insert(0, Step.WARD)
    if step in (Step.EDIT, Step.RESUME):
        return Step.REVIEW
    index = order.index(step)
    return order[index - 1] if index > 0 else None


def _title(turn: Turn, step: Step) -> str:
    number = NUMBERED.get(step)
    return turn.t("tip.step", number=number, total=len(NUMBERED)) if number else ""


def _area_label(turn: Turn, data: DraftData) -> str:
    return data.area or turn.t("tip.area_unknown")


def _choices(turn: Turn, step: Step, data: DraftData) -> tuple[tuple[Choice, ...], ...]:
    """Return the buttons of a step; typed answers are matched against the same list."""
    settings = turn.services.settings
    if step is Step.WARD:
        rows: list[tuple[Choice, ...]] = [
            (Choice(ward.name, _data(step, ward.code)),) for ward in settings.wards
        ]
        return (*rows, _nav(turn, step, back=False))
    if step is Step.CATEGORY:
        kinds = [(_button(turn, step, c.value, f"category.{c.value}"),) for c in CATEGORIES]
        back = data.editing or _back_of(turn, step) is not None
        return (*kinds, _nav(turn, step, back=back))
    if step is Step.AREA:
        areas = turn.services.ward(data.ward or "").areas
        buttons = [Choice(name, _data(step, str(i))) for i, name in enumerate(areas)]
        rows = [tuple(buttons[i : i + 2]) for i in range(0, len(buttons), 2)]
        return (*rows, (_button(turn, step, "unknown", "tip.area_unknown"),), _nav(turn, step))
    if step is Step.PLACE:
        return ((_button(turn, step, "skip", "tip.skip"),), _nav(turn, step))
    if step is Step.TEXT:
        return (_nav(turn, step),)
    if step is Step.FILES:
        count = len(data.attachments)
        done = (
            _button(turn, step, "done", "tip.files_done", count=count)
            if count
            else _button(turn, step, "done", "tip.skip")
        )
        return ((done,), _nav(turn, step))
    if step is Step.REVIEW:
        contact = "tip.contact_on" if data.contact else "tip.contact_off"
        return (
            (_button(turn, step, "send", "tip.send"),),
            (_button(turn, step, "contact", contact),),
            (_button(turn, step, "edit", "tip.edit"), _button(turn, step, "cancel", "tip.cancel")),
        )
    if step is Step.EDIT:
        fields = [_button(turn, step, s.value, f"tip.edit_{s.value}") for s in EDITABLE]
        rows = [tuple(fields[i : i + 2]) for i in range(0, len(fields), 2)]
        return (*rows, (_button(turn, step, "back", "tip.back"),))
    return (
        (_button(turn, step, "continue", "tip.resume_continue"),),
        (_button(turn, step, "discard", "tip.resume_discard"),),
    )


def _summary(turn: Turn, data: DraftData) -> str:
    text = data.text
    if len(text) > PREVIEW_CHARS:
        text = turn.t(
            "tip.preview_more", text=text[:PREVIEW_CHARS], more=len(text) - PREVIEW_CHARS
        )
    place = data.place or ""
    if data.latitude is not None:
        place = (place + " " + turn.t("tip.location_shared")).strip()
    lines = [
        turn.t("tip.review_title"),
        turn.t("tip.review_category", category=turn.t(f"category.{data.category}")),
    ]
    if len(turn.services.settings.wards) > 1:
        lines.append(turn.t("tip.review_ward", ward=turn.services.ward(data.ward or "").name))
    lines += [
        turn.t("tip.review_area", area=_area_label(turn, data)),
        turn.t("tip.review_place", place=place or turn.t("tip.none")),
        turn.t("tip.review_text", text=text),
        turn.t("tip.review_files", count=len(data.attachments)),
        turn.t("tip.review_contact_on" if data.contact else "tip.review_contact_off"),
        "",
        turn.t("tip.review_hint"),
    ]
    return "\n".join(lines)


def prompt(turn: Turn, state: DraftState, *, prefix: str | None = None) -> None:
    """Show the resident the step they are on, with its buttons."""
    step, data = state.step, state.data
    if step is Step.REVIEW:
        body = _summary(turn, data)
    elif step is Step.RESUME:
        body = turn.t("tip.resume")
    elif step is Step.FILES:
        body = turn.t(
            "tip.ask_files",
            count=len(data.attachments),
            limit=turn.services.settings.limits.max_attachments,
        )
    else:
        body = turn.t(f"tip.ask_{step.name.lower()}")
    text = "\n".join(part for part in (prefix, _title(turn, step), body) if part)
    turn.say(text, _choices(turn, step, data))


async def load(turn: Turn) -> DraftState | None:
    """Return the chat's draft, if it has one."""
    draft = await repo.get_draft(session=turn.session, chat_key=turn.chat_key)
    if draft is None:
        return None
    return DraftState(Step(draft.step), DraftData.model_validate(draft.data), draft.version)


async def save(turn: Turn, state: DraftState) -> None:
    """Write the draft back, guarded against a concurrent change."""
    state.version = await repo.save_draft(
        session=turn.session,
        chat_key=turn.chat_key,
        step=state.step.value,
        data=state.data.model_dump(mode="json"),
        version=state.version,
        now=turn.now,
    )


async def _discard(turn: Turn, notice: str) -> None:
    await repo.delete_draft(session=turn.session, chat_key=turn.chat_key)
    menu.show_menu(turn, prefix=turn.t(notice))


async def begin(turn: Turn) -> None:
    """Start a new tip, or offer to continue the one already being written."""
    state = await load(turn)
    if state is not None:
        await offer_resume(turn, state)
        return
    state = DraftState(_first_step(turn), DraftData())
    if state.step is Step.CATEGORY:
        state.data.ward = turn.services.settings.wards[0].code
    await save(turn, state)
    prompt(turn, state, prefix=turn.t("tip.intro"))


async def offer_resume(turn: Turn, state: DraftState) -> None:
    """Ask whether to continue a draft or throw it away."""
    if state.step is not Step.RESUME:
        state.data.resume_step = state.step
        state.step = Step.RESUME
        await save(turn, state)
    prompt(turn, state)


async def _go(turn: Turn, state: DraftState, step: Step, *, prefix: str | None = None) -> None:
    state.step = step
    await save(turn, state)
    prompt(turn, state, prefix=prefix)


async def _after_answer(turn: Turn, state: DraftState, step: Step) -> None:
    """Move on from an answered step: to the next one, or back to the review when editing."""
    if state.data.editing:
        state.data.editing = False
        await _go(turn, state, Step.REVIEW)
        return
    following = {
        Step.WARD: Step.CATEGORY,
        Step.CATEGORY: Step.AREA,
        Step.AREA: Step.PLACE,
        Step.PLACE: Step.TEXT,
        Step.TEXT: Step.FILES,
        Step.FILES: Step.REVIEW,
    }
    await _go(turn, state, following[step])


@router.choice(NAMESPACE)
async def on_choice(turn: Turn, value: str) -> bool:
    """Act on a tip button, or re-show the current step if the button is from an old message."""
    if value == NEW:
        await begin(turn)
        return True
    state = await load(turn)
    step_code, _, choice = value.partition(":")
    if state is None:
        menu.show_menu(turn, prefix=turn.t("tip.no_draft"))
        return True
    if step_code != state.step.value or choice not in _valid_values(turn, state):
        prompt(turn, state, prefix=turn.t("common.stale_button"))
        return True
    await _choose(turn, state, choice)
    return True


def _valid_values(turn: Turn, state: DraftState) -> set[str]:
    rows = _choices(turn, state.step, state.data)
    return {choice.data.rsplit(":", 1)[1] for row in rows for choice in row}


async def _choose(turn: Turn, state: DraftState, choice: str) -> None:
    """Apply one of the current step's choices."""
    step, data = state.step, state.data
    if choice == "cancel":
        await _discard(turn, "tip.cancelled")
    elif choice == "back":
        # Back from a step opened by Sửa returns to the review it came from.
        previous = Step.REVIEW if data.editing else _back_of(turn, step)
        data.editing = False
        await _go(turn, state, previous or step)
    elif step is Step.WARD:
        data.ward = choice
        await _after_answer(turn, state, step)
    elif step is Step.CATEGORY:
        data.category = Category(choice)
        await _after_answer(turn, state, step)
    elif step is Step.AREA:
        areas = turn.services.ward(data.ward or "").areas
        data.area = None if choice == "unknown" else areas[int(choice)]
        await _after_answer(turn, state, step)
    elif step in (Step.PLACE, Step.FILES):
        await _after_answer(turn, state, step)
    elif step is Step.REVIEW:
        await _review_choice(turn, state, choice)
    elif step is Step.EDIT:
        data.editing = True
        await _go(turn, state, Step(choice))
    elif step is Step.RESUME:
        if choice == "discard":
            await _discard(turn, "tip.discarded")
        else:
            await _go(turn, state, data.resume_step or Step.REVIEW, prefix=turn.t("tip.resumed"))


async def _review_choice(turn: Turn, state: DraftState, choice: str) -> None:
    if choice == "send":
        if not state.data.text.strip():
            await _go(turn, state, Step.TEXT, prefix=turn.t("tip.text_required"))
            return
        await submit(turn, state)
    elif choice == "contact":
        state.data.contact = not state.data.contact
        await _go(turn, state, Step.REVIEW)
    else:
        await _go(turn, state, Step.EDIT)


@router.command("huy", "cancel")
async def on_cancel(turn: Turn) -> bool:
    """Throw the draft away, if there is one, and show the menu."""
    if await load(turn) is None:
        menu.show_menu(turn, prefix=turn.t("tip.nothing_to_cancel"))
        return True
    await _discard(turn, "tip.cancelled")
    return True


@router.command("start")
async def on_start(turn: Turn) -> bool:
    """Offer to continue or discard a draft; without one, leave /start to the menu."""
    state = await load(turn)
    if state is None:
        return False
    await offer_resume(turn, state)
    return True


@router.command("gui", "tip")
async def on_tip_command(turn: Turn) -> bool:
    """Start a tip from a typed command."""
    await begin(turn)
    return True


@router.fallback
async def on_input(turn: Turn) -> bool:
    """Take whatever the resident sent as the answer to their current step."""
    state = await load(turn)
    if state is None:
        return False
    event = turn.event
    if event.kind is EventKind.COMMAND:
        prompt(turn, state, prefix=turn.t("common.unknown_command"))
    elif event.kind is EventKind.TEXT:
        await _on_text(turn, state, event.text or "")
    elif event.kind is EventKind.LOCATION and event.location is not None:
        await _on_location(turn, state, event)
    elif event.kind in MEDIA_KINDS and event.media and len(event.media.file_id) <= FILE_ID_CHARS:
        await _on_media(turn, state, event)
    else:
        prompt(turn, state, prefix=turn.t("common.unsupported"))
    return True


async def _on_text(turn: Turn, state: DraftState, text: str) -> None:
    rows = _choices(turn, state.step, state.data)
    flat = [choice for row in rows for choice in row]
    # On free-text steps a number is an answer ("số 12"), not a choice.
    picked = match_choice(text, flat, numbers=state.step not in FREE_TEXT)
    if picked is not None:
        await _choose(turn, state, picked.data.rsplit(":", 1)[1])
        return
    limits = turn.services.settings.limits
    if state.step is Step.PLACE:
        if len(text) > limits.max_place_chars:
            prompt(turn, state, prefix=turn.t("tip.place_too_long", limit=limits.max_place_chars))
            return
        state.data.place = text.strip()
        await _after_answer(turn, state, Step.PLACE)
    elif state.step is Step.TEXT:
        if state.data.editing:
            state.data.text = ""
        if not _append_text(turn, state, text):
            return
        await _after_answer(turn, state, Step.TEXT)
    elif state.step in (Step.FILES, Step.REVIEW):
        # Telegram splits a long message in several; the later parts land on the next step.
        if _append_text(turn, state, text):
            await _go(turn, state, state.step, prefix=turn.t("tip.text_appended"))
    else:
        prompt(turn, state, prefix=turn.t("common.pick_a_button"))


def _append_text(turn: Turn, state: DraftState, text: str) -> bool:
    limit = turn.services.settings.limits.max_text_chars
    joined = f"{state.data.text}\n{text}".strip() if state.data.text else text.strip()
    if not joined:
        prompt(turn, state, prefix=turn.t("tip.text_required"))
        return False
    if len(joined) > limit:
        prompt(
            turn, state, prefix=turn.t("tip.text_too_long", limit=f"{limit:,}".replace(",", "."))
        )
        return False
    state.data.text = joined
    return True


async def _on_location(turn: Turn, state: DraftState, event: Inbound) -> None:
    assert event.location is not None
    state.data.latitude = event.location.latitude
    state.data.longitude = event.location.longitude
    if state.step is Step.PLACE:
        await _after_answer(turn, state, Step.PLACE)
    else:
        await _go(turn, state, state.step, prefix=turn.t("tip.location_kept"))


async def _on_media(turn: Turn, state: DraftState, event: Inbound) -> None:
    assert event.media is not None
    media, data = event.media, state.data
    limit = turn.services.settings.limits.max_attachments
    same_album = (
        bool(media.album)
        and bool(data.attachments)
        and (data.attachments[-1].album == media.album)
    )
    if len(data.attachments) >= limit:
        # Said once per album: an album's photos arrive as separate messages.
        if media.album is None or media.album != data.refused_album:
            data.refused_album = media.album
            await _go(turn, state, state.step, prefix=turn.t("tip.files_full", limit=limit))
        return
    data.attachments.append(
        AttachmentData(
            kind=AttachmentKind(media.kind.value),
            file_id=media.file_id,
            file_name=media.file_name[:FILE_NAME_CHARS] if media.file_name else None,
            mime_type=media.mime_type[:MIME_TYPE_CHARS] if media.mime_type else None,
            album=media.album,
        )
    )
    caption = (event.text or "").strip()
    if caption and state.step is Step.TEXT and data.editing:
        data.text = ""
    if caption and not _append_text(turn, state, caption):
        return
    if state.step is Step.TEXT and data.text:
        await _after_answer(turn, state, Step.TEXT)
    elif same_album:
        # The rest of an album arrives as separate messages; one answer is enough.
        await save(turn, state)
    else:
        await _go(
            turn, state, state.step, prefix=turn.t("tip.file_kept", count=len(data.attachments))
        )


def new_receipt() -> str:
    """Return 16 random digits: 10^16 codes, nobody can guess one."""
    return f"{secrets.randbelow(10**RECEIPT_DIGITS):0{RECEIPT_DIGITS}d}"


def format_receipt(code: str) -> str:
    """Show a receipt as four groups of four digits, like a phone number."""
    return " ".join(code[i : i + 4] for i in range(0, RECEIPT_DIGITS, 4))


async def submit(turn: Turn, state: DraftState) -> None:
    """Store the tip, drop the draft, give the resident a receipt and alert the officers."""
    data, services, event = state.data, turn.services, turn.event
    assert data.ward is not None and data.category is not None
    receipt = new_receipt()
    contact = json.dumps(
        {"channel": event.channel, "chat": event.chat, "language": turn.language}
    ).encode()

    def seal(tip_id: int) -> bytes:
        return services.keyring.seal(contact, context=f"contact:{tip_id}")

    sender = services.keyring.digest("sender", f"{event.channel}:{event.chat}")
    blocked = await queue_repo.blocked_until(session=turn.session, sender_tag=sender)
    if blocked is not None and blocked > turn.now:
        # Said plainly but without detail: the draft stays, and the hotline is the way.
        await _go(turn, state, Step.REVIEW, prefix=turn.t("tip.sender_blocked"))
        return
    refusal = await limits.tip_refusal(turn)
    if refusal is not None:
        # Nothing is lost: the draft waits at the review until the resident may send it.
        await _go(turn, state, Step.REVIEW, prefix=refusal)
        return
    window = timedelta(hours=services.settings.triage.duplicate_window_hours)
    assessment = triage.assess(
        category=data.category,
        text=data.text,
        place=data.place,
        has_location=data.latitude is not None,
        attachment_count=len(data.attachments),
        earlier_texts=await queue_repo.recent_texts(
            session=turn.session, sender_tag=sender, since=turn.now - window
        ),
        rules=services.settings.triage,
    )
    tip = await repo.create_tip(
        session=turn.session,
        tip_in=TipBase(
            ward_code=data.ward,
            category=data.category,
            area=data.area,
            place=data.place,
            latitude=data.latitude,
            longitude=data.longitude,
            text=data.text,
        ),
        receipt_hash=services.keyring.receipt_hash(receipt),
        attachments=[
            repo.AttachmentIn(a.kind, a.file_id, a.file_name, a.mime_type)
            for a in data.attachments
        ],
        contact_sealer=seal if data.contact else None,
        now=turn.now,
        priority=assessment.priority.value,
        flags=[{"code": flag.code, "rule": flag.rule} for flag in assessment.flags],
        sender_tag=sender,
    )
    assert tip.id is not None
    await limits.count_tip(turn)
    await repo.delete_draft(session=turn.session, chat_key=turn.chat_key)
    log.info(
        "Tip #%d stored for ward %s with %d attachment(s), priority %s",
        tip.id,
        tip.ward_code,
        tip.attachment_count,
        assessment.priority.value,
    )
    turn.say(
        turn.t("tip.sent", number=tip.id, receipt=format_receipt(receipt)),
        (menu.traces_row(turn), *menu.menu_choices(turn)),
    )
    tip_id = tip.id
    turn.then(lambda: cards.post_one(services, tip_id))
