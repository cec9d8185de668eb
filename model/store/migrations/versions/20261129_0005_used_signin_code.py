"""Redeemed sign-in hand-off codes, so that a code works once across every dashboard replica.

Revision ID: 0005_used_signin_code
Revises: 0004_login_failure
Create Date: 2026-11-29 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_used_signin_code"
down_revision: str | Sequence[str] | None = "0004_login_failure"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "used_signin_code",
        sa.Column("jti", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("jti", name=op.f("pk_used_signin_code")),
    )


def downgrade() -> None:
    op.drop_table("used_signin_code")
