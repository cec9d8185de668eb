"""Server-side sign-in sessions: a session generation per user and the token ids signed out early.

Revision ID: 0009_session_generation
Revises: 0008_school_settings
Create Date: 2026-12-02 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_session_generation"
down_revision: str | Sequence[str] | None = "0008_school_settings"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("session_generation", sa.Integer(), server_default="0", nullable=False))
    op.create_table(
        "revoked_session",
        sa.Column("jti", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("jti", name=op.f("pk_revoked_session")),
    )


def downgrade() -> None:
    op.drop_table("revoked_session")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("session_generation")
