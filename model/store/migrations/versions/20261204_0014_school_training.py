"""Learning from the school's own students: training jobs in the database, the serving timeline with
its promotion gates, and each version's training-data reference.

Every setup's active version gets an open timeline period starting when it was activated.

Revision ID: 0014_school_training
Revises: 0012_digest_opt_in
Create Date: 2026-12-04 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_school_training"
down_revision: str | Sequence[str] | None = "0012_digest_opt_in"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SETUPS = "setup IN ('early', 'period1', 'period2')"


def upgrade() -> None:
    op.create_table(
        "training_job",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("setup", sa.String(16), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(255), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("n_rows", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("progress", sa.Double(), nullable=False),
        sa.Column("stage", sa.String(255), nullable=False),
        sa.Column("version_id", sa.String(64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("seconds", sa.Double(), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("running_slot", sa.Integer(), nullable=True),
        sa.Column("options", sa.JSON(), nullable=True),
        sa.CheckConstraint("status IN ('queued', 'running', 'done', 'failed', 'cancelled')",
                           name=op.f("ck_training_job_status")),  # fmt: skip
        sa.PrimaryKeyConstraint("id", name=op.f("pk_training_job")),
        sa.UniqueConstraint("running_slot", name=op.f("uq_training_job_running_slot")),
    )
    op.create_index("ix_training_job_created_at", "training_job", ["created_at"])
    op.create_table(
        "model_serving",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("setup", sa.String(16), nullable=False),
        sa.Column("version_id", sa.String(64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("by", sa.String(128), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("gate", sa.JSON(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.CheckConstraint(SETUPS, name=op.f("ck_model_serving_setup")),
        sa.CheckConstraint("action IN ('promote', 'rollback')", name=op.f("ck_model_serving_action")),
        sa.ForeignKeyConstraint(["version_id"], ["model_version.id"],
                                name=op.f("fk_model_serving_version_id_model_version")),  # fmt: skip
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_serving")),
    )
    op.create_index("ix_model_serving_setup_started_at", "model_serving", ["setup", "started_at"])
    op.create_index("ix_model_serving_version_id", "model_serving", ["version_id"])
    op.create_table(
        "training_data",
        sa.Column("version_id", sa.String(64), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("rows", sa.LargeBinary(), nullable=True),
        sa.Column("rows_key_id", sa.String(16), nullable=True),
        sa.ForeignKeyConstraint(["version_id"], ["model_version.id"], ondelete="CASCADE",
                                name=op.f("fk_training_data_version_id_model_version")),  # fmt: skip
        sa.PrimaryKeyConstraint("version_id", name=op.f("pk_training_data")),
    )
    op.execute(
        "INSERT INTO model_serving (setup, version_id, started_at, ended_at, by, action) "
        "SELECT setup, version_id, activated_at, NULL, activated_by, 'promote' FROM active_model"
    )


def downgrade() -> None:
    op.drop_table("training_data")
    op.drop_index("ix_model_serving_version_id", table_name="model_serving")
    op.drop_index("ix_model_serving_setup_started_at", table_name="model_serving")
    op.drop_table("model_serving")
    op.drop_index("ix_training_job_created_at", table_name="training_job")
    op.drop_table("training_job")
