"""Initial schema: model registry, users and API keys, prediction log, outcomes, feedback, audit, alerts.

Revision ID: 0001
Revises:
Create Date: 2026-11-24 22:30:23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Types as of this revision (the migration must not follow later edits of model/store/tables.py).
UTC_DATETIME = sa.DateTime(timezone=True)
BIGINT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
SETUPS = "('early', 'period1', 'period2')"


def upgrade() -> None:
    op.create_table(
        "model_version",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("setup", sa.String(16), nullable=False),
        sa.Column("algorithm", sa.String(64), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("data_sha256", sa.String(64), nullable=False),
        sa.Column("n_rows", sa.Integer(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("reference", sa.JSON(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("artifact", sa.LargeBinary(), nullable=False),
        sa.Column("artifact_sha256", sa.String(64), nullable=False),
        sa.Column("artifact_hmac", sa.String(64), nullable=False),
        sa.Column("notes", sa.Text(), server_default="", nullable=False),
        sa.CheckConstraint(f"setup IN {SETUPS}", name=op.f("ck_model_version_setup")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_version")),
    )
    op.create_index("ix_model_version_setup_created_at", "model_version", ["setup", "created_at"])

    op.create_table(
        "active_model",
        sa.Column("setup", sa.String(16), nullable=False),
        sa.Column("version_id", sa.String(64), nullable=False),
        sa.Column("activated_at", UTC_DATETIME, nullable=False),
        sa.Column("activated_by", sa.String(128), nullable=False),
        sa.Column("previous_version_id", sa.String(64), nullable=True),
        sa.CheckConstraint(f"setup IN {SETUPS}", name=op.f("ck_active_model_setup")),
        sa.ForeignKeyConstraint(
            ["version_id"], ["model_version.id"], name=op.f("fk_active_model_version_id_model_version")
        ),
        sa.ForeignKeyConstraint(
            ["previous_version_id"],
            ["model_version.id"],
            name=op.f("fk_active_model_previous_version_id_model_version"),
        ),
        sa.PrimaryKeyConstraint("setup", name=op.f("pk_active_model")),
    )

    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("failed_logins", sa.Integer(), server_default="0", nullable=False),
        sa.Column("locked_until", UTC_DATETIME, nullable=True),
        sa.CheckConstraint("role IN ('teacher', 'admin')", name=op.f("ck_users_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )

    op.create_table(
        "api_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("prefix", sa.String(32), nullable=False),
        sa.Column("key_hash", sa.String(255), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("revoked_at", UTC_DATETIME, nullable=True),
        sa.Column("last_used_at", UTC_DATETIME, nullable=True),
        sa.CheckConstraint("scope IN ('predict', 'admin')", name=op.f("ck_api_key_scope")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_api_key_user_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_key")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_key_prefix")),
    )
    op.create_index("ix_api_key_user_id", "api_key", ["user_id"])

    op.create_table(
        "prediction_log",
        sa.Column("id", BIGINT_ID, nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("idempotency_key", sa.String(128), nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("model_version_id", sa.String(64), nullable=True),
        sa.Column("setup", sa.String(16), nullable=True),
        sa.Column("student_key", sa.String(64), nullable=True),
        sa.Column("inputs", sa.JSON(), nullable=True),
        sa.Column("predicted_g3", sa.Double(), nullable=True),
        sa.Column("lower", sa.Double(), nullable=True),
        sa.Column("upper", sa.Double(), nullable=True),
        sa.Column("p_pass", sa.Double(), nullable=True),
        sa.Column("band", sa.String(4), nullable=True),
        sa.Column("risk", sa.String(16), nullable=True),
        sa.Column("latency_ms", sa.Double(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error_type", sa.String(64), nullable=True),
        sa.Column("is_demo", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.CheckConstraint("channel IN ('ui', 'api', 'cli')", name=op.f("ck_prediction_log_channel")),
        sa.CheckConstraint("status IN ('ok', 'rejected', 'error')", name=op.f("ck_prediction_log_status")),
        sa.CheckConstraint(f"setup IN {SETUPS}", name=op.f("ck_prediction_log_setup")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_prediction_log_user_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_version.id"],
            name=op.f("fk_prediction_log_model_version_id_model_version"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prediction_log")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_prediction_log_idempotency_key")),
    )
    op.create_index("ix_prediction_log_created_at", "prediction_log", ["created_at"])
    op.create_index(
        "ix_prediction_log_model_version_id_created_at", "prediction_log", ["model_version_id", "created_at"]
    )
    op.create_index("ix_prediction_log_user_id_created_at", "prediction_log", ["user_id", "created_at"])
    op.create_index("ix_prediction_log_channel_created_at", "prediction_log", ["channel", "created_at"])
    op.create_index("ix_prediction_log_student_key", "prediction_log", ["student_key"])
    op.create_index("ix_prediction_log_request_id", "prediction_log", ["request_id"])

    op.create_table(
        "outcome",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("student_key", sa.String(64), nullable=False),
        sa.Column("g3", sa.Integer(), nullable=False),
        sa.Column("recorded_by", sa.Integer(), nullable=True),
        sa.Column("recorded_at", UTC_DATETIME, nullable=False),
        sa.CheckConstraint("g3 BETWEEN 0 AND 20", name=op.f("ck_outcome_g3")),
        sa.ForeignKeyConstraint(
            ["recorded_by"], ["users.id"], name=op.f("fk_outcome_recorded_by_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outcome")),
    )
    op.create_index("ix_outcome_student_key", "outcome", ["student_key"])

    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("prediction_id", BIGINT_ID, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["prediction_id"],
            ["prediction_log.id"],
            name=op.f("fk_feedback_prediction_id_prediction_log"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_feedback_user_id_users"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
    )
    op.create_index("ix_feedback_prediction_id", "feedback", ["prediction_id"])

    op.create_table(
        "audit_log",
        sa.Column("id", BIGINT_ID, nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_audit_log_user_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_created_at", "audit_log", ["created_at"])
    op.create_index("ix_audit_log_action_created_at", "audit_log", ["action", "created_at"])

    op.create_table(
        "alert",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("threshold", sa.Double(), nullable=False),
        sa.Column("first_seen", UTC_DATETIME, nullable=False),
        sa.Column("last_seen", UTC_DATETIME, nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column("acknowledged_by", sa.String(128), nullable=True),
        sa.Column("acknowledged_at", UTC_DATETIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert")),
    )
    op.create_index("ix_alert_rule_last_seen", "alert", ["rule", "last_seen"])


def downgrade() -> None:
    for table in (
        "alert",
        "audit_log",
        "feedback",
        "outcome",
        "prediction_log",
        "api_key",
        "users",
        "active_model",
        "model_version",
    ):
        op.drop_table(table)
