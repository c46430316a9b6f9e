"""Triage: score each new tip by the rules in config, so officers see danger first."""

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, TypeAlias

from handlers.settings import KeywordRule, TriageSection
from handlers.text import fold
from storage.models import Category

DANGER_FLAG: Final = "danger_now"
EVIDENCE_FLAG: Final = "has_evidence"
LOCATION_FLAG: Final = "has_location"
SPAM_FLAG: Final = "suspected_spam"

_TOKEN: Final = re.compile(r"[\w\u0300-\u036f]+")
_LINK: Final = re.compile(
    r"(?:https?://|www\.)\S+|\b[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}(?:/\S*)?", re.IGNORECASE
)
_WORD_CHAR: Final = re.compile(r"[^\W_]")


class Priority(enum.StrEnum):
    """How soon officers should look at a tip."""

    URGENT = "urgent"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"

    @property
    def rank(self) -> int:
        """Return the sort key: 0 for urgent up to 3 for low."""
        return _RANKS[self]


_RANKS: Final = {priority: rank for rank, priority in enumerate(Priority)}


@dataclass(frozen=True, slots=True)
class Flag:
    """A label on a tip, with the rule that put it there.

    ``rule`` is compact and language-free ("keyword=ngáo đá", "short=15;only_links"), so it
    can be stored; ``describe`` says it in the reader's words from the catalogue.
    """

    code: str
    rule: str


@dataclass(frozen=True, slots=True)
class Reason:
    """A rule that moved a tip's priority, and from where to where."""

    rule: str
    before: Priority
    after: Priority


@dataclass(frozen=True, slots=True)
class Assessment:
    """A tip's priority, its flags, and each rule that changed the priority, in order."""

    priority: Priority
    flags: tuple[Flag, ...]
    reasons: tuple[Reason, ...]


def describe(rule: str, t: Callable[..., str]) -> str:
    """Say a stored rule in words: each ``name=value`` part through ``rule.<name>``."""
    parts = []
    for part in rule.split(";"):
        name, _, value = part.partition("=")
        parts.append(t(f"rule.{name}", value=value))
    return "; ".join(parts)


@dataclass(slots=True)
class _Tally:
    priority: Priority
    flags: list[Flag] = field(default_factory=list)
    reasons: list[Reason] = field(default_factory=list)

    def flag(self, code: str, rule: str) -> None:
        if all(flag.code != code for flag in self.flags):
            self.flags.append(Flag(code, rule))

    def move_to(self, priority: Priority, rule: str) -> None:
        if priority != self.priority:
            self.reasons.append(Reason(rule, self.priority, priority))
            self.priority = priority

    def raise_to(self, priority: Priority, rule: str) -> None:
        if priority.rank < self.priority.rank:
            self.move_to(priority, rule)


# A word as compared: its letters without marks, and the marks themselves in any order,
# so the old and new tone placements ("hoà", "hòa") compare equal.
_Token: TypeAlias = tuple[str, str]


def _token(word: str) -> _Token:
    decomposed = unicodedata.normalize("NFD", word.casefold())
    marks = sorted(char for char in decomposed if unicodedata.combining(char))
    return fold(word), "".join(marks) + "đ" * decomposed.count("đ")


class _Words:
    """A resident's text, split into words for whole-word phrase matching."""

    def __init__(self, text: str) -> None:
        self._tokens = [_token(word) for word in _TOKEN.findall(text)]

    def contains(self, phrase: str) -> bool:
        wanted = [_token(word) for word in _TOKEN.findall(phrase)]
        size = len(wanted)
        return size > 0 and any(
            all(
                _same(typed, word)
                for typed, word in zip(self._tokens[start : start + size], wanted, strict=True)
            )
            for start in range(len(self._tokens) - size + 1)
        )


def _same(typed: _Token, word: _Token) -> bool:
    # A word typed without diacritics may mean any of them; one typed with them means
    # those: "dạo" (lately) is not "dao" (knife), "bận" (busy) is not "bán" (selling).
    return typed[0] == word[0] and (not typed[1] or typed[1] == word[1])


def _first_match(rule: KeywordRule, parts: Sequence[_Words]) -> str | None:
    return next((word for word in rule.words if any(p.contains(word) for p in parts)), None)


def _only_links(text: str) -> bool:
    return bool(_LINK.search(text)) and not _WORD_CHAR.search(_LINK.sub(" ", text))


def assess(
    *,
    category: Category,
    text: str,
    place: str | None,
    has_location: bool,
    attachment_count: int,
    earlier_texts: Sequence[str],
    rules: TriageSection,
) -> Assessment:
    """Score a new tip: priority, flags and reasons. Only labels; never drops a tip.

    ``earlier_texts`` are the same sender's recent tips, within the duplicate window.
    """
    base = Priority(rules.category_priority[category.value])
    tally = _Tally(base)

    parts = [_Words(text), *([_Words(place)] if place else [])]
    for keyword in rules.keywords:
        word = _first_match(keyword, parts)
        if word is not None:
            found = f"keyword={word}"
            tally.flag(keyword.flag, found)
            tally.raise_to(Priority(keyword.priority), found)

    evidence = [
        (EVIDENCE_FLAG, f"attachments={attachment_count}", attachment_count > 0),
        (LOCATION_FLAG, "location", has_location),
    ]
    for code, what, present in evidence:
        if present:
            tally.flag(code, what)
            if tally.priority is Priority.LOW:
                tally.raise_to(Priority.NORMAL, what)

    signals = []
    written = " ".join(part.strip() for part in (text, place or "") if part.strip())
    if len(written) < rules.spam.min_chars and not (attachment_count or has_location):
        signals.append(f"short={rules.spam.min_chars}")
    if _only_links(text):
        signals.append("only_links")
    folded = fold(text)
    if folded and any(fold(earlier) == folded for earlier in earlier_texts):
        signals.append("duplicate")
    if signals:
        spam = ";".join(signals)
        tally.flag(SPAM_FLAG, spam)
        # A short cry for help is still a cry for help: danger keeps its priority.
        danger = base is Priority.URGENT or any(f.code == DANGER_FLAG for f in tally.flags)
        if not danger:
            tally.move_to(Priority.LOW, spam)

    return Assessment(tally.priority, tuple(tally.flags), tuple(tally.reasons))
