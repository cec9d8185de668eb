"""Retention: prediction log rows older than N days are deleted, with the feedback about them.

Set ``MATHSIGHT_RETENTION_DAYS`` and run ``python -m model retention`` daily (cron, systemd timer),
or pass ``--days N``; ``--dry-run`` only counts. Deletion is two SQL statements in the caller's transaction.
Outcomes (real grades, keyed by pseudonymous student key) and the audit log are kept: they hold no
inputs, and realized accuracy needs the outcomes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from model.store.tables import Feedback, PredictionLog, utcnow


@dataclass(frozen=True)
class PurgeResult:
    """Rows deleted (or, in a dry run, that would be) older than ``cutoff``."""

    cutoff: datetime
    log_rows: int
    feedback_rows: int
    dry_run: bool = False


def cutoff_for(days: int, now: datetime | None = None) -> datetime:
    """The moment before which rows are too old to keep."""
    if days < 1:
        raise ValueError(f"retention must be at least 1 day, got {days}")
    return (now or utcnow()) - timedelta(days=days)


def purge_old(session: Session, days: int, *, dry_run: bool = False, now: datetime | None = None) -> PurgeResult:
    """Delete prediction log rows created more than ``days`` days ago, and their feedback."""
    cutoff = cutoff_for(days, now)
    old_ids = sa.select(PredictionLog.id).where(PredictionLog.created_at < cutoff)
    feedback = Feedback.__table__.c
    if dry_run:
        n_log = session.scalar(sa.select(sa.func.count()).select_from(old_ids.subquery()))
        n_feedback = session.scalar(
            sa.select(sa.func.count()).where(feedback.prediction_id.in_(old_ids)).select_from(Feedback)
        )
        return PurgeResult(cutoff, int(n_log or 0), int(n_feedback or 0), dry_run=True)
    # Core deletes on the tables: the session's identity map is not synchronized row by row.
    n_feedback = session.execute(sa.delete(Feedback.__table__).where(feedback.prediction_id.in_(old_ids))).rowcount
    log = PredictionLog.__table__
    n_log = session.execute(sa.delete(log).where(log.c.created_at < cutoff)).rowcount
    return PurgeResult(cutoff, n_log, n_feedback)
