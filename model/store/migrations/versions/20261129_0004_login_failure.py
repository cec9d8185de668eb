"""Failed sign-ins per client address, so every dashboard replica applies the same back-off.

Revision ID: 0004_login_failure
Revises: 0003_monitoring
Create Date: 2026-11-29 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_login_failure"
down_revision: str | Sequence[str] | None = "0003_monitoring"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "login_failure",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("failed_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_failure")),
    )
    op.create_index("ix_login_failure_client_failed_at", "login_failure", ["client", "failed_at"])


def downgrade() -> None:
    op.drop_index("ix_login_failure_client_failed_at", table_name="login_failure")
    op.drop_table("login_failure")
