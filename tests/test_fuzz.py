"""Fuzzing the running bot: any text, any update shape, any button data; it answers and keeps.

Each test drives the real PTB Application over HTTP against the emulator, with Hypothesis
drawing what people send. One bot serves all examples of a test, deliberately (hence the
suppressed function_scoped_fixture health check): every example writes from a chat of its own,
and what is asserted is that this one bot survives everything thrown at it. After each example:
no ERROR in the logs, no apology sent, the witness's draft as it was, the officers' group
untouched by residents; the runtime fixture then checks that the logs name nobody.

HOMTHU_FUZZ_EXAMPLES raises the number of examples for a longer local run.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.app import Runtime
from bot.emulator import BotApiEmulator, EmuMessage, EmuUser
from chat import Group, Person
from conftest import GROUP_ID, OFFICER_ID, SUPERVISOR_ID
from handlers.events import Choice
from handlers.text import match_choice
from storage import repositories as repo
from storage.db import unit_of_work
from storage.models import Tip
from tests_support import send_tip

# A failing example holding a 40,000-character text is worth reading, however long.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

EXAMPLES: Final = int(os.environ.get("HOMTHU_FUZZ_EXAMPLES", "25"))
FUZZ: Final = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
WITNESS_TEXT: Final = "Witness-canary: tối nào cũng có người bán ở ngõ 7"
STRANGER_ID: Final = 700099
UNKNOWN_GROUP: Final = {"id": -1005550000001, "type": "supergroup", "title": "Nhóm lạ"}
CHANNEL: Final = {"id": -1005550000002, "type": "channel", "title": "Kênh lạ"}

# What residents type that is hard on a chat bot: right-to-left and zero-width marks, emoji
# sequences, combining marks, control characters, Vietnamese with and without diacritics.
TRICKY: Final = (
    "\u202e",
    "\u200f",
    "\u200b",
    "\u200d",
    "\ufeff",
    "\u2028",
    "a\u0301\u0323\u0302",
    "👨‍👩‍👧‍👦",
    "🇻🇳",
    "ﷺ",
    "𝕳𝖔𝖒",
    "\x00",
    "\x07",
    "\x1b[31m",
    "\r\n",
    "\t",
    "%s %d {} {0} {text}",
    "<b>",
    "*_`[",
    "mua ban ma tuy",
    "Mua bán ma túy",
    "3",
    "/start",
    "1:t:x:cancel",
)
PIECES: Final = st.one_of(
    st.text(st.characters(codec="utf-8"), max_size=30),
    st.sampled_from(TRICKY),
)
TEXTS: Final = st.lists(PIECES, min_size=1, max_size=10).map("".join).filter(bool)


def _repeat(chunk: str, size: int) -> str:
    return (chunk * (size // len(chunk) + 1))[:size]


HUGE: Final = st.builds(_repeat, TEXTS, st.sampled_from([5_000, 40_000]))
ANY_TEXT: Final = st.one_of(TEXTS, TEXTS, TEXTS, HUGE)

# Button data: the shapes the bot makes, with every part replaced by something odd, and
# arbitrary strings and bytes (Telegram allows 1-64 bytes; a modified client sends anything).
PARTS: Final = st.one_of(
    st.sampled_from(
        [
            "",
            "0",
            "1",
            "-1",
            "²",
            "٣",
            "1e3",
            " 1",
            "99999999999999999999",
            "9223372036854775808",
            "new",
            "cancel",
            "claim",
            "st",
            "to",
            "block!",
            "ask",
            "note",
            "x",
            "f",
            "r",
            "send",
            "dong-cuong",
            "all",
            "start",
            "open",
            "lang-en",
        ]
    ),
    st.text(max_size=6),
    st.integers(-(10**20), 10**20).map(str),
    st.sampled_from(["²", "٣", "①", "99999999999999999999", "9223372036854775808", "+1", "1_0"]),
)
STRUCTURED: Final = st.builds(
    lambda version, namespace, parts: ":".join([version, namespace, *parts]),
    st.sampled_from(["1", "1", "1", "0", "2", ""]),
    st.sampled_from(["t", "q", "a", "l", "s", "m", "bc", "o", "", "zz"]),
    st.lists(PARTS, max_size=5),
)
BUTTON_DATA: Final = st.one_of(
    STRUCTURED,
    STRUCTURED,
    st.text(st.characters(codec="utf-8"), min_size=1, max_size=64),
    st.binary(min_size=1, max_size=64).map(lambda raw: raw.decode("utf-8", "replace")),
).filter(lambda data: 1 <= len(data.encode()) <= 64)

# Data the bot makes, in every namespace: the seeds that forged presses are grown from.
SEEDS: Final = (
    "1:t:new",
    "1:t:x:cancel",
    "1:t:a:3",
    "1:t:e:p",
    "1:a:1",
    "1:a:cancel",
    "1:l:start",
    "1:m:lang-en",
    "1:s:a:dong-cuong:3",
    "1:s:w:dong-cuong",
    "1:o:dong-cuong:1",
    "1:bc:r:1:dong-cuong:2",
    "1:bc:g:1:0",
    "1:bc:x:1",
    "1:bc:no:1",
    "1:t:x:back",
    "1:bc:no:0",
    # {v}: the card's current version, filled in after the draw (draws must not depend on it).
    "1:q:1:{v}:claim",
    "1:q:1:{v}:assign",
    "1:q:1:{v}:status",
    "1:q:1:{v}:st:verifying",
    "1:q:1:{v}:st:resolved",
    "1:q:1:{v}:to:700001",
    "1:q:1:{v}:block!",
    "1:q:1:{v}:back",
)


def _fit(data: str) -> str:
    """Cut button data to Telegram's 64 bytes, never to nothing."""
    return data.encode()[:64].decode("utf-8", "ignore") or "1"


