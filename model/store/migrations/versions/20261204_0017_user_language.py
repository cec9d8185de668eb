"""The dashboard language each user chose (``en``, ``pt_PT``; null: the browser's).

Revision ID: 0017_user_language
Revises: 0016_monitoring_v2
Create Date: 2026-12-04 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_user_language"
down_revision: str | Sequence[str] | None = "0016_monitoring_v2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("language", sa.String(8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("language")
