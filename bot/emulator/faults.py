"""Injected failures, Telegram-like rate limits and the counters a benchmark reports."""

import math
from collections import Counter, deque
from dataclasses import dataclass, field

from bot.emulator.state import ApiError, EmuMessage

_DEFAULT_DESCRIPTIONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict",
    500: "Internal Server Error",
    502: "Bad Gateway",
}


@dataclass(frozen=True)
class Limits:
    """Send limits in the spirit of Telegram's published ones; exceeding them answers 429."""

    global_per_second: float = 30
    per_chat_per_second: float = 1.0
    per_group_per_minute: float = 20
    # Telegram tolerates short bursts in one chat before it starts answering 429.
    per_chat_burst: int = 3


@dataclass
class Stats:
    """Counters for benchmarks: calls, 429s and what reached each chat."""

    calls_by_method: Counter[str] = field(default_factory=Counter)
    too_many_requests: int = 0
    sends_by_chat: Counter[int] = field(default_factory=Counter)
    # A bot message identical to the bot's previous one in that chat: usually a blind retry.
    duplicates: int = 0

    def record_call(self, method: str, status: int) -> None:
        """Count one answered API call."""
        self.calls_by_method[method] += 1
        if status == 429:
            self.too_many_requests += 1

    def record_bot_message(self, message: EmuMessage, previous: EmuMessage | None) -> None:
        """Count a message the bot put into a chat."""
        self.sends_by_chat[message.chat_id] += 1
        if previous is not None and _same_content(message, previous):
            self.duplicates += 1


def _same_content(a: EmuMessage, b: EmuMessage) -> bool:
    return (a.kind, a.text, a.caption, a.file_id, a.payload) == (
        b.kind,
        b.text,
        b.caption,
        b.file_id,
        b.payload,
    )


@dataclass
class _Fault:
    error: ApiError
    remaining: int
    chat_id: int | None = None


class FaultInjector:
    """Planned failures per method, consumed in the order they were added."""

    def __init__(self) -> None:
        self._planned: dict[str, deque[_Fault]] = {}

    def add(
        self,
        method: str,
        *,
        error_code: int,
        description: str | None,
        retry_after: int | None,
        times: int,
        chat_id: int | None = None,
    ) -> None:
        """Make the next ``times`` calls of ``method`` fail (only those to ``chat_id``, if set)."""
        if error_code == 429:
            retry_after = 1 if retry_after is None else retry_after
            description = description or f"Too Many Requests: retry after {retry_after}"
        description = description or _DEFAULT_DESCRIPTIONS.get(error_code, "Error")
        fault = _Fault(ApiError(error_code, description, retry_after), times, chat_id)
        self._planned.setdefault(method, deque()).append(fault)

    def take(self, method: str, chat_id: object = None) -> ApiError | None:
        """The error this call of ``method`` (to ``chat_id``) must answer, if one is planned."""
        planned = self._planned.get(method)
        if not planned:
            return None
        fault = planned[0]
        if fault.chat_id is not None and fault.chat_id != chat_id:
            return None
        fault.remaining -= 1
        if fault.remaining <= 0:
            planned.popleft()
        return fault.error


class RateLimiter:
    """Sliding windows over successful sends, checked before each send."""

    def __init__(self) -> None:
        self._global: deque[float] = deque()
        # Private chats: a token bucket per chat, as (tokens, when they were counted).
        self._buckets: dict[int, tuple[float, float]] = {}
        self._groups: dict[int, deque[float]] = {}

    def check(self, limits: Limits, chat_id: int, is_group: bool, now: float) -> None:
        """Raise a 429 if a send to ``chat_id`` now would exceed ``limits``."""
        waits = [_window_wait(self._global, 1.0, limits.global_per_second, now)]
        if is_group:
            window = self._groups.setdefault(chat_id, deque())
            waits.append(_window_wait(window, 60.0, limits.per_group_per_minute, now))
        else:
            tokens = self._tokens(limits, chat_id, now)
            waits.append((1 - tokens) / limits.per_chat_per_second)
        wait = max(waits)
        if wait > 0:
            # Telegram only ever answers whole seconds.
            retry_after = max(1, math.ceil(wait))
            raise ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after)

    def record(
        self, limits: Limits, chat_id: int, is_group: bool, now: float, count: int = 1
    ) -> None:
        """Account ``count`` messages sent to ``chat_id`` at ``now``."""
        self._global.extend([now] * count)
        if is_group:
            self._groups.setdefault(chat_id, deque()).extend([now] * count)
        else:
            self._buckets[chat_id] = (self._tokens(limits, chat_id, now) - count, now)

    def _tokens(self, limits: Limits, chat_id: int, now: float) -> float:
        tokens, since = self._buckets.get(chat_id, (limits.per_chat_burst, now))
        refilled = tokens + (now - since) * limits.per_chat_per_second
        return min(float(limits.per_chat_burst), refilled)


def _window_wait(window: deque[float], span: float, limit: float, now: float) -> float:
    while window and window[0] <= now - span:
        window.popleft()
    if len(window) < limit:
        return 0.0
    return window[int(len(window) - limit)] + span - now
