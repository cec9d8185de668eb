"""Fixed-window rate limits: per bucket, reset with the window, shared through the database."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from model.accounts.ratelimit import DatabaseRateLimiter, MemoryRateLimiter, RateLimitCounter, make_limiter
from model.store.db import get_engine, migrate


class Clock:
    """A settable clock (starting at a window boundary): windows pass without waiting."""

    def __init__(self, now: float = 1_200_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _check_limiter(make: type | object, clock: Clock) -> None:
    limiter = make(clock)  # type: ignore[operator]
    decisions = [limiter.hit("a") for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    assert decisions[-1].retry_after == 60 and decisions[-1].limit == 3
    assert limiter.hit("b").allowed  # another caller has its own count
    clock.now += 45.5
    refused = limiter.hit("a")
    assert not refused.allowed and refused.retry_after == 15  # seconds to the end of the window, rounded up
    clock.now += 15
    assert limiter.hit("a").allowed  # a new window


def test_memory_limiter_counts_per_bucket_and_window() -> None:
    clock = Clock()
    _check_limiter(lambda c: MemoryRateLimiter(3, 60, clock=c), clock)


def test_database_limiter_counts_per_bucket_and_window(db_url: str) -> None:
    engine = get_engine(db_url)
    migrate(engine)
    clock = Clock()
    _check_limiter(lambda c: DatabaseRateLimiter(engine, 3, 60, clock=c), clock)
    with engine.connect() as connection:
        windows = connection.execute(sa.select(RateLimitCounter.window_start).distinct()).scalars().all()
    assert len(windows) == 1  # past windows are pruned


def test_database_limiters_share_the_count(db_url: str) -> None:
    engine = get_engine(db_url)
    migrate(engine)
    clock = Clock()
    workers = [DatabaseRateLimiter(engine, 4, 60, clock=clock) for _ in range(2)]
    allowed = [workers[i % 2].hit("key").allowed for i in range(6)]
    assert allowed == [True, True, True, True, False, False]


def test_bad_configuration_is_refused(db_url: str) -> None:
    engine = get_engine(db_url)
    with pytest.raises(ValueError, match="limit >= 1"):
        MemoryRateLimiter(0, 60)
    with pytest.raises(ValueError, match='rate limit storage "redis" is not allowed'):
        make_limiter("redis", engine, 10, 60)  # type: ignore[arg-type]
    assert isinstance(make_limiter("database", engine, 10, 60), DatabaseRateLimiter)


def _check_spend(limiter: object) -> None:
    """A weighted spend is charged only when it fits: a too-large batch leaves the budget to small ones."""
    assert limiter.spend("k", 6).allowed  # type: ignore[attr-defined]
    refused = limiter.spend("k", 5)  # type: ignore[attr-defined]
    assert not refused.allowed and refused.retry_after >= 1
    assert [limiter.spend("k", 1).allowed for _ in range(5)] == [True, True, True, True, False]  # type: ignore[attr-defined]


def test_memory_limiter_spends_by_weight() -> None:
    _check_spend(MemoryRateLimiter(10, 60, clock=Clock()))


def test_database_limiter_spends_by_weight(db_url: str) -> None:
    engine = get_engine(db_url)
    migrate(engine)
    _check_spend(DatabaseRateLimiter(engine, 10, 60, clock=Clock()))
