"""Student ids as each teacher typed them (encrypted under the data key), interventions, and the log's
"needs attention" index.

Revision ID: 0007_student_ref_interventions
Revises: 0006_artifact_binding
Create Date: 2026-12-01 23:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op



revision: str = "0007_student_ref_interventions"
down_revision: str | Sequence[str] | None = "0006_artifact_binding"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = ("tutoring", "study_plan", "guardian_meeting", "attendance_plan", "support_referral", "other")
UTC_DATETIME = sa.DateTime(timezone=True)
STATUSES = ("planned", "active", "done", "stopped")


def _one_of(column: str, values: tuple[str, ...]) -> sa.CheckConstraint:
    allowed = ", ".join(f"'{v}'" for v in values)
    return sa.CheckConstraint(f"{column} IN ({allowed})", name=op.f(f"ck_intervention_{column}"))


def upgrade() -> None:
    op.create_table(
        "student_ref",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("student_key", sa.String(64), nullable=False),
        sa.Column("ref", sa.Text(), nullable=False),
        sa.Column("ref_key_id", sa.String(16), nullable=True),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_student_ref_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "student_key", name=op.f("pk_student_ref")),
    )
    op.create_table(
        "intervention",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("student_key", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("review_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("note_key_id", sa.String(16), nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        _one_of("kind", KINDS),
        _one_of("status", STATUSES),
        sa.CheckConstraint("review_date >= start_date", name=op.f("ck_intervention_review_after_start")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_intervention_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intervention")),
    )
    op.create_index("ix_intervention_user_id_student_key", "intervention", ["user_id", "student_key"])
    op.create_index(
        "ix_prediction_log_user_id_student_key",
        "prediction_log",
        ["user_id", "student_key", "created_at", "status", "p_pass", "setup", "risk"],
    )


def downgrade() -> None:
    op.drop_index("ix_prediction_log_user_id_student_key", table_name="prediction_log")
    op.drop_index("ix_intervention_user_id_student_key", table_name="intervention")
    op.drop_table("intervention")
    op.drop_table("student_ref")
