"""Sign-in through the school's identity provider (OpenID Connect): the admin's e-mail/domain rules,
the identities the provider vouched for, and the provider sign-ins the dashboard has seen.

Revision ID: 0015_oidc_identities
Revises: 0014_school_training
Create Date: 2026-12-04 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_oidc_identities"
down_revision: str | Sequence[str] | None = "0014_school_training"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "oidc_rule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pattern", sa.String(254), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.CheckConstraint("role IN ('teacher', 'admin')", name=op.f("ck_oidc_rule_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oidc_rule")),
        sa.UniqueConstraint("pattern", name=op.f("uq_oidc_rule_pattern")),
    )
    op.create_table(
        "oidc_identity",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issuer", sa.String(255), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("name", sa.String(128), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("first_seen", UTC_DATETIME, nullable=False),
        sa.Column("last_seen", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_oidc_identity_user_id_users"),
                                ondelete="CASCADE"),  # fmt: skip
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oidc_identity")),
        sa.UniqueConstraint("issuer", "subject", name=op.f("uq_oidc_identity_issuer")),
        sa.UniqueConstraint("user_id", name=op.f("uq_oidc_identity_user_id")),
    )
    op.create_table(
        "oidc_session",
        sa.Column("jti", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_oidc_session_user_id_users"),
                                ondelete="CASCADE"),  # fmt: skip
        sa.PrimaryKeyConstraint("jti", name=op.f("pk_oidc_session")),
    )
    op.create_index("ix_oidc_session_user_id", "oidc_session", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_oidc_session_user_id", table_name="oidc_session")
    op.drop_table("oidc_session")
    op.drop_table("oidc_identity")
    op.drop_table("oidc_rule")
