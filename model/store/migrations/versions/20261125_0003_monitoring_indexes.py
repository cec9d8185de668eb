"""Covering indexes for the monitoring queries on the prediction log.

``ix_prediction_log_day`` leads with the UTC day of ``created_at`` (an expression index, spelled per
dialect as ``model.store.tables.utc_day`` compiles it), so per-day aggregates and per-day latency
percentiles read the index in order without sorting; ``ix_prediction_log_latency_ms`` serves
percentiles over a whole window.

Revision ID: 0003_monitoring
Revises: 0002_rate_limit
Create Date: 2026-11-25 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_monitoring"
down_revision: str | Sequence[str] | None = "0002_rate_limit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As of this revision (the migration must not follow later edits of model/store/tables.py).
UTC_DAY = {
    "sqlite": "substr(created_at, 1, 10)",
    "postgresql": "((created_at AT TIME ZONE 'UTC')::date)",
}
DAY_COLUMNS = ("latency_ms", "created_at", "is_demo", "status", "channel", "band", "risk", "error_type", "predicted_g3")


def upgrade() -> None:
    day = sa.text(UTC_DAY[op.get_bind().dialect.name])
    op.create_index("ix_prediction_log_day", "prediction_log", [day, *DAY_COLUMNS])
    op.create_index("ix_prediction_log_latency_ms", "prediction_log", ["latency_ms", "created_at", "is_demo"])


def downgrade() -> None:
    op.drop_index("ix_prediction_log_latency_ms", "prediction_log")
    op.drop_index("ix_prediction_log_day", "prediction_log")
