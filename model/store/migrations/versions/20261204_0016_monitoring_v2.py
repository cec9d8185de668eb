"""Monitoring v2: the day index also covers ``p_pass`` and ``model_version_id``.

The expected-performance sums (CBPE, ``model.monitoring.expected``) read P(pass) and the model
version of every predicted row of a window, per UTC day. With both in ``ix_prediction_log_day`` the
query reads the index in day order without touching the table (SQLite at 1M rows: 3.4 s -> well
under 1 s, see ``python -m bench monitoring``).

Revision ID: 0016_monitoring_v2
Revises: 0015_oidc_identities
Create Date: 2026-12-04 16:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_monitoring_v2"
down_revision: str | Sequence[str] | None = "0015_oidc_identities"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As of this revision (the migration must not follow later edits of model/store/tables.py).
UTC_DAY = {
    "sqlite": "substr(created_at, 1, 10)",
    "postgresql": "((created_at AT TIME ZONE 'UTC')::date)",
}
DAY_COLUMNS = ("latency_ms", "created_at", "is_demo", "status", "channel", "band", "risk", "error_type", "predicted_g3")
ADDED = ("p_pass", "model_version_id")


def _recreate(columns: Sequence[str]) -> None:
    day = sa.text(UTC_DAY[op.get_bind().dialect.name])
    op.drop_index("ix_prediction_log_day", "prediction_log")
    op.create_index("ix_prediction_log_day", "prediction_log", [day, *columns])


def upgrade() -> None:
    _recreate([*DAY_COLUMNS, *ADDED])


def downgrade() -> None:
    _recreate(DAY_COLUMNS)