@st.composite
def forged(draw: st.DrawFn) -> str:
    """Button data a modified client could send: the bot's own, bent, or anything at all.

    Each value of a seed is swapped for an odd one a third of the time (its version and
    namespace less often), so that every parser sees its numbers and names bent often, not
    once in thousands of examples.
    """
    if draw(st.integers(0, 4)) == 0:
        return draw(BUTTON_DATA)
    parts = [
        draw(PARTS) if draw(st.integers(0, 2 if index > 1 else 7)) == 0 else part
        for index, part in enumerate(draw(st.sampled_from(SEEDS)).split(":"))
    ]
    change = draw(st.sampled_from(["none", "none", "drop", "add"]))
    if change == "drop":
        del parts[draw(st.integers(0, len(parts) - 1))]
    elif change == "add":
        parts.insert(draw(st.integers(0, len(parts))), draw(PARTS))
    return ":".join(parts)


JSON: Final = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)
MESSAGE_EXTRAS: Final = (
    "entities",
    "caption",
    "photo",
    "document",
    "location",
    "contact",
    "sticker",
    "reply_to_message",
    "new_chat_members",
    "forward_origin",
    "via_bot",
    "quote",
    "x_unknown",
)
UPDATE_KINDS: Final = (
    "message",
    "message",
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "callback_query",
    "callback_query",
    "my_chat_member",
    "chat_member",
    "inline_query",
    "poll",
    "x_unknown_update",
)


