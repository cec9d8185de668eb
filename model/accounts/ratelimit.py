"""Fixed-window rate limits per caller: in-process, or shared by every worker through the database.

A caller may make ``limit`` requests per window of ``window_seconds`` (windows start at multiples of
``window_seconds`` since the epoch). The in-process limiter suits one worker; with several workers
(or several machines) the database limiter keeps one counter row per caller and window, bumped by a
single upsert, so every process sees the same count.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from model.store.db import UPSERT_INSERTS
from model.store.tables import RateLimitCounter

Storage = Literal["memory", "database"]
Clock = Callable[[], float]


@dataclass(frozen=True)
class RateDecision:
    """Whether a request may go ahead, how many remain in the window and when the window resets."""

    allowed: bool
    limit: int
    remaining: int
    retry_after: int


class RateLimiter(Protocol):
    """Counts a hit for ``bucket`` and says whether it stays within the limit.

    ``hit`` counts one request, refused or not. ``spend`` weighs a request by ``cost`` units (the
    rows of a batch) and charges them only when they fit in what remains of the window, so a batch
    refused for its size does not use up the budget of the small requests after it.
    """

    limit: int
    window_seconds: int

    def hit(self, bucket: str) -> RateDecision: ...

    def spend(self, bucket: str, cost: int) -> RateDecision: ...


class _Window:
    """The shared arithmetic: which window a moment falls in and how the decision reads."""

    def __init__(self, limit: int, window_seconds: int, clock: Clock) -> None:
        if limit < 1 or window_seconds < 1:
            raise ValueError("a rate limit needs limit >= 1 and window_seconds >= 1")
        self.limit = limit
        self.window_seconds = window_seconds
        self.clock = clock

    def current(self) -> tuple[int, float]:
        now = self.clock()
        return int(now // self.window_seconds) * self.window_seconds, now

    def decide(self, hits: int, start: int, now: float) -> RateDecision:
        retry_after = max(1, math.ceil(start + self.window_seconds - now))
        return RateDecision(hits <= self.limit, self.limit, max(0, self.limit - hits), retry_after)


class MemoryRateLimiter(_Window):
    """Counters in this process only (each worker counts on its own)."""

    def __init__(self, limit: int, window_seconds: int, clock: Clock = time.time) -> None:
        super().__init__(limit, window_seconds, clock)
        self._start = -1
        self._hits: dict[str, int] = {}
        self._lock = threading.Lock()

    def hit(self, bucket: str) -> RateDecision:
        start, now = self.current()
        with self._lock:
            if start != self._start:
                self._start, self._hits = start, {}
            hits = self._hits[bucket] = self._hits.get(bucket, 0) + 1
        return self.decide(hits, start, now)

    def spend(self, bucket: str, cost: int) -> RateDecision:
        start, now = self.current()
        with self._lock:
            if start != self._start:
                self._start, self._hits = start, {}
            hits = self._hits.get(bucket, 0) + cost
            if hits <= self.limit:
                self._hits[bucket] = hits
        return self.decide(hits, start, now)


class DatabaseRateLimiter(_Window):
    """Counters in the ``rate_limit_counter`` table, shared by every process using the database.

    Unlike the data functions it holds an engine and counts in its own short transaction: a hit must
    be committed at once (other workers must see it while the request still runs), must count even
    when the request later fails and rolls back, and must not hold the counter row's lock for the
    length of the request.
    """

    def __init__(self, engine: Engine, limit: int, window_seconds: int, clock: Clock = time.time) -> None:
        super().__init__(limit, window_seconds, clock)
        self.engine = engine
        self._pruned_before = -1
        if engine.dialect.name not in UPSERT_INSERTS:
            raise ValueError(
                f"the database rate limiter supports {', '.join(UPSERT_INSERTS)}, not {engine.dialect.name}"
            )
        self._insert = UPSERT_INSERTS[engine.dialect.name]

    def hit(self, bucket: str) -> RateDecision:
        return self._add(bucket, 1, refund_refused=False)

    def spend(self, bucket: str, cost: int) -> RateDecision:
        return self._add(bucket, cost, refund_refused=True)

    def _add(self, bucket: str, cost: int, *, refund_refused: bool) -> RateDecision:
        """Add ``cost`` in one upsert; a refused ``spend`` takes it back in the same transaction (the
        counter row stays locked until then, so no other worker sees the charge)."""
        start, now = self.current()
        insert = self._insert(RateLimitCounter).values(bucket=bucket, window_start=start, hits=cost)
        upsert = insert.on_conflict_do_update(
            index_elements=[RateLimitCounter.bucket, RateLimitCounter.window_start],
            set_={"hits": RateLimitCounter.hits + cost},
        ).returning(RateLimitCounter.hits)
        with self.engine.begin() as connection:
            hits = connection.execute(upsert).scalar_one()
            if refund_refused and hits > self.limit:
                counter = (RateLimitCounter.bucket == bucket) & (RateLimitCounter.window_start == start)
                connection.execute(sa.update(RateLimitCounter).where(counter).values(hits=RateLimitCounter.hits - cost))
            if self._pruned_before != start:
                connection.execute(sa.delete(RateLimitCounter).where(RateLimitCounter.window_start < start))
                self._pruned_before = start
        return self.decide(hits, start, now)


def make_limiter(storage: Storage, engine: Engine, limit: int, window_seconds: int) -> RateLimiter:
    """The limiter for ``storage``: ``memory`` (this process) or ``database`` (shared)."""
    if storage == "database":
        return DatabaseRateLimiter(engine, limit, window_seconds)
    if storage == "memory":
        return MemoryRateLimiter(limit, window_seconds)
    raise ValueError(f'rate limit storage "{storage}" is not allowed: use memory or database')
