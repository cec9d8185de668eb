"""Grade model v2: the prediction log keeps the risk of no final grade (P(G3 = 0)) beside P(pass).

Revision ID: 0010_grade_v2
Revises: 0009_session_generation
Create Date: 2026-12-01 23:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_grade_v2"
down_revision: str | Sequence[str] | None = "0009_session_generation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("prediction_log") as batch:
        batch.add_column(sa.Column("p_no_grade", sa.Double(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("prediction_log") as batch:
        batch.drop_column("p_no_grade")
