"""The weekly digest: a per-user opt-in (the address is the existing ``users.email``).

Revision ID: 0012_digest_opt_in
Revises: 0011_feedback_reason
Create Date: 2026-12-02 00:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_digest_opt_in"
down_revision: str | Sequence[str] | None = "0011_feedback_reason"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("digest_opt_in", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("digest_opt_in")