@st.composite
def giant_entities(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Thousands of formatting entities, with offsets and lengths that fit nothing."""
    count = draw(st.sampled_from([1, 50, 5_000]))
    kind = draw(st.sampled_from(["bold", "bot_command", "url", "text_link", "mention", "zz"]))
    offset = draw(st.integers(-5, 10**6))
    length = draw(st.integers(-1, 10**6))
    return [{"type": kind, "offset": offset + i, "length": length} for i in range(count)]


@st.composite
def raw_updates(draw: st.DrawFn, user: dict[str, Any]) -> dict[str, Any]:
    """An update of a random kind, from this user, with fields missing, odd or unknown."""
    chat = draw(
        st.sampled_from(
            [{"id": user["id"], "type": "private", "first_name": "x"}, UNKNOWN_GROUP, CHANNEL]
        )
    )
    message: dict[str, Any] = {
        "message_id": draw(st.integers(1, 2**31)),
        "date": draw(st.sampled_from([0, 1, 1_790_000_000])),
        "chat": chat,
        "from": user,
        "text": draw(TEXTS),
    }
    for key in draw(st.sets(st.sampled_from(MESSAGE_EXTRAS), max_size=3)):
        message[key] = draw(giant_entities() if key == "entities" else JSON)
    for key in draw(st.sets(st.sampled_from(sorted(message)), max_size=2)):
        del message[key]
    for key, value in draw(
        st.dictionaries(st.sampled_from(sorted(message) or ["text"]), JSON, max_size=2)
    ).items():
        message[key] = value
    kind = draw(st.sampled_from(UPDATE_KINDS))
    payload: Any = message
    if kind == "callback_query":
        payload = {
            "id": str(draw(st.integers(1, 2**62))),
            "from": user,
            "chat_instance": "1",
            "data": draw(BUTTON_DATA),
            "message": message,
        }
        for key in draw(st.sets(st.sampled_from(sorted(payload)), max_size=1)):
            del payload[key]
    elif kind in ("my_chat_member", "chat_member"):
        member = {"user": user, "status": draw(st.sampled_from(["member", "kicked", "zz"]))}
        payload = {
            "chat": chat,
            "from": user,
            "date": 1,
            "old_chat_member": member,
            "new_chat_member": member,
        }
    elif kind == "inline_query":
        payload = {"id": "1", "from": user, "query": draw(TEXTS), "offset": ""}
    elif kind == "poll":
        payload = draw(JSON)
    unknown = draw(
        st.dictionaries(st.text(max_size=8).filter(lambda k: k != "update_id"), JSON, max_size=2)
    )
    return {kind: payload, **unknown}


# Helpers


_ids = itertools.count(9_100_000_001)


def new_person(emulator: BotApiEmulator, runtime: Runtime) -> Person:
    """A resident who has never written before, with a name that would show if logged."""
    number = next(_ids)
    user = emulator.add_user(number, f"Fuzzname-{number}", "Fuzzlast", f"fuzz_user_{number}")
    return Person(emulator, user, runtime.dispatcher.idle)


async def draft_of(runtime: Runtime, user_id: int) -> tuple[str, dict[str, Any]] | None:
    """The step and data of a chat's draft, as stored."""
    key = runtime.services.keyring.chat_key("telegram", str(user_id))
    async with unit_of_work(runtime.services.sessions) as session:
        draft = await repo.get_draft(session=session, chat_key=key)
    return (draft.step, dict(draft.data)) if draft is not None else None


async def tip_state(runtime: Runtime, tip_id: int) -> tuple[object, ...]:
    """What an officer's button may change on a tip."""
    async with unit_of_work(runtime.services.sessions) as session:
        tip = await session.get(Tip, tip_id)
    assert tip is not None
    return (tip.status, tip.assignee_id, tip.card_version, tip.sender_tag is None)


def apologies(runtime: Runtime) -> list[str]:
    """What the bot says when a handler failed."""
    catalogue = runtime.services.catalogue
    return [
        catalogue.text(lang, key)
        for lang in ("vi", "en")
        for key in ("common.error", "common.error_group")
    ]


async def pressed(
    emulator: BotApiEmulator, runtime: Runtime, user: EmuUser, message: EmuMessage, data: str
) -> dict[str, Any]:
    """Press button data on a message; return the bot's answer to the press, once all is done."""
    query = await emulator.click_data(user, message, data)

    def answered(emu: BotApiEmulator) -> bool:
        return any(a["callback_query_id"] == query for a in emu.callback_answers)

    await emulator.wait_until(answered)
    await runtime.dispatcher.idle()
    [answer] = [a for a in emulator.callback_answers if a["callback_query_id"] == query]
    return answer


OURS: Final = ("handlers", "bot", "broadcasts", "storage")


def unhandled(record: logging.LogRecord) -> bool:
    """Whether a log record says something was not handled.

    An ERROR from our code (a handler, a delivery, the adapter's error handler), anything
    CRITICAL (PTB refusing updates), or an update that reached the adapter's last-resort
    catch. PTB's own ERRORs about a slow getUpdates on a busy machine are not the bot's doing.
    """
    ours = record.name.split(".")[0] in OURS
    return (
        (ours and record.levelno >= logging.ERROR)
        or record.levelno >= logging.CRITICAL
        or "the adapter does not know" in record.getMessage()
    )


@dataclass
class Watch:
    """What must hold after every example, whatever was thrown at the bot."""

    runtime: Runtime
    emulator: BotApiEmulator
    logs: pytest.LogCaptureFixture
    witness: Person
    witness_draft: tuple[str, dict[str, Any]] | None
    group_size: int
    logged: int = 0
    seen: frozenset[int] = frozenset()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        # Hypothesis prints a failing example's fixtures too; this one is the same every time.
        printer.text("Watch(...)")

    def begin(self) -> None:
        """Start an example: only what happens from now on is held against it."""
        self.logged = len(self.logs.records)
        self.seen = frozenset(id(m) for m in self._bot_messages())

    def _bot_messages(self) -> list[EmuMessage]:
        return [m for chat in self.emulator.world.history.values() for m in chat if m.from_bot]

    async def still_well(self, *, group_may_grow: bool = False) -> None:
        """Assert the bot logged no error, apologised to nobody and lost nothing."""
        errors = [
            f"{r.name}: {r.getMessage()}" for r in self.logs.records[self.logged :] if unhandled(r)
        ]
        assert errors == []
        said = [m.content for m in self._bot_messages() if id(m) not in self.seen]
        for apology in apologies(self.runtime):
            assert not any(apology in text for text in said), apology
        assert await draft_of(self.runtime, self.witness.user.id) == self.witness_draft
        if not group_may_grow:
            assert len(self.emulator.messages(GROUP_ID)) == self.group_size

    async def answers_start(self) -> None:
        """Assert a newcomer still gets the welcome."""
        probe = new_person(self.emulator, self.runtime)
        welcome = await probe.says("/start")
        assert "📝 Gửi tin tố giác" in welcome.button_labels()

    async def settle(self) -> None:
        """Wait until everything sent so far is handled, however little it was answered.

        A newcomer's /start, sent after it, is answered only once the bot has fetched it all
        and started on each; the dispatcher then says when it has finished.
        """
        await self.answers_start()
        await self.emulator.wait_until(lambda emu: emu.pending_updates() == 0)
        await self.runtime.dispatcher.idle()


@pytest.fixture
async def watch(
    resident: Person,
    officers: Group,
    runtime: Runtime,
    emulator: BotApiEmulator,
    logs: pytest.LogCaptureFixture,
) -> Watch:
    """A resident halfway through a tip (the witness), and the watch on the bot."""
    await resident.says("/start")
    await resident.taps("📝 Gửi tin tố giác")
    await resident.taps("💊 Mua bán ma túy")
    await resident.taps("Khu phố 3")
    await resident.says("Witness-place: quán nước")
    await resident.says(WITNESS_TEXT)
    draft = await draft_of(runtime, resident.user.id)
    assert draft is not None and draft[1]["text"] == WITNESS_TEXT
    return Watch(runtime, emulator, logs, resident, draft, len(emulator.messages(GROUP_ID)))


# Walking a fresh resident to each step of a tip

STEPS: Final = ("c", "a", "p", "x", "f", "r")
FREE_TEXT: Final = frozenset({"p", "x", "f", "r"})


async def walk_to(person: Person, step: str) -> EmuMessage:
    """Walk a new resident's tip to a step; return the bot's prompt for it."""
    await person.says("/start")
    prompt = await person.taps("📝 Gửi tin tố giác")
    walk: list[Callable[[], Any]] = [
        lambda: person.taps("💊 Mua bán ma túy"),
        lambda: person.taps("Khu phố 3"),
        lambda: person.says("Quán nước đầu ngõ 12"),
        lambda: person.says("Tối nào cũng có người bán ma túy đá"),
        lambda: person.taps("⏭ Bỏ qua"),
    ]
    for go in walk[: STEPS.index(step)]:
        prompt = await go()
    return prompt


def meant(prompt: EmuMessage, text: str, step: str) -> str | None:
    """The button data a typed text stands for on this prompt, as the bot will read it."""
    choices = [Choice(b.label, b.data or "") for row in prompt.buttons for b in row]
    picked = match_choice(text, choices, numbers=step not in FREE_TEXT)
    return picked.data if picked else None


@FUZZ
@given(step=st.sampled_from(STEPS), text=ANY_TEXT)
# Found by this test: NUL kept in the draft made the tip impossible to send (PostgreSQL).
@example(step="x", text="Có\x00 người bán\x07")
@example(step="p", text="\x00")
async def test_any_text_at_any_step_is_answered_and_the_draft_kept(
    step: str, text: str, watch: Watch, runtime: Runtime, emulator: BotApiEmulator
) -> None:
    watch.begin()
    person = new_person(emulator, runtime)
    prompt = await walk_to(person, step)
    before = await draft_of(runtime, person.user.id)
    assert before is not None and before[0] == step
    answer = await person.says(text)
    after = await draft_of(runtime, person.user.id)
    limits = runtime.settings.limits
    button = meant(prompt, text, step)
    if after is None:
        # Only the cancel button, typed, throws a draft away.
        assert button is not None and button.endswith(":cancel"), answer.content
    else:
        assert len(after[1]["text"]) <= limits.max_text_chars
        assert len(after[1]["place"] or "") <= limits.max_place_chars
        if button is None and len(text) > limits.max_text_chars:
            assert after == before, "an over-long text changed the draft"
    await watch.still_well()


async def test_huge_texts_at_every_step_are_refused_or_kept_whole(
    watch: Watch, runtime: Runtime, emulator: BotApiEmulator
) -> None:
    for step in STEPS:
        for size in (5_000, 40_000):
            person = new_person(emulator, runtime)
            await walk_to(person, step)
            before = await draft_of(runtime, person.user.id)
            assert before is not None
            text = _repeat("Đêm nào 🌙 cũng có 👨‍👩‍👧 bán \u202eđá\u202c ở ngõ. ", size)
            answer = await person.says(text)
            after = await draft_of(runtime, person.user.id)
            assert after is not None
            if step in ("c", "a"):
                assert "bấm một nút" in answer.content, (step, size)
                assert after == before
            elif size == 40_000 or step == "p":
                assert "dài quá" in answer.content, (step, size)
                assert after == before
            else:
                assert after[1]["text"].endswith(text.strip()), (step, size)
    await watch.still_well()
    await watch.answers_start()


# One sender for every raw update: the drawn update must not depend on the bot's state.
RAW_SENDER: Final = {
    "id": 9_199_999_999,
    "is_bot": False,
    "first_name": "Fuzzname-raw",
    "last_name": "Fuzzlast",
    "username": "fuzz_user_raw",
}


@FUZZ
@given(update=raw_updates(RAW_SENDER))
# Found by this test: no chat and no date made PTB refuse every update, forever.
@example(update={"message": {"text": "0", "from": RAW_SENDER}})
@example(update={"message": {"message_id": 1, "date": 0, "from": RAW_SENDER, "text": "0"}})
async def test_any_raw_update_leaves_the_bot_answering(
    update: dict[str, Any], watch: Watch, runtime: Runtime, emulator: BotApiEmulator
) -> None:
    watch.begin()
    if RAW_SENDER["id"] not in emulator.world.users:
        emulator.add_user(RAW_SENDER["id"], "Fuzzname-raw", "Fuzzlast", "fuzz_user_raw")
    emulator.inject_update(update)
    await watch.settle()
    await watch.still_well()


@FUZZ
@given(press=forged(), who=st.sampled_from(["resident", "resident", "supervisor"]))
# Found by this test: "²" passes str.isdigit() but not int(); 20 digits overflow a column.
@example(press="1:a:²", who="resident")
@example(press="1:bc:g:1:999999999999999999", who="supervisor")
@example(press="1:bc:x:99999999999999999999", who="supervisor")
async def test_any_button_data_in_private_is_answered_and_changes_nothing_else(
    press: str, who: str, watch: Watch, runtime: Runtime, emulator: BotApiEmulator
) -> None:
    watch.begin()
    if who == "supervisor":
        user = emulator.world.users.get(SUPERVISOR_ID) or emulator.add_user(
            SUPERVISOR_ID, "Lê Lãnh Đạo", language_code="vi"
        )
        person = Person(emulator, user, runtime.dispatcher.idle)
        prompt = await person.says("/broadcast")
    else:
        person = new_person(emulator, runtime)
        prompt = await walk_to(person, "x")
    shown = {b.data for row in prompt.buttons for b in row}
    press = _fit(press.replace("{v}", "1"))
    before = await draft_of(runtime, person.user.id)
    await pressed(emulator, runtime, person.user, prompt, press)
    after = await draft_of(runtime, person.user.id)
    if who == "resident" and press not in shown:
        # A forged or foreign button may move the draft (resume, language), never lose it.
        assert after is not None and before is not None
        assert after[1]["text"] == before[1]["text"]
    await watch.still_well()


@dataclass
class Card:
    """A tip's card in the officers' group, and the resident who sent the tip."""

    message: EmuMessage
    sender: Person

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text("Card(...)")


@pytest.fixture
async def card(watch: Watch, officers: Group, runtime: Runtime, emulator: BotApiEmulator) -> Card:
    """A tip's card in the officers' group, its sender allowing questions."""
    sender = new_person(emulator, runtime)
    await send_tip(sender, "Card-canary: có người bán ở chợ")
    posted = await officers.sees()
    watch.group_size = len(emulator.messages(GROUP_ID))
    return Card(posted, sender)


def officer_user(emulator: BotApiEmulator, user_id: int, first: str, last: str) -> EmuUser:
    """An officer's account, renamed as Telegram allows (64 + 64 characters)."""
    user = emulator.world.users.get(user_id) or emulator.add_user(user_id, "x")
    user.first_name, user.last_name = first, last
    emulator.world.chats[user_id].user = user
    return user


NAMES: Final = st.text(st.characters(codec="utf-8"), min_size=1, max_size=64)


@FUZZ
@given(
    press=forged(),
    who=st.sampled_from(["officer", "supervisor", "stranger"]),
    first=NAMES,
    last=NAMES,
)
# Found by this test: forged numbers in card buttons; names over their columns (PostgreSQL).
@example(press="1:q:1:²:claim", who="officer", first="A", last="B")
@example(press="1:q:99999999999999999999:1:claim", who="officer", first="A", last="B")
@example(press="1:q:1:{v}:to:²", who="supervisor", first="A", last="B")
@example(press="1:q:1:{v}:claim", who="officer", first="ă" * 64, last="\x00" + "ơ" * 63)
@example(press="1:q:1:{v}:to:700001", who="supervisor", first="ê" * 64, last="ê" * 64)
async def test_any_button_data_on_a_card_is_answered_and_strangers_change_nothing(
    press: str,
    who: str,
    first: str,
    last: str,
    card: Card,
    watch: Watch,
    runtime: Runtime,
    emulator: BotApiEmulator,
) -> None:
    watch.begin()
    user_id = {"officer": OFFICER_ID, "supervisor": SUPERVISOR_ID, "stranger": STRANGER_ID}[who]
    user = officer_user(emulator, user_id, f"Fuzzofficer {first}", last)
    before = await tip_state(runtime, 1)
    press = _fit(press.replace("{v}", str(before[2])))
    answer = await pressed(emulator, runtime, user, card.message, press)
    if who == "stranger":
        assert await tip_state(runtime, 1) == before
        assert answer.get("show_alert") or not answer.get("text")
    await watch.still_well(group_may_grow=True)


@FUZZ
@given(question=ANY_TEXT, answer=ANY_TEXT, note=st.booleans(), first=NAMES, last=NAMES)
# Found by this test: NUL in a name or a text, refused by PostgreSQL; notes had no limit.
@example(question="0", answer="0", note=False, first="0", last="\x00")
@example(question="\x00Canary", answer="\x00", note=True, first="0", last="0")
@example(question="Ghi chú. " * 600, answer="0", note=True, first="0", last="0")
async def test_any_question_note_or_answer_is_relayed_or_refused_without_names(
    question: str,
    answer: str,
    note: bool,
    first: str,
    last: str,
    card: Card,
    watch: Watch,
    runtime: Runtime,
    emulator: BotApiEmulator,
) -> None:
    watch.begin()
    user = officer_user(emulator, OFFICER_ID, f"Fuzzofficer {first}", last)
    sender = card.sender.user
    target = card.message
    if note:
        [data] = [
            b.data for row in target.buttons for b in row if (b.data or "").endswith(":note")
        ]
        await pressed(emulator, runtime, user, target, data or "")
        target = emulator.bot_messages(GROUP_ID)[-1]
    seen = len(emulator.bot_messages(sender.id))
    await emulator.send_text(user, question, chat=GROUP_ID, reply_to=target.message_id)
    await watch.settle()
    relayed = emulator.bot_messages(sender.id)[seen:]
    if relayed and not note:
        assert len(relayed) == 1, [m.content[:200] for m in relayed]
        [asked] = relayed
        assert user.first_name not in asked.content
        await emulator.send_text(sender, answer, reply_to=asked.message_id)
        await watch.settle()
    group = [m.raw for m in emulator.messages(GROUP_ID) if m.from_bot]
    seen_by_officers = json.dumps(group, ensure_ascii=False)
    assert f"fuzz_user_{sender.id}" not in seen_by_officers
    assert str(sender.id) not in seen_by_officers
    await watch.still_well(group_may_grow=True)
