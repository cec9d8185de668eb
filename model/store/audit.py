"""The audit trail: who did what and when (promotions, rollbacks, user and key changes)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from model.store.tables import AuditLog


def audit(session: Session, action: str, actor: str, user_id: int | None = None, **detail: Any) -> AuditLog:
    """Add an audit row to the session's transaction (committed with the change it records)."""
    row = AuditLog(action=action, actor=actor, user_id=user_id, detail=detail)
    session.add(row)
    session.flush()
    return row


def list_audit(session: Session, action: str | None = None, limit: int = 100) -> list[AuditLog]:
    """The latest audit rows, newest first, optionally only those of one ``action``."""
    query = sa.select(AuditLog).order_by(AuditLog.created_at.desc(), AuditLog.id.desc()).limit(limit)
    if action is not None:
        query = query.where(AuditLog.action == action)
    return list(session.scalars(query))
