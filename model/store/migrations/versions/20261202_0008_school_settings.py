"""The thresholds a school's admin sets (risk cut-offs, "risk rose", the year's end).

Revision ID: 0008_school_settings
Revises: 0007_student_ref_interventions
Create Date: 2026-12-01 23:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_school_settings"
down_revision: str | Sequence[str] | None = "0007_student_ref_interventions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "school_setting",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_school_setting")),
    )


def downgrade() -> None:
    op.drop_table("school_setting")
