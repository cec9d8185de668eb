"""Feedback with meaning: each remark has a category (useful, not useful, wrongly flagged, already
handled, not applicable) and an optional reason; the earlier binary remarks become "not_useful".

Revision ID: 0011_feedback_reason
Revises: 0010_grade_v2
Create Date: 2026-12-02 00:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_feedback_reason"
down_revision: str | Sequence[str] | None = "0010_grade_v2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CATEGORIES = ("useful", "not_useful", "wrongly_flagged", "already_handled", "not_applicable")


def upgrade() -> None:
    allowed = ", ".join(f"'{c}'" for c in CATEGORIES)
    with op.batch_alter_table("feedback") as batch:
        # Every existing row was the one binary remark there was: "not useful".
        batch.add_column(sa.Column("category", sa.String(32), nullable=False, server_default="not_useful"))
        batch.alter_column("reason", existing_type=sa.Text(), nullable=True)
        batch.create_check_constraint("category", f"category IN ({allowed})")
    with op.batch_alter_table("feedback") as batch:
        batch.alter_column("category", existing_type=sa.String(32), server_default=None)


def downgrade() -> None:
    op.execute("DELETE FROM feedback WHERE category <> 'not_useful'")
    op.execute("UPDATE feedback SET reason = '' WHERE reason IS NULL")
    with op.batch_alter_table("feedback") as batch:
        batch.drop_constraint("category", type_="check")
        batch.alter_column("reason", existing_type=sa.Text(), nullable=False)
        batch.drop_column("category")
